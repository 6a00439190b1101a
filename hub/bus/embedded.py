"""The embedded bus: a durable log in the hub's own SQLite database.

State changes and the events they emit commit in one transaction (``append`` is called inside
the store's transaction), so the log and the state can never disagree. One process owns the
data directory, so a consumer group has one member; offsets are the log's row ids (one
partition per topic, increasing, with gaps between topics).

The hot path never reads the log back: after COMMIT each new record is handed to the consumers
watching its topic, in memory; a consumer reads the database only to catch up (at start, after
a rewind, or if it fell too far behind). Committed offsets ride along in the next transaction
the writer commits, so consuming costs no transaction of its own; a crash before that
redelivers a few records, which handlers absorb by their derived ids.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from hub.bus.port import Outgoing, Record
from hub.clock import Clock
from hub.drills.isolation import LIVE, Isolation
from hub.errors import Conflict
from hub.store.db import Database, Tx
from hub.store.sql import Connection

if TYPE_CHECKING:
    from hub.store.outbox import Appended

_READ = (
    'SELECT "offset", key, ts_ms, value FROM log '
    'WHERE topic = ? AND "offset" > ? ORDER BY "offset" LIMIT ?'
)
_SAVE_OFFSETS = (
    'INSERT INTO consumer_offsets (grp, topic, partition, "offset") VALUES (?, ?, 0, ?) '
    'ON CONFLICT (grp, topic, partition) DO UPDATE SET "offset" = '
    'CASE WHEN excluded."offset" > "offset" THEN excluded."offset" ELSE "offset" END'
)
_TAIL_LIMIT = 50_000


class EmbeddedBus:
    """``Bus`` backed by the ``log`` table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._members: dict[str, EmbeddedConsumer] = {}
        self._watchers: dict[str, list[EmbeddedConsumer]] = {}
        self._pending: dict[tuple[str, str], int] = {}
        self._pending_lock = threading.Lock()
        self.isolation: Isolation = LIVE  # a drill's hub sets its own (hub.drills.isolation)
        db.before_commit(self._save_offsets)

    # -- inside a transaction -------------------------------------------------------------
    def append(
        self, tx: Tx, topic: str, key: str | None, value: bytes, ts_ms: int | None = None
    ) -> Record:
        """Append within the caller's transaction; consumers get it after COMMIT."""
        ts = self._clock.now_ms() if ts_ms is None else ts_ms
        value = self.isolation.check(topic, value)
        (offset,) = tx.conn.execute(
            'INSERT INTO log (topic, key, ts_ms, value) VALUES (?, ?, ?, ?) RETURNING "offset"',
            (topic, key, ts, value),
        ).fetchone()
        record = Record(topic, 0, offset, key, value, ts)
        if topic in self._watchers:
            tx.after_commit(partial(self._deliver, record))
        return record

    def append_many(self, tx: Tx, records: Sequence[Appended]) -> None:
        """``append`` each of ``records`` (topic, key, value, ts_ms), in order."""
        for topic, key, value, ts in records:
            self.append(tx, topic, key, value, ts)

    def _deliver(self, record: Record) -> None:
        for consumer in self._watchers.get(record.topic, ()):
            consumer._offer(record)

    def _save_offsets(self, conn: Connection) -> None:
        """Writer thread, before COMMIT: persist the offsets committed since the last time."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        if pending:
            conn.executemany(_SAVE_OFFSETS, [(g, t, o) for (g, t), o in pending.items()])

    def _commit(self, group: str, offsets: dict[str, int]) -> None:
        with self._pending_lock:
            for topic, offset in offsets.items():
                key = (group, topic)
                if offset > self._pending.get(key, 0):
                    self._pending[key] = offset

    # -- Bus ------------------------------------------------------------------------------
    async def publish(self, messages: Sequence[Outgoing]) -> list[Record]:
        def write(tx: Tx) -> list[Record]:
            return [self.append(tx, m.topic, m.key, m.value) for m in messages]

        return await self._db.run(write)

    def consumer(self, group: str, topics: Sequence[str]) -> EmbeddedConsumer:
        if group in self._members:
            raise Conflict(f"consumer group '{group}' already has a member in this hub")
        consumer = EmbeddedConsumer(self, group, tuple(topics))
        self._members[group] = consumer
        for topic in consumer.topics:
            self._watchers.setdefault(topic, []).append(consumer)
        return consumer

    async def read(self, topic: str, after: int, limit: int) -> list[Record]:
        def fetch(tx: Tx) -> list[Record]:
            rows = tx.conn.execute(_READ, (topic, after, limit)).fetchall()
            return [Record(topic, 0, o, k, v, ts) for o, k, ts, v in rows]

        return await self._db.run(fetch)

    async def end_offsets(self, topics: Sequence[str]) -> dict[str, int]:
        def fetch(tx: Tx) -> dict[str, int]:
            out = {}
            for topic in topics:
                (end,) = tx.conn.execute(
                    'SELECT COALESCE(MAX("offset"), 0) FROM log WHERE topic = ?', (topic,)
                ).fetchone()
                out[topic] = end
            return out

        return await self._db.run(fetch)

    async def committed(self, group: str, topics: Sequence[str]) -> dict[str, int]:
        def read(tx: Tx) -> dict[str, int]:
            self._save_offsets(tx.conn)  # pending offsets first, so the answer is current
            return _committed(tx, group, topics)

        return await self._db.run(read)

    async def lag(self, group: str, topics: Sequence[str]) -> dict[str, int]:
        def count(tx: Tx) -> dict[str, int]:
            self._save_offsets(tx.conn)
            done = _committed(tx, group, topics)
            return {
                topic: tx.conn.execute(
                    'SELECT COUNT(*) FROM log WHERE topic = ? AND "offset" > ?',
                    (topic, done[topic]),
                ).fetchone()[0]
                for topic in topics
            }

        return await self._db.run(count)

    async def close(self) -> None:
        for consumer in list(self._members.values()):
            await consumer.close()

    def _leave(self, consumer: EmbeddedConsumer) -> None:
        for topic in consumer.topics:
            watchers = self._watchers.get(topic, [])
            if consumer in watchers:
                watchers.remove(consumer)
        if self._members.get(consumer.group) is consumer:
            del self._members[consumer.group]


def _committed(tx: Tx, group: str, topics: Sequence[str]) -> dict[str, int]:
    out = dict.fromkeys(topics, 0)
    rows = tx.conn.execute(
        'SELECT topic, "offset" FROM consumer_offsets WHERE grp = ?', (group,)
    ).fetchall()
    for topic, offset in rows:
        if topic in out:
            out[topic] = offset
    return out


class EmbeddedConsumer:
    """The single member of a consumer group on the embedded bus."""

    def __init__(self, bus: EmbeddedBus, group: str, topics: tuple[str, ...]) -> None:
        self._bus = bus
        self.group = group
        self.topics = topics
        self._positions: dict[str, int] | None = None
        self._tail: deque[Record] = deque()
        self._catching_up = True  # read the database until it has nothing more for us
        self._event = asyncio.Event()
        self._closed = False

    def _offer(self, record: Record) -> None:
        if len(self._tail) >= _TAIL_LIMIT:
            # Too far behind to keep everything in memory: catch up from the database.
            self._tail.clear()
            self._catching_up = True
        else:
            self._tail.append(record)
        self._event.set()

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._event.clear()
            records = await self._next(max_records)
            remaining = deadline - loop.time()
            if records or remaining <= 0:
                return records
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                return []

    async def _next(self, max_records: int) -> list[Record]:
        if self._positions is None:
            self._positions = await self._bus.committed(self.group, self.topics)
        positions = self._positions
        if self._catching_up:
            # Cleared before reading: whatever commits from now on also reaches the tail.
            self._catching_up = False
            records = await self._read(dict(positions), max_records)
            if len(records) >= max_records:
                self._catching_up = True
        else:
            records = []
            while self._tail and len(records) < max_records:
                record = self._tail.popleft()
                if record.offset > positions[record.topic]:
                    records.append(record)
        for record in records:
            if record.offset > positions[record.topic]:
                positions[record.topic] = record.offset
        return records

    async def _read(self, positions: dict[str, int], max_records: int) -> list[Record]:
        def fetch(tx: Tx) -> list[Record]:
            out: list[Record] = []
            for topic in self.topics:
                rows = tx.conn.execute(_READ, (topic, positions[topic], max_records)).fetchall()
                out.extend(Record(topic, 0, o, k, v, ts) for o, k, ts, v in rows)
            out.sort(key=lambda r: r.offset)
            return out[:max_records]

        return await self._bus._db.run(fetch)

    async def commit(self, records: Sequence[Record]) -> None:
        """Done up to these records; saved with the writer's next transaction."""
        last: dict[str, int] = {}
        for record in records:
            last[record.topic] = max(last.get(record.topic, 0), record.offset)
        if last:
            self._bus._commit(self.group, last)

    async def rewind(self) -> None:
        self._positions = None
        self._tail.clear()
        self._catching_up = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._leave(self)
        # Any job makes the writer commit, and with it the pending offsets.
        await self._bus._db.run(lambda tx: None)
