"""The mock's HTTP face: the WSGI app (`app`), the routing table (`routes`), what a handler
reads and answers (`exchange`) and serving it (`serving`, over `strict` and `framing`). It
maps HTTP onto the service and has no crypto or business rules of its own."""
