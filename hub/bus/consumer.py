"""The consumer loop shared by every handler on every backend.

Commit only after the handler has finished (its outputs are durable by then). A batch that
fails is retried with backoff when the error says it may pass; otherwise it is split and each
record retried alone, so one poison message goes to the dead-letter topic with the reason and
never blocks the records behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hub.bus import topics
from hub.bus.port import Bus, Consumer, Outgoing, Record
from hub.clock import Clock
from hub.errors import HubError, Unavailable
from hub.model.envelope import derived_id, format_time
from hub.model.events import EventDeadLettered, make_event

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Record]], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_backoff_s: float = 0.05
    max_backoff_s: float = 2.0


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, HubError) and exc.retryable


def deadletter_message(record: Record, group: str, reason: str, clock: Clock) -> Outgoing:
    """The dead-letter event for ``record``: the raw bytes kept, with the reason."""
    try:
        text = record.value.decode("utf-8")
    except UnicodeDecodeError:
        text = record.value.hex()
    payload = EventDeadLettered(
        topic=record.topic,
        offset=record.offset,
        key=record.key,
        group=group,
        reason=reason,
        payload=text,
    )
    envelope = make_event(
        "event.deadlettered",
        payload,
        id=derived_id("deadletter", group, record.topic, str(record.offset)),
        source=f"/liandong/hub/{group}",
        time=format_time(clock.now_ms()),
        jurisdiction="hub",
        correlationid=record.key or f"{record.topic}/{record.offset}",
        status=topics.lane_of(record.topic),
    )
    return Outgoing(
        topics.for_lane(topics.DEADLETTER, topics.lane_of(record.topic)),
        record.key,
        envelope.encode(),
    )


class ConsumerLoop:
    """Runs ``handler`` over everything ``consumer`` delivers until ``stop`` is called."""

    def __init__(
        self,
        bus: Bus,
        consumer: Consumer,
        group: str,
        handler: Handler,
        clock: Clock,
        *,
        max_batch: int = 256,
        poll_timeout_s: float = 1.0,
        retry: RetryPolicy | None = None,
        on_deadletter: Callable[[], None] | None = None,
    ) -> None:
        self._bus = bus
        self._consumer = consumer
        self._group = group
        self._handler = handler
        self._clock = clock
        self._max_batch = max_batch
        self._poll_timeout_s = poll_timeout_s
        self._retry = retry or RetryPolicy()
        self._on_deadletter = on_deadletter
        self._stopping = asyncio.Event()
        self.deadlettered = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        outage_backoff = self._retry.first_backoff_s
        try:
            while not self._stopping.is_set():
                try:
                    records = await self._consumer.poll(self._max_batch, self._poll_timeout_s)
                    if not records:
                        continue
                    await self._process(records)
                    await self._consumer.commit(records)
                    outage_backoff = self._retry.first_backoff_s
                except Unavailable as exc:
                    # The broker or database is away: wait, go back to what is committed, and
                    # go on; what was handled but not committed comes again and is absorbed.
                    log.warning(
                        "group %s: %s; retrying in %.2f s", self._group, exc, outage_backoff
                    )
                    await asyncio.sleep(outage_backoff)
                    outage_backoff = min(outage_backoff * 2, self._retry.max_backoff_s)
                    with contextlib.suppress(Unavailable):
                        await self._consumer.rewind()
        finally:
            await self._consumer.close()

    async def _process(self, records: Sequence[Record]) -> None:
        error = await self._attempt(records)
        if error is None:
            return
        if len(records) == 1:
            await self._deadletter(records[0], error)
            return
        for record in records:  # isolate the poison record(s)
            single_error = await self._attempt([record])
            if single_error is not None:
                await self._deadletter(record, single_error)

    async def _attempt(self, records: Sequence[Record]) -> BaseException | None:
        backoff = self._retry.first_backoff_s
        for attempt in range(self._retry.attempts):
            try:
                await self._handler(records)
                return None
            except Exception as exc:  # the loop boundary: every failure is handled here
                if isinstance(exc, Unavailable) and attempt == self._retry.attempts - 1:
                    # A dependency is away, the record is not at fault: never dead-letter it;
                    # the loop waits, rewinds to what is committed and delivers it again.
                    raise
                if not _retryable(exc) or attempt == self._retry.attempts - 1:
                    return exc
                log.warning("group %s: retrying after %s", self._group, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry.max_backoff_s)
        return None

    async def _deadletter(self, record: Record, error: BaseException) -> None:
        reason = f"{type(error).__name__}: {error}"
        log.error(
            "group %s: dead-lettering %s@%s: %s", self._group, record.topic, record.offset, reason
        )
        await self._bus.publish([deadletter_message(record, self._group, reason, self._clock)])
        self.deadlettered += 1
        if self._on_deadletter is not None:
            self._on_deadletter()
