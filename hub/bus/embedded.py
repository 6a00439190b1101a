"""The embedded bus: a durable log in the hub's own SQLite database.

State changes and the events they emit commit in one transaction (``append`` is called inside
the store's transaction), so the log and the state can never disagree. One process owns the
data directory, so a consumer group has one member; offsets are the log's row ids (one
partition per topic, increasing, with gaps between topics).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial

from hub.bus.port import Outgoing, Record
from hub.clock import Clock
from hub.errors import Conflict
from hub.store.db import Database, Tx

_READ = (
    'SELECT "offset", key, ts_ms, value FROM log '
    'WHERE topic = ? AND "offset" > ? ORDER BY "offset" LIMIT ?'
)


class EmbeddedBus:
    """``Bus`` backed by the ``log`` table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._members: dict[str, EmbeddedConsumer] = {}
        self.end: dict[str, int] = {}

    # -- inside a transaction -------------------------------------------------------------
    def append(
        self, tx: Tx, topic: str, key: str | None, value: bytes, ts_ms: int | None = None
    ) -> Record:
        """Append within the caller's transaction; consumers are woken after COMMIT."""
        ts = self._clock.now_ms() if ts_ms is None else ts_ms
        (offset,) = tx.conn.execute(
            'INSERT INTO log (topic, key, ts_ms, value) VALUES (?, ?, ?, ?) RETURNING "offset"',
            (topic, key, ts, value),
        ).fetchone()
        tx.after_commit(partial(self._appended, topic, offset))
        return Record(topic, 0, offset, key, value, ts)

    def _appended(self, topic: str, offset: int) -> None:
        if offset > self.end.get(topic, 0):
            self.end[topic] = offset
        for event in self._waiters.get(topic, ()):
            event.set()

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
        return await self._db.run(partial(_committed, group=group, topics=topics))

    async def close(self) -> None:
        for consumer in list(self._members.values()):
            await consumer.close()

    def _watch(self, topics: Sequence[str], event: asyncio.Event) -> None:
        for topic in topics:
            self._waiters.setdefault(topic, set()).add(event)

    def _unwatch(self, group: str, topics: Sequence[str], event: asyncio.Event) -> None:
        for topic in topics:
            self._waiters.get(topic, set()).discard(event)
        self._members.pop(group, None)


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
        self._event = asyncio.Event()
        bus._watch(topics, self._event)

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._event.clear()
            records = await self._fetch(max_records)
            remaining = deadline - loop.time()
            if records or remaining <= 0:
                return records
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                return []

    async def _fetch(self, max_records: int) -> list[Record]:
        if self._positions is None:
            self._positions = await self._bus.committed(self.group, self.topics)
        positions = dict(self._positions)

        def fetch(tx: Tx) -> list[Record]:
            out: list[Record] = []
            for topic in self.topics:
                rows = tx.conn.execute(_READ, (topic, positions[topic], max_records)).fetchall()
                out.extend(Record(topic, 0, o, k, v, ts) for o, k, ts, v in rows)
            out.sort(key=lambda r: r.offset)
            return out[:max_records]

        records = await self._bus._db.run(fetch)
        for record in records:
            self._positions[record.topic] = record.offset
        return records

    async def commit(self, records: Sequence[Record]) -> None:
        last: dict[str, int] = {}
        for record in records:
            last[record.topic] = max(last.get(record.topic, 0), record.offset)
        if not last:
            return

        def write(tx: Tx) -> None:
            tx.conn.executemany(
                'INSERT INTO consumer_offsets (grp, topic, partition, "offset") '
                "VALUES (?, ?, 0, ?) "
                'ON CONFLICT (grp, topic, partition) DO UPDATE SET "offset" = '
                'MAX("offset", excluded."offset")',
                [(self.group, topic, offset) for topic, offset in last.items()],
            )

        await self._bus._db.run(write)

    async def rewind(self) -> None:
        self._positions = None

    async def close(self) -> None:
        self._bus._unwatch(self.group, self.topics, self._event)
