"""The outbox relay: publishes the events that state changes wrote to the ``outbox`` table.

Rows are published in id order by one leader among the hub instances (so a key's events keep
their order), then marked sent. A publish that fails or times out has an unknown outcome: the
rows stay unsent and go again; consumers absorb the duplicate by its derived id. Sent rows are
kept for ``retention_ms``: when the broker shows it lost its log (a partition's offsets went
backwards, as a memory-only broker does on restart), every retained row is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Protocol

from hub.bus.port import Bus, Outgoing, Record
from hub.clock import Clock
from hub.store.db import Runner, Tx
from hub.store.sql import UNPREPARED, chunks, marks

log = logging.getLogger(__name__)

_ROUNDS = 8  # batches one ``relay_once`` publishes at most


class Leadership(Protocol):
    async def acquire(self) -> bool: ...

    async def release(self) -> None: ...


class SoleLeader:
    """Leadership when only one process can relay (a SQLite outbox)."""

    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class OutboxRelay:
    def __init__(
        self,
        db: Runner,
        bus: Bus,
        clock: Clock,
        leadership: Leadership | None = None,
        *,
        batch: int = 500,
        idle_poll_s: float = 0.05,
        retention_ms: int = 3_600_000,
        forget_every_s: float = 10.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._leadership = leadership or SoleLeader()
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self._retention_ms = retention_ms
        self._forget_every_s = forget_every_s
        self._forgot_at = float("-inf")
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._high: dict[tuple[str, int], int] = {}
        self.published = 0
        self.resent = 0

    def wake(self) -> None:
        """Called after a transaction that appended to the outbox has committed."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.05
        try:
            while not self._stopping.is_set():
                try:
                    if not await self._leadership.acquire():
                        await self._sleep(1.0)
                        continue
                    sent = await self.relay_once()
                    backoff = 0.05
                    if sent == 0:
                        await self._sleep(self._idle_poll_s)
                except Exception as exc:  # the loop boundary: the broker or database failed
                    log.warning("outbox relay: %s; retrying in %.2f s", exc, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
        finally:
            await self._leadership.release()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def relay_once(self) -> int:
        """Publish unsent rows a batch at a time until none is left, at most ``_ROUNDS``
        batches (the leadership is asked again between calls); returns how many were
        published. Marking a batch sent and reading the next go in one transaction."""
        rows = await self._db.run(self._unsent)
        if not rows:
            # Old sent rows go when idle, now and then: a poll costs one transaction, not two.
            now = time.monotonic()
            if now - self._forgot_at >= self._forget_every_s:
                self._forgot_at = now
                await self._db.run(self._forget_old)
            return 0
        total = 0
        for round_ in range(_ROUNDS):
            records = await self._bus.publish([Outgoing(t, k, v) for _, t, k, v in rows])
            ids = [row[0] for row in rows]
            read = round_ < _ROUNDS - 1 and not self._stopping.is_set()
            now = self._clock.now_ms()
            rows = await self._db.run(partial(self._mark_sent, ids=ids, now=now, read_next=read))
            self.published += len(ids)
            total += len(ids)
            if self._broker_lost_log(records):
                await self.resend_retained()
            if not rows:
                break
        return total

    def _broker_lost_log(self, records: Sequence[Record]) -> bool:
        lost = False
        for record in records:
            if record.partition < 0:
                continue
            where = (record.topic, record.partition)
            if record.offset < self._high.get(where, -1):
                lost = True
            self._high[where] = max(self._high.get(where, -1), record.offset)
        if lost:
            self._high = {}
        return lost

    async def resend_retained(self) -> int:
        """Send again every retained row (after the broker lost what it had)."""
        after, total = 0, 0
        while True:
            rows = await self._db.run(lambda tx, a=after: self._retained(tx, a))  # type: ignore[misc]
            if not rows:
                break
            await self._bus.publish([Outgoing(t, k, v) for _, t, k, v in rows])
            after, total = rows[-1][0], total + len(rows)
        log.warning("outbox relay: broker lost its log; re-sent %d retained events", total)
        self.resent += total
        return total

    def _unsent(self, tx: Tx) -> list[tuple[int, str, str | None, bytes]]:
        rows = tx.conn.execute(
            "SELECT id, topic, key, value FROM outbox WHERE sent_ms IS NULL ORDER BY id LIMIT ?",
            (self._batch,),
        ).fetchall()
        return [(i, t, k, bytes(v)) for i, t, k, v in rows]

    def _retained(self, tx: Tx, after: int) -> list[tuple[int, str, str | None, bytes]]:
        rows = tx.conn.execute(
            "SELECT id, topic, key, value FROM outbox WHERE sent_ms IS NOT NULL AND id > ? "
            "ORDER BY id LIMIT ?",
            (after, self._batch),
        ).fetchall()
        return [(i, t, k, bytes(v)) for i, t, k, v in rows]

    def _mark_sent(
        self, tx: Tx, ids: list[int], now: int, read_next: bool
    ) -> list[tuple[int, str, str | None, bytes]]:
        """Mark ``ids`` sent; then, if ``read_next``, the next unsent rows."""
        for chunk in chunks(ids):
            tx.conn.execute(
                f"{UNPREPARED}UPDATE outbox SET sent_ms = ? WHERE id IN ({marks(len(chunk))})",
                (now, *chunk),
            )
        return self._unsent(tx) if read_next else []

    def _forget_old(self, tx: Tx) -> None:
        cutoff = self._clock.now_ms() - self._retention_ms
        tx.conn.execute("DELETE FROM outbox WHERE sent_ms IS NOT NULL AND sent_ms < ?", (cutoff,))
