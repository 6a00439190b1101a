"""What a store transaction emits its events through.

In the embedded default the emitter is the log itself (``EmbeddedBus.append``): state and events
commit together. With Kafka, the emitter is the ``Outbox``: events are rows of the state
database, written in the same transaction, and the relay (``hub.bus.relay``) publishes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from hub.bus.port import Record
from hub.clock import Clock
from hub.drills.isolation import LIVE, Isolation
from hub.store.db import Tx
from hub.store.sql import Connection, insert_values


class Emitter(Protocol):
    def append(
        self, tx: Tx, topic: str, key: str | None, value: bytes, ts_ms: int | None = None
    ) -> Record: ...

    def append_many(self, tx: Tx, records: Sequence[Appended]) -> None:
        """``append`` each of ``records`` (topic, key, value, ts_ms), in order."""


Appended = tuple[str, str | None, bytes, int]
"""An event to append: topic, key, value and its time (ms)."""


class Outbox:
    """``Emitter`` into the ``outbox`` table; ``on_append`` wakes the relay after COMMIT."""

    def __init__(self, clock: Clock, on_append: Callable[[], None] | None = None) -> None:
        self._clock = clock
        self._on_append = on_append
        self.isolation: Isolation = LIVE  # a drill's hub sets its own (hub.drills.isolation)

    def append(
        self, tx: Tx, topic: str, key: str | None, value: bytes, ts_ms: int | None = None
    ) -> Record:
        ts = self._clock.now_ms() if ts_ms is None else ts_ms
        value = self.isolation.check(topic, value)
        (row_id,) = tx.conn.execute(
            "INSERT INTO outbox (topic, key, value, created_ms) VALUES (?, ?, ?, ?) RETURNING id",
            (topic, key, value, ts),
        ).fetchone()
        if self._on_append is not None:
            tx.after_commit(self._on_append)
        return Record(topic, -1, row_id, key, value, ts)

    def append_many(self, tx: Tx, records: Sequence[Appended]) -> None:
        """Several events by multi-row statements (``sql.insert_values``): their ids, and so
        the relay's order, follow ``records``."""
        if not records:
            return
        check = self.isolation.check
        insert_values(
            tx.conn,
            "INSERT INTO outbox (topic, key, value, created_ms)",
            [(topic, key, check(topic, value), ts) for topic, key, value, ts in records],
        )
        if self._on_append is not None:
            tx.after_commit(self._on_append)


def first_emission(conn: Connection, event_id: str) -> bool:
    """True the first time ``event_id`` is seen: for events with no state row of their own
    (evaluation failures), so a redelivered cause does not emit them twice."""
    cur = conn.execute(
        "INSERT INTO emitted (event_id) VALUES (?) ON CONFLICT (event_id) DO NOTHING", (event_id,)
    )
    return cur.rowcount == 1
