"""One SQLite database, one writer thread, group commit.

All access goes through a single thread that owns the connection: concurrent transactions
competing for SQLite's lock stall for seconds, while one writer batching whatever is queued into
one transaction (each job in its own savepoint, so a failing job does not spoil the others)
sustains thousands of transactions a second. A job's result is released only after COMMIT, so
"answered" always means "durable".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hub.errors import Unavailable
from hub.store.schema import migrate_sqlite
from hub.store.sql import Connection

T = TypeVar("T")
log = logging.getLogger(__name__)

_MAX_BATCH = 256
STOP = object()
"""Put on a writer's queue: the writer finishes the jobs before it, then ends."""


class Tx:
    """What a job sees: the connection, and hooks run on the event loop after COMMIT."""

    __slots__ = ("_after", "conn")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._after: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after.append(callback)

    def committed(self) -> None:
        """Run the after-commit hooks (called by the database once COMMIT succeeded)."""
        for callback in self._after:
            callback()


class Runner(Protocol):
    """What services need of a database: run a job in a transaction, answer after COMMIT."""

    async def run(self, fn: Callable[[Tx], T]) -> T: ...


@dataclass(slots=True)
class Job:
    """A job queued for a writer thread, and what it gave once its batch committed."""

    fn: Callable[[Tx], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    result: Any = None
    error: BaseException | None = None
    after: list[Callable[[], None]] = field(default_factory=list)


class Database:
    """The hub's SQLite file (WAL). ``run`` executes a job on the writer thread."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"LIANDONG_SQLITE_SYNCHRONOUS: unknown value '{synchronous}'")
        self.path = path
        self._synchronous = synchronous.upper()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._before_commit: list[Callable[[Connection], None]] = []

    def before_commit(self, hook: Callable[[Connection], None]) -> None:
        """Run ``hook`` on the writer thread inside every transaction, just before COMMIT.

        For writes that may ride along with whatever commits next (consumer offsets): they cost
        no transaction of their own. A failing hook is rolled back alone and logged.
        """
        self._before_commit.append(hook)

    def open(self) -> None:
        """Start the writer thread and apply migrations; raises if the file cannot be opened."""
        self._thread = threading.Thread(target=self._main, name="liandong-db", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    async def start(self) -> None:
        self.open()

    async def stop(self) -> None:
        self.close()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(STOP)
            self._thread.join()
            self._thread = None

    async def run(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` inside a write transaction; returns once it is committed."""
        if self._thread is None:
            raise Unavailable("the database is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(Job(fn, future, loop))
        return await future

    def _connect(self) -> sqlite3.Connection:
        migrate_sqlite(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to open(), which re-raises
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                batch, stop = take_batch(self._queue, _MAX_BATCH)
                if batch:
                    self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Job]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                tx = Tx(conn)
                conn.execute("SAVEPOINT job")
                try:
                    job.result = job.fn(tx)
                    job.after = tx._after
                except Exception as exc:  # the job's own failure; others in the batch go on
                    job.error = exc
                    conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
            for hook in self._before_commit:
                conn.execute("SAVEPOINT hook")
                try:
                    hook(conn)
                except Exception:  # a ride-along write must never fail the batch
                    log.exception("before-commit hook failed; its writes are rolled back")
                    conn.execute("ROLLBACK TO hook")
                conn.execute("RELEASE hook")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for job in batch:
                job.error = Unavailable(f"database commit failed: {exc}")
                job.after = []
        hand_back(batch)


def take_batch(jobs: queue.SimpleQueue[Any], most: int) -> tuple[list[Job], bool]:
    """From a writer thread: wait for a job, then take whatever else is queued, up to ``most``
    jobs (a group commit); True with them once ``STOP`` came (the jobs before it still run)."""
    first = jobs.get()
    if first is STOP:
        return [], True
    batch: list[Job] = [first]
    while len(batch) < most:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is STOP:
            return batch, True
        batch.append(job)
    return batch, False


def hand_back(batch: list[Job]) -> None:
    """From a writer thread: settle each job on its own event loop (after-commit hooks first)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
    for job in batch:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, jobs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # loop already closed: nobody waits
            loop.call_soon_threadsafe(_settle, jobs)


def _settle(jobs: list[Job]) -> None:
    for job in jobs:
        for callback in job.after:
            callback()
        if job.future.done():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)


def connect_direct(path: Path) -> sqlite3.Connection:
    """A connection for command-line tools that run beside (or instead of) the hub process.

    SQLite serialises it with the hub's writer through its file lock; ``busy_timeout`` makes
    it wait instead of failing while the hub commits.
    """
    migrate_sqlite(path)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn
