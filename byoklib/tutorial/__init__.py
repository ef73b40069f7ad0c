"""What the notebooks need, on top of everything else: connect() and Checks (`notebook`),
openssl cross-checks (`openssl`), timing and charts (`timing`), and `make bench` (`bench`)."""
