"""Real brokers and databases for tests: started on free loopback ports, always stopped."""
