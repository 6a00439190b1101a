"""The ``Bus`` interface every backend implements (embedded log now, Kafka next).

Delivery is at-least-once: a consumer commits a record's offset only after its handler has
finished and the handler's outputs are durably published, so a crash redelivers and never loses.
Handlers make that safe by being idempotent (derived ids; stores refuse a second insert).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish: ``key`` decides the partition (incident id, target jurisdiction)."""

    topic: str
    key: str | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Record:
    """A message as stored on the bus, with its position and the time it was appended."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    timestamp_ms: int


class Consumer(Protocol):
    """One member of a consumer group, reading some topics."""

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Records after the current position; waits up to ``timeout_s`` when there are none."""
        ...

    async def commit(self, records: Sequence[Record]) -> None:
        """Mark everything up to and including these records as done for the group."""
        ...

    async def rewind(self) -> None:
        """Go back to the last committed position (after a handler failed)."""
        ...

    async def close(self) -> None: ...


class Bus(Protocol):
    """Publish and consume canonical events."""

    async def publish(self, messages: Sequence[Outgoing]) -> list[Record]:
        """Durably append; returns when every message is stored (in order per key)."""
        ...

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer: ...

    async def read(self, topic: str, after: int, limit: int) -> list[Record]:
        """Read a topic directly, outside any group (export, replay, inspection).

        ``after`` 0 means from the beginning. Embedded: records with offset > ``after``. Kafka:
        records with offset >= ``after`` in every partition, in (partition, offset) order.
        """
        ...

    async def end_offsets(self, topics: Sequence[str]) -> dict[str, int]:
        """Per topic, where it ends (Kafka: summed over partitions). Compare only with ``>=``
        against ``committed``: caught up when committed >= end."""
        ...

    async def committed(self, group: str, topics: Sequence[str]) -> dict[str, int]:
        """Per topic, what ``group`` has committed (Kafka: next offsets, summed)."""
        ...

    async def lag(self, group: str, topics: Sequence[str]) -> dict[str, int]:
        """Per topic, how many records ``group`` has not committed yet."""
        ...

    async def close(self) -> None: ...
