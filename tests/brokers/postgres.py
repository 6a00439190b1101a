"""PostgreSQL for tests: a fresh database per test on a real server.

Order of preference: ``LIANDONG_TEST_POSTGRES`` (an admin URL, e.g. postgresql://postgres@host/postgres);
the machine's server on 127.0.0.1:5432 (started with pg_ctlcluster if installed but stopped); a
throw-away cluster made with initdb on a free port, run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

_LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return versions[0] if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _PrivateCluster:
    """initdb + pg_ctl on a free port in a temp dir, owned by the postgres user."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="liandong-pg-"))
        self.port = _free_port()
        shutil.chown(self.dir, "postgres", "postgres")

    def _as_postgres(self, *args: str) -> None:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        data = self.dir / "data"
        self._as_postgres(self.bin / "initdb", "-D", data, "-U", "postgres", "--auth=trust")
        self._as_postgres(
            self.bin / "pg_ctl",
            "-D",
            data,
            "-l",
            self.dir / "log",
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "start",
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._as_postgres(
                self.bin / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "stop"
            )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """An admin URL of a running PostgreSQL server (see the module docstring)."""
    given = os.environ.get("LIANDONG_TEST_POSTGRES")
    if given:
        yield given
        return
    if _reachable(_LOCAL):
        yield _LOCAL
        return
    if shutil.which("pg_ctlcluster"):
        for version in sorted(p.name for p in Path("/etc/postgresql").glob("*")):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if _reachable(_LOCAL):
                yield _LOCAL
                return
            time.sleep(0.5)
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (scripts/test does)")
    cluster = _PrivateCluster(bin_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A new, empty database for one test; dropped afterwards."""
    name = f"liandong_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
