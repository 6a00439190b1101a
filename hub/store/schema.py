"""Bring a database's schema up to date with the Alembic migrations in ``migrations/``.

The same migrations serve SQLite (the embedded default) and PostgreSQL. Concurrent starters are
serialised (a file lock beside a SQLite database, an advisory lock on PostgreSQL), so two
processes opening a new database at once do not both apply a migration.
"""

from __future__ import annotations

import fcntl
import sqlite3
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x4C69616E  # "Lian": the advisory lock all hub instances take to migrate


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    """The newest revision of the migrations shipped with this hub."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if row is None:
            return None
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(found[0]) if found else None
    finally:
        conn.close()


def migrate_sqlite(path: Path) -> None:
    """Create or upgrade the SQLite database at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and _sqlite_revision(path) == head():
        return
    with (path.parent / f".{path.name}.migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and _sqlite_revision(path) == head():
            return
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            with engine.begin() as connection:
                command.upgrade(_config(connection), "head")
        finally:
            engine.dispose()


def migrate_connection(connection: sa.Connection) -> None:
    """Upgrade through an open SQLAlchemy connection (PostgreSQL: under an advisory lock)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    command.upgrade(_config(connection), "head")
