"""mosquitto for tests: Liandong's deployment configuration, on 127.0.0.1 and a free port.

``deploy/mosquitto/mosquitto.conf`` and its ACL run as they are, except for the lines naming a
place on the machine (``adapters.transports.mqtt_broker.LocalBroker``): each test's broker has
its own port, password file, persistence directory and log in the test's temporary directory.
Users are the jurisdiction codes given plus the link's user; passwords are derived from the
names (test-only). Every broker a test starts is killed at teardown::

    def test_x(mosquitto: MosquittoFactory) -> None:
        broker = mosquitto(["310118", "320509"])      # started
        city = endpoint(broker, "320509", "city-320509")
        broker.kill(); broker.start()                 # crash, restart: same port, same data
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.transports.mqtt import MqttEndpoint
from adapters.transports.mqtt_broker import MOSQUITTO, LocalBroker

LINK_USER = "liandong-link"

MosquittoFactory = Callable[[Iterable[str]], LocalBroker]


def password(user: str) -> str:
    return f"test-password-{user}"


def endpoint(broker: LocalBroker, user: str, client_id: str, **options: Any) -> MqttEndpoint:
    """Connection settings for ``user`` (its test password) on ``broker``."""
    assert broker.port is not None, "start the broker first"
    return MqttEndpoint(
        host=broker.host,
        port=broker.port,
        client_id=client_id,
        username=user,
        password=password(user),
        **options,
    )


def mosquitto_available() -> bool:
    return Path(MOSQUITTO).exists() and shutil.which("mosquitto_passwd") is not None


def require_mosquitto() -> None:
    """Fail, naming the package, where mosquitto is not installed (the test setup installs it)."""
    if not mosquitto_available():
        pytest.fail(
            f"Debian's mosquitto is not installed ({MOSQUITTO}, mosquitto_passwd): "
            "scripts/setup --dev installs it (apt-get install mosquitto)"
        )


def start_broker(root: Path, users: Iterable[str]) -> LocalBroker:
    """A started broker in ``root`` for ``users`` and the link; the caller closes it."""
    names = [*users, LINK_USER]
    broker = LocalBroker(root, {name: password(name) for name in names})
    try:
        return broker.start()
    except BaseException:
        broker.close()
        raise


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoFactory]:
    """Start brokers for this test: ``mosquitto(users)``; all are killed at teardown."""
    require_mosquitto()
    brokers: list[LocalBroker] = []

    def start(users: Iterable[str]) -> LocalBroker:
        broker = LocalBroker(tmp_path / f"mosquitto-{len(brokers)}", {})
        brokers.append(broker)  # registered first: killed at teardown even if start fails
        broker.users = {name: password(name) for name in [*users, LINK_USER]}
        return broker.start()

    try:
        yield start
    finally:
        for broker in brokers:
            broker.close()
