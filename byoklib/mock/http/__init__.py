"""The mock's HTTP face: the WSGI app (`app`), the routing table (`routes`) and serving it
(`serving`). It maps HTTP onto the service and has no crypto or business rules of its own."""
