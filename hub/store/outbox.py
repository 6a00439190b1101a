"""What a store transaction emits its events through.

In the embedded default the emitter is the log itself (``EmbeddedBus.append``): state and events
commit together. A production store will append to an outbox table relayed to Kafka instead.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

from hub.bus.port import Record
from hub.store.db import Tx


class Emitter(Protocol):
    def append(
        self, tx: Tx, topic: str, key: str | None, value: bytes, ts_ms: int | None = None
    ) -> Record: ...


def first_emission(conn: sqlite3.Connection, event_id: str) -> bool:
    """True the first time ``event_id`` is seen: for events with no state row of their own
    (evaluation failures), so a redelivered cause does not emit them twice."""
    cur = conn.execute("INSERT OR IGNORE INTO emitted (event_id) VALUES (?)", (event_id,))
    return cur.rowcount == 1
