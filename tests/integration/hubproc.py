"""A real hub in a subprocess, for tests that must crash it, restart it or reach it over TCP.

``liandong run --no-demo`` runs on 127.0.0.1 with its own data directory. The helper waits for
``/healthz``, kills the hub with SIGKILL (a crash: no shutdown code runs) or stops it with SIGTERM,
and restarts it on the same data directory and port. Every process it starts is killed when the
test ends, and at interpreter exit as a last resort::

    with HubProcess(tmp_path / "data") as hub:
        token = add_adapter(hub.data_dir, "310118", "qingpu")
        hub.start()
        httpx.post(f"{hub.url}/api/v1/incidents", headers=..., json=...)
        hub.kill()
        hub.start()  # same data directory, same port

or, for several hubs, the ``hub_processes`` fixture (import it into a ``conftest.py``), which
kills every hub it made at teardown. Each run of a hub writes its stdout and stderr to
``{data_dir}-logs/hub-N.out|err``; :meth:`HubProcess.stderr` reads them all back.

Production mode (PostgreSQL + Kafka) is the same with an ``env``: ``HubProcess(dir, env={
"LIANDONG_BUS": "kafka://127.0.0.1:PORT", "LIANDONG_DATABASE": "postgresql://..."})``, and the
same ``env`` given to :func:`add_adapter` / :func:`add_adapters`, so that credentials are
written to the database the hubs share (``liandong adapters add`` honours LIANDONG_DATABASE).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import httpx
import pytest

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
CLI_TIMEOUT_S = 60.0

# The hub's command line, run by this interpreter (the project's virtualenv).
_CLI = (sys.executable, "-c", "from hub.cli import main; main()")
# Every hub process still running, killed at exit should a test's teardown not have run.
_live: set[subprocess.Popen[bytes]] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def hub_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a hub subprocess: this one's without ``LIANDONG_*`` settings (a
    developer's shell must not change what a test runs), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANDONG_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _adapters_add(data_dir: Path, jurisdiction: str, name: str) -> list[str]:
    return [
        *_CLI,
        "adapters",
        "add",
        "--jurisdiction",
        jurisdiction,
        "--name",
        name,
        "--data",
        str(data_dir),
    ]


def _postgres_url(env: dict[str, str] | None) -> str | None:
    database = (env or {}).get("LIANDONG_DATABASE", "")
    return database if database.startswith(("postgresql://", "postgres://")) else None


def _token(name: str, returncode: int, stdout: bytes, stderr: bytes) -> str:
    if returncode != 0:
        raise RuntimeError(
            f"liandong adapters add --name {name} failed ({returncode}): "
            f"{stderr.decode(errors='replace').strip()}"
        )
    return stdout.decode().strip().splitlines()[-1]


def add_adapter(
    data_dir: Path,
    jurisdiction: str,
    name: str,
    *,
    via_cli: bool = True,
    env: dict[str, str] | None = None,
) -> str:
    """Create an adapter credential for ``jurisdiction``; returns its token.

    ``via_cli``: run ``liandong adapters add`` as an operator would (about a second: the CLI
    imports the region); False writes the credential from this process through the code the
    CLI calls (milliseconds). Works whether or not a hub is running on ``data_dir``.
    ``env``: ``LIANDONG_*`` settings as the hubs get them; with ``LIANDONG_DATABASE`` set to
    PostgreSQL the credential goes to that database (the CLI reads the setting; in-process
    writes it there too, migrating a new database first as the CLI does).
    """
    if not via_cli:
        return _add_in_process(data_dir, jurisdiction, name, _postgres_url(env))
    done = subprocess.run(
        _adapters_add(data_dir, jurisdiction, name),
        env=hub_env(env),
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    return _token(name, done.returncode, done.stdout, done.stderr)


def add_adapters(
    data_dir: Path,
    adapters: Sequence[tuple[str, str]],
    *,
    via_cli: bool = True,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Create several credentials, given as ``(jurisdiction, name)``; returns name → token.

    With ``via_cli`` the first is created alone (it creates the database), the others by
    CLI processes running in parallel. ``env`` as for :func:`add_adapter`.
    """
    if not adapters:
        return {}
    if not via_cli:
        database = _postgres_url(env)
        return {name: _add_in_process(data_dir, j, name, database) for j, name in adapters}
    (first_jurisdiction, first_name), *rest = adapters
    tokens = {first_name: add_adapter(data_dir, first_jurisdiction, first_name, env=env)}
    running = [
        (
            name,
            subprocess.Popen(
                _adapters_add(data_dir, jurisdiction, name),
                env=hub_env(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        )
        for jurisdiction, name in rest
    ]
    try:
        for name, proc in running:
            out, err = proc.communicate(timeout=CLI_TIMEOUT_S)
            tokens[name] = _token(name, proc.returncode, out, err)
    finally:
        for _, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return tokens


def _add_in_process(
    data_dir: Path, jurisdiction: str, name: str, postgres_url: str | None = None
) -> str:
    from hub.intake.credentials import create_adapter
    from hub.model.envelope import format_time
    from hub.region import load_region
    from hub.store.db import connect_direct

    if not load_region().is_known(jurisdiction):
        raise ValueError(f"'{jurisdiction}' is not a jurisdiction of the region")
    if postgres_url is not None:
        return _add_on_postgres(postgres_url, jurisdiction, name)
    conn = connect_direct(Path(data_dir) / "liandong.db")
    try:
        return create_adapter(conn, name, jurisdiction, format_time(time.time_ns() // 1_000_000))
    finally:
        conn.close()


def _add_on_postgres(url: str, jurisdiction: str, name: str) -> str:
    """The CLI's ``run_job`` on PostgreSQL, synchronously: migrate, then write the credential."""
    import sqlalchemy as sa

    from hub.intake.credentials import create_adapter
    from hub.model.envelope import format_time
    from hub.store.postgres import PgConnection, sqlalchemy_url
    from hub.store.schema import migrate_connection

    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            migrate_connection(connection)
        with engine.begin() as connection:
            created = format_time(time.time_ns() // 1_000_000)
            return create_adapter(PgConnection(connection), name, jurisdiction, created)
    finally:
        engine.dispose()


class HubStartError(RuntimeError):
    """The hub exited, or did not answer ``/healthz``, while starting."""


class HubProcess:
    """One hub data directory, run by successive processes (start, kill or stop, start...)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.log_dir = log_dir or self.data_dir.with_name(self.data_dir.name + "-logs")
        self.port: int | None = None
        self.runs = 0
        self._env = hub_env(env)
        self._proc: subprocess.Popen[bytes] | None = None

    # -- what a test reads -------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash) of the current or last run."""
        if self.port is None:
            raise RuntimeError("the hub has not been started")
        return f"http://{HOST}:{self.port}"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "liandong.db"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr(self) -> str:
        """The standard error of every run so far, each headed by its run number."""
        parts = []
        for run in range(1, self.runs + 1):
            path = self.log_dir / f"hub-{run}.err"
            if path.exists():
                parts.append(f"--- run {run} ---\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, port: int | None = None, timeout_s: float = START_TIMEOUT_S) -> HubProcess:
        """Start a hub process and wait until ``/healthz`` answers 200.

        ``port``: None reuses the previous run's port (a restart), or picks a free one on the
        first start; if a picked port turns out to be taken, another is tried.
        """
        if self.running:
            raise RuntimeError(f"hub already running (pid {self.pid})")
        chosen = port or self.port
        for _ in range(3):
            self.port = chosen or free_port()
            try:
                self._spawn(timeout_s)
                return self
            except HubStartError:
                self._reap(signal.SIGKILL)
                if chosen is not None or "address already in use" not in self._last_err().lower():
                    raise
        raise HubStartError(f"no free port found for the hub; stderr:\n{self._last_err()}")

    def kill(self) -> None:
        """SIGKILL the hub (a crash) and reap it."""
        self._reap(signal.SIGKILL)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM the hub and wait for it to exit (SIGKILL after ``timeout_s``).

        Returns the exit status (uvicorn re-raises SIGTERM after its graceful shutdown, so a
        clean stop is -15), None if it had to be killed or was not running.
        """
        return self._reap(signal.SIGTERM, timeout_s)

    def close(self) -> None:
        """Make sure no process of this hub is left (used by teardown; safe to repeat)."""
        self._reap(signal.SIGKILL)

    def __enter__(self) -> HubProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- inside ------------------------------------------------------------------------------
    def _spawn(self, timeout_s: float) -> None:
        self.runs += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            *_CLI,
            "run",
            "--no-demo",
            "--data",
            str(self.data_dir),
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        with (
            (self.log_dir / f"hub-{self.runs}.out").open("wb") as out,
            (self.log_dir / f"hub-{self.runs}.err").open("wb") as err,
        ):
            self._proc = subprocess.Popen(argv, env=self._env, stdout=out, stderr=err)
        _live.add(self._proc)
        self._wait_healthy(timeout_s)

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise HubStartError(
                        f"hub exited with {self._proc.returncode} while starting; "
                        f"stderr:\n{self._last_err()}"
                    )
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise HubStartError(f"hub not healthy after {timeout_s} s; stderr:\n{self._last_err()}")

    def _reap(self, sig: signal.Signals, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        try:
            if proc.poll() is not None:
                return proc.returncode
            proc.send_signal(sig)
            try:
                status = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return None
            return None if sig is signal.SIGKILL else status
        finally:
            _live.discard(proc)

    def _last_err(self) -> str:
        path = self.log_dir / f"hub-{self.runs}.err"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class HubProcesses:
    """Makes hubs in one directory and kills every one of them on :meth:`close`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._hubs: list[HubProcess] = []

    def new(self, name: str = "hub", env: dict[str, str] | None = None) -> HubProcess:
        """A hub (not started yet) with the data directory ``root/name``."""
        hub = HubProcess(self.root / name, env=env)
        self._hubs.append(hub)
        return hub

    def close(self) -> None:
        for hub in self._hubs:
            hub.close()

    def __enter__(self) -> HubProcesses:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@pytest.fixture
def hub_processes(tmp_path: Path) -> Iterator[HubProcesses]:
    """Hub subprocesses for one test, all killed at teardown: ``hub_processes.new().start()``."""
    with HubProcesses(tmp_path) as hubs:
        yield hubs


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
