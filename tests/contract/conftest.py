"""The contract suites' fixtures come from the root conftest (tests.brokers.*)."""
