"""What a store transaction emits its events through.

In the embedded default the emitter is the log itself (``EmbeddedBus.append``): state and events
commit together. A production store will append to an outbox table relayed to Kafka instead.
"""

from __future__ import annotations

from typing import Protocol

from hub.bus.port import Record
from hub.store.db import Tx


class Emitter(Protocol):
    def append(
        self, tx: Tx, topic: str, key: str | None, value: bytes, ts_ms: int | None = None
    ) -> Record: ...
