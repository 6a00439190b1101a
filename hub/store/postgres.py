"""PostgreSQL state for hubs that share the load (SQLAlchemy 2 async over psycopg 3).

Every job runs in its own READ COMMITTED transaction, and constraints, not the isolation level,
keep the invariants when two jobs (of one hub or of two) race: primary keys on derived ids and on
sender + identifier, a unique (thread, version), ``ON CONFLICT DO NOTHING`` for what may be
written twice, and compare-and-set updates (``UPDATE ... WHERE state = <what was read>``). The
loser of a race gets a unique violation (23505) or ``ConcurrentUpdate`` and is retried here, with
backoff; its retry reads the winner's row and takes the "already there" path. SERIALIZABLE did
the same with predicate locks, but the outbox relay reading the table every insert appends to
made nearly every transaction a serialization failure under load. Serialization failures and
deadlocks (40001, 40P01) are still retried. The store code is the same as on SQLite: this module
only adapts the connection (``?`` placeholders to psycopg's ``%s``) and the transaction handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.errors import ConcurrentUpdate, Unavailable
from hub.store.db import Tx
from hub.store.schema import migrate_connection
from hub.store.sql import Cursor

T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "23505"})
_ATTEMPTS = 8
# The server is away (refused, restarting, shut down, connection lost): a few quick retries, then
# ``Unavailable`` (503 to an adapter, a later retry for a consumer). A transaction whose
# connection broke during COMMIT has an unknown outcome; every job is idempotent by id, so the
# retry (now or the caller's) finds what committed and takes the "already there" path.
_SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
_UNREACHABLE_ATTEMPTS = 3


def unreachable(exc: DBAPIError) -> bool:
    """Whether ``exc`` says the server cannot be reached, rather than refusing the statement."""
    if exc.connection_invalidated:
        return True
    state = sqlstate(exc)
    if state is None:
        return isinstance(exc, sa.exc.OperationalError)
    return state.startswith("08") or state in _SHUTDOWN_SQLSTATES


@lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """The store's ``Connection`` over a SQLAlchemy connection (driver-level SQL, no ORM)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        if not parameters:
            return self._conn.exec_driver_sql(sql)
        return self._conn.exec_driver_sql(_pg_sql(sql), tuple(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        return self._conn.exec_driver_sql(_pg_sql(sql), [tuple(p) for p in parameters])


def sqlalchemy_url(url: str) -> str:
    """``postgresql://...`` as given in LIANDONG_DATABASE → the psycopg async dialect URL."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"LIANDONG_DATABASE: '{url}' is not a postgresql:// URL")


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, if the driver gave one."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database; ``run`` is a retried transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self._engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            isolation_level="READ COMMITTED",
            pool_pre_ping=True,
        )

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def start(self) -> None:
        """Apply migrations (under an advisory lock, so several hubs may start at once)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(migrate_connection)

    async def stop(self) -> None:
        await self._engine.dispose()

    async def run(self, fn: Callable[[Tx], T]) -> T:
        delay = 0.002
        for attempt in range(_ATTEMPTS):
            try:
                return await self._attempt(fn)
            except ConcurrentUpdate as exc:
                if attempt == _ATTEMPTS - 1:
                    raise Unavailable(f"{exc}; try again") from exc
            except DBAPIError as exc:
                state = sqlstate(exc)
                if unreachable(exc):
                    if attempt >= _UNREACHABLE_ATTEMPTS - 1:
                        raise Unavailable("database unreachable; try again") from exc
                elif state not in RETRYABLE_SQLSTATES:
                    raise
                elif attempt == _ATTEMPTS - 1:
                    raise Unavailable(f"database busy (SQLSTATE {state}); try again") from exc
            await asyncio.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    async def _attempt(self, fn: Callable[[Tx], T]) -> T:
        async with self._engine.connect() as conn:
            tx_holder: list[Tx] = []

            def body(sync_conn: sa.Connection) -> T:
                tx = Tx(PgConnection(sync_conn))
                tx_holder.append(tx)
                return fn(tx)

            async with conn.begin():
                result = await conn.run_sync(body)
        tx_holder[0].committed()
        return result


class AdvisoryLeadership:
    """Leadership among hub instances through a session-level advisory lock.

    The lock lives as long as the connection that took it, so an instance that dies (even by
    SIGKILL) gives it up when PostgreSQL notices the closed connection.
    """

    def __init__(self, db: PostgresDatabase, key: int) -> None:
        self._db = db
        self._key = key
        self._conn: Any = None

    async def acquire(self) -> bool:
        if self._conn is not None:
            try:
                await self._conn.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.SQLAlchemyError:  # the connection, and the lock with it, is gone
                await self.release()
        conn = await self._db.engine.connect()
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = (await conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self._key})")).scalar()
        if got:
            self._conn = conn
            return True
        await conn.close()
        return False

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self._key})")
                await conn.close()
            except sa.exc.SQLAlchemyError:
                # A broken connection must not go back to the pool still holding the lock.
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    await conn.invalidate()
