"""What the notebooks need, on top of everything else: connect() and Checks (`notebook`),
openssl cross-checks (`openssl`, `openssl_speed`), first-principles witnesses (`witnesses`),
pictures of the protocol (`pictures`), the PKCS#11 token (`pkcs11`), timing and charts
(`timing`), and `make bench` (`bench`, with its floors in `floor`)."""
