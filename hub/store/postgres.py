"""PostgreSQL state for hubs that share the load (SQLAlchemy 2 over psycopg 3).

Jobs run in READ COMMITTED transactions (several jobs to a transaction: see
``PostgresDatabase``), and constraints, not the isolation level,
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
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.errors import ConcurrentUpdate, Unavailable
from hub.store.db import STOP, Job, Tx, hand_back, take_batch
from hub.store.schema import migrate_connection
from hub.store.sql import UNPREPARED, Cursor

T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "23505"})
_ATTEMPTS = 8
# The server is away (refused, restarting, shut down, connection lost): a few quick retries, then
# ``Unavailable`` (503 to an adapter, a later retry for a consumer). A transaction whose
# connection broke during COMMIT has an unknown outcome; every job is idempotent by id, so the
# retry (now or the caller's) finds what committed and takes the "already there" path.
_SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
_UNREACHABLE_ATTEMPTS = 3
_MAX_BATCH = 128


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


@lru_cache(maxsize=2048)
def _pg_raw(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's own ``$1, $2, ...``, for psycopg's ``RawCursor``:
    psycopg then sends the text as it is. Its usual ``%s`` style parses every statement's text
    in Python, and does not cache statements of more than 50 parameters (the multi-row ones of
    ``sql.insert_values``): measured here at about five times the client CPU of the raw cursor
    for 200 rows of 11 values."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], 1):
        out.append(f"${n}")
        out.append(part)
    return "".join(out)


class PgConnection:
    """The store's ``Connection`` over a SQLAlchemy connection (driver-level SQL, no ORM)."""

    __slots__ = ("_conn", "_piped")

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._piped: Any = None  # the psycopg connection while a pipeline is open

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        if self._piped is not None or sql.startswith(UNPREPARED):
            driver = self._piped or self._driver()
            prepare = False if sql.startswith(UNPREPARED) else None  # None: psycopg decides
            try:
                cursor: Cursor = psycopg.RawCursor(driver).execute(
                    _pg_raw(sql), tuple(parameters), prepare=prepare
                )
            except psycopg.Error as exc:
                raise _wrapped(exc) from exc
            return cursor
        if not parameters:
            return self._conn.exec_driver_sql(sql)
        return self._conn.exec_driver_sql(_pg_sql(sql), tuple(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        if self._piped is not None:
            cursor = psycopg.RawCursor(self._piped)
            try:
                cursor.executemany(_pg_raw(sql), [tuple(p) for p in parameters])
            except psycopg.Error as exc:
                raise _wrapped(exc) from exc
            result: Cursor = cursor
            return result
        return self._conn.exec_driver_sql(_pg_sql(sql), [tuple(p) for p in parameters])

    @contextlib.contextmanager
    def pipeline(self) -> Iterator[None]:
        """psycopg's pipeline mode within the transaction SQLAlchemy began (``sql.pipeline``)."""
        if self._piped is not None:
            yield
            return
        driver = self._driver()
        try:
            with driver.pipeline():
                self._piped = driver
                try:
                    yield
                finally:
                    self._piped = None
        except psycopg.Error as exc:
            raise _wrapped(exc) from exc

    def _driver(self) -> Any:
        driver = self._conn.connection.driver_connection
        if driver is None:
            raise sa.exc.ResourceClosedError("the connection is closed")
        return driver


def _wrapped(exc: psycopg.Error) -> DBAPIError:
    """A psycopg error raised past SQLAlchemy, as SQLAlchemy would have raised it (so the
    retry rules, which read SQLSTATEs and disconnects from ``DBAPIError``, apply alike)."""
    wrapped = DBAPIError.instance(None, None, exc, psycopg.Error)
    assert isinstance(wrapped, DBAPIError)
    return wrapped


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
    """PostgreSQL through writer threads that group-commit; ``run`` is a retried transaction.

    Each writer thread owns one connection (SQLAlchemy 2 Core over psycopg 3) and runs whatever
    jobs are queued as one READ COMMITTED transaction, as the SQLite writer does. A batch first
    runs without savepoints; should any job fail, the transaction is rolled back and the batch
    runs again with each job in its own savepoint, so one job's failure never spoils the others.
    A job's answer is released only after COMMIT. The async driver was measured here at about
    three times the CPU per statement of this synchronous one (greenlet and future per round
    trip), which capped a hub near 700 transactions a second; a thread waiting on the socket
    releases the GIL, so the event loop runs on meanwhile. The async engine remains for
    migrations and the relay's advisory lock.
    """

    def __init__(self, url: str, *, writers: int = 2, max_batch: int = _MAX_BATCH) -> None:
        if writers < 1:
            raise ValueError(f"LIANDONG_PG_WRITERS: needs at least 1 writer, got {writers}")
        self.url = url
        self._writers = writers
        self._max_batch = max_batch
        self._engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=2,
            max_overflow=2,
            isolation_level="READ COMMITTED",
            pool_pre_ping=True,
        )
        self._sync = sa.create_engine(
            sqlalchemy_url(url),
            pool_size=writers,
            max_overflow=0,
            isolation_level="READ COMMITTED",
        )
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def start(self) -> None:
        """Apply migrations (under an advisory lock, so several hubs may start at once), then
        start the writers."""
        async with self._engine.begin() as conn:
            await conn.run_sync(migrate_connection)
        for n in range(self._writers):
            thread = threading.Thread(target=self._main, name=f"liandong-pg-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    async def stop(self) -> None:
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(STOP)
        for thread in threads:
            await asyncio.to_thread(thread.join)
        await asyncio.to_thread(self._sync.dispose)
        await self._engine.dispose()

    async def run(self, fn: Callable[[Tx], T]) -> T:
        delay = 0.002
        for attempt in range(_ATTEMPTS):
            try:
                return await self._submit(fn)
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

    async def _submit(self, fn: Callable[[Tx], T]) -> T:
        if not self._threads:
            raise Unavailable("the database is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(Job(fn, future, loop))
        return await future

    # -- on a writer thread ----------------------------------------------------------------

    def _main(self) -> None:
        conn: sa.Connection | None = None
        try:
            while True:
                batch, stop = take_batch(self._queue, self._max_batch)
                if batch:
                    conn = self._run_batch(conn, batch)
                    hand_back(batch)
                if stop:
                    return
        finally:
            if conn is not None:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    conn.close()

    def _run_batch(self, conn: sa.Connection | None, batch: list[Job]) -> sa.Connection | None:
        """Run ``batch`` in one transaction; returns the connection to keep (None if broken)."""
        try:
            if conn is None:
                conn = self._sync.connect()
            if not self._all_or_none(conn, batch):
                self._each_in_savepoint(conn, batch)
            return conn
        except DBAPIError as exc:  # connect, BEGIN, a savepoint or COMMIT failed: all fail
            for job in batch:
                job.result, job.error, job.after = None, exc, []
            if conn is not None:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    conn.rollback()
                if conn.invalidated or unreachable(exc):
                    with contextlib.suppress(sa.exc.SQLAlchemyError):
                        conn.close()
                    return None
            return conn

    @staticmethod
    def _all_or_none(conn: sa.Connection, batch: list[Job]) -> bool:
        """Every job in one transaction without savepoints; False (rolled back) if one failed
        in a batch of several. A batch of one keeps its own failure."""
        trans = conn.begin()
        for job in batch:
            tx = Tx(PgConnection(conn))
            try:
                job.result, job.error, job.after = job.fn(tx), None, tx._after
            except Exception as exc:
                trans.rollback()
                if len(batch) > 1:
                    return False
                job.result, job.error, job.after = None, exc, []
                return True
        trans.commit()
        return True

    @staticmethod
    def _each_in_savepoint(conn: sa.Connection, batch: list[Job]) -> None:
        trans = conn.begin()
        for job in batch:
            tx = Tx(PgConnection(conn))
            savepoint = conn.begin_nested()
            try:
                job.result, job.error, job.after = job.fn(tx), None, tx._after
                savepoint.commit()
            except Exception as exc:  # the job's own failure; the others go on
                job.result, job.error, job.after = None, exc, []
                savepoint.rollback()
        trans.commit()


class AdvisoryLeadership:
    """Leadership among hub instances through a session-level advisory lock.

    The lock lives as long as the connection that took it, so an instance that dies (even by
    SIGKILL) gives it up when PostgreSQL notices the closed connection.
    """

    def __init__(self, db: PostgresDatabase, key: int, *, check_every_s: float = 0.2) -> None:
        self._db = db
        self._key = key
        self._conn: Any = None
        self._check_every_s = check_every_s
        self._checked_at = 0.0

    async def acquire(self) -> bool:
        if self._conn is not None:
            # The relay asks before every batch; the connection is checked a few times a second.
            if time.monotonic() - self._checked_at < self._check_every_s:
                return True
            try:
                await self._conn.exec_driver_sql("SELECT 1")
                self._checked_at = time.monotonic()
                return True
            except sa.exc.SQLAlchemyError:  # the connection, and the lock with it, is gone
                await self.release()
        conn = await self._db.engine.connect()
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = (await conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self._key})")).scalar()
        if got:
            self._conn = conn
            self._checked_at = time.monotonic()
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
