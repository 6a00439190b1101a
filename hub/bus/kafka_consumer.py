"""One member of a Kafka consumer group, as the shared ``ConsumerLoop`` drives it.

- Auto-commit is off: ``commit(records)`` commits, per partition, the last record's offset + 1
  (Kafka's "next offset": everything up to and including these records is done). It is called
  by the loop only after the handler finished and its outputs were published.
- A rebalance is handled by a listener. When partitions are revoked it commits what the loop
  has finished but could not commit yet (a commit refused because the group was rebalancing),
  then forgets everything about the revoked partitions: records polled but not finished are
  never committed by this member (a later ``commit`` of records polled before the partition
  was, possibly again, assigned to it is dropped), so the partition's next owner gets them
  again from the committed offset. Newly assigned partitions start at the group's committed
  offset (aiokafka resets a fresh assignment from it; the earliest record when none).
- ``rewind`` seeks every assigned partition back to its committed offset.
- ``poll`` joins the group on first use and never waits longer than its timeout, even while a
  join or rebalance is under way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from hub.bus.kafka_security import ClientSecurity, client_kwargs, explain
from hub.bus.port import Record
from hub.errors import Unavailable

if TYPE_CHECKING:
    from hub.bus.kafka_setup import KafkaOptions

log = logging.getLogger(__name__)


def to_record(message: Any) -> Record:
    """A bus ``Record`` from an aiokafka ``ConsumerRecord``."""
    key = None if message.key is None else message.key.decode("utf-8", "replace")
    value = b"" if message.value is None else message.value
    return Record(message.topic, message.partition, message.offset, key, value, message.timestamp)


async def stop_consumer(consumer: Any, grace_s: float = 5.0) -> None:
    """``consumer.stop()``, bounded.

    aiokafka's fetcher can swallow the cancellation ``stop()`` sends it when it arrives while the
    fetcher is itself cancelling its in-flight fetches after an assignment change (a rebalance,
    a new manual assignment); ``stop()`` then waits for it forever (aio-libs/aiokafka#983 is the
    same flaw). A second cancellation gets it out.
    """
    stopping = asyncio.ensure_future(consumer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=grace_s)
    if not done:
        fetch_task = getattr(getattr(consumer, "_fetcher", None), "_fetch_task", None)
        if fetch_task is not None:
            fetch_task.cancel()
        done, _ = await asyncio.wait({stopping}, timeout=grace_s)
    if not done:
        stopping.cancel()
        log.warning("a Kafka consumer did not stop within %s s", 2 * grace_s)
        return
    stopping.result()


def _leave_from_generation_zero(consumer: Any) -> None:
    """Make ``consumer.stop()`` send LeaveGroup on a broker that numbers generations from 0.

    aiokafka leaves a group on close only from generation 1 on (Kafka's first); Tansu's first
    generation is 0, so a closed member stayed in the group until its session expired and a new
    member could wait for it as the group's leader. No effect on Kafka (generation >= 1).
    """
    coordinator = getattr(consumer, "_coordinator", None)
    original = getattr(coordinator, "_maybe_leave_group", None)
    if coordinator is None or original is None:
        return

    async def leave() -> None:
        if getattr(coordinator, "generation", None) == 0 and getattr(coordinator, "member_id", ""):
            coordinator.generation = 1  # heartbeats have stopped by now: only LeaveGroup reads it
        await original()

    coordinator._maybe_leave_group = leave


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, member: KafkaConsumer) -> None:
        self._member = member

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._member._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._member._assigned(set(assigned))


class KafkaConsumer:
    """A ``Consumer`` in a Kafka consumer group (many members may share the group)."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: tuple[str, ...],
        *,
        client_id: str,
        options: KafkaOptions,
        security: ClientSecurity | None = None,
        on_close: Callable[[KafkaConsumer], None] | None = None,
    ) -> None:
        self.group = group
        self.topics = topics
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._options = options
        self.security = security  # TLS and SASL; None: plaintext
        self._on_close = on_close
        self._consumer: Any = None
        self._start_lock = asyncio.Lock()
        self._closed = False
        self.assignment: set[Any] = set()  # the partitions this member owns now
        self._pending: dict[Any, int] = {}  # finished, commit not accepted yet (tp -> next)
        self._first_polled: dict[Any, int] = {}  # per partition: first offset since assigned
        self._joined = asyncio.Event()
        self.rebalances = 0  # how many times partitions were revoked (for tests and metrics)

    async def _start(self) -> Any:
        async with self._start_lock:
            if self._closed:
                raise Unavailable(f"consumer of group '{self.group}' is closed")
            if self._consumer is None:
                o = self._options
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    group_id=self.group,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    fetch_max_wait_ms=o.fetch_max_wait_ms,
                    session_timeout_ms=o.session_timeout_ms,
                    heartbeat_interval_ms=o.heartbeat_interval_ms,
                    max_poll_interval_ms=o.max_poll_interval_ms,
                    request_timeout_ms=o.request_timeout_ms,
                    **client_kwargs(self.security),
                )
                try:
                    await consumer.start()
                except KafkaError as exc:
                    await stop_consumer(consumer)
                    raise Unavailable(await explain(self._bootstrap, self.security, exc)) from exc
                consumer.subscribe(list(self.topics), listener=_Listener(self))
                self._consumer = consumer
            return self._consumer

    @property
    def started(self) -> bool:
        """Whether the aiokafka consumer exists (created on first use)."""
        return self._consumer is not None

    async def wait_assigned(self, timeout_s: float) -> set[Any]:
        """Join the group (if not yet) and wait for the first assignment; returns it."""
        await self._start()
        async with asyncio.timeout(timeout_s):
            await self._joined.wait()
        return set(self.assignment)

    # -- Consumer ---------------------------------------------------------------------------
    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        consumer = await self._start()
        timeout_s = max(timeout_s, 0.0)
        try:
            # getmany waits for a join or rebalance to finish whatever its own timeout says.
            async with asyncio.timeout(timeout_s + 0.05):
                batches = await consumer.getmany(
                    timeout_ms=int(timeout_s * 1000), max_records=max(max_records, 1)
                )
        except TimeoutError:
            return []
        except KafkaError as exc:
            raise Unavailable(f"Kafka poll for group '{self.group}': {exc}") from exc
        records: list[Record] = []
        for tp, messages in batches.items():
            if messages:
                self._first_polled.setdefault(tp, messages[0].offset)
                records.extend(to_record(m) for m in messages)
        return records

    async def commit(self, records: Sequence[Record]) -> None:
        done: dict[Any, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            done[tp] = max(done.get(tp, 0), r.offset + 1)
        for tp, offset in done.items():
            first = self._first_polled.get(tp)
            if first is not None and offset > first:
                self._pending[tp] = max(self._pending.get(tp, 0), offset)
            else:  # polled under an earlier assignment: its owner starts from the committed one
                log.info("group %s: %s was revoked meanwhile; not committing it", self.group, tp)
        await self._flush()

    async def rewind(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return  # not started: the first poll starts from the committed offsets anyway
        try:
            for tp in list(consumer.assignment()):
                offset = await consumer.committed(tp)
                if offset is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, offset)
        except IllegalStateError:
            pass  # revoked meanwhile: the new assignment starts from the committed offsets
        except KafkaError as exc:
            raise Unavailable(f"Kafka rewind for group '{self.group}': {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await self._flush()
            except Unavailable as exc:
                log.warning("group %s: last commit failed on close: %s", self.group, exc)
            _leave_from_generation_zero(consumer)
            try:
                await stop_consumer(consumer)  # leaves the group: the others take over
            except Exception as exc:  # closing must not hide what made us close
                log.warning("group %s: closing the Kafka consumer: %s", self.group, exc)
        self.assignment = set()
        if self._on_close is not None:
            self._on_close(self)

    # -- commits and rebalances ---------------------------------------------------------------
    async def _flush(self, only: set[Any] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        owned = consumer.assignment()  # aiokafka's own view: still the old one while revoking
        offsets = {
            tp: o for tp, o in self._pending.items() if (only is None or tp in only) and tp in owned
        }
        if not offsets:
            return
        try:
            async with asyncio.timeout(self._options.request_timeout_ms / 1000):
                await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group is rebalancing or the partition moved: what is still ours when the
            # revocation comes is committed then; the rest goes to the next owner again.
            log.warning("group %s: commit refused (%s); kept for the rebalance", self.group, exc)
            return
        except TimeoutError as exc:
            raise Unavailable(f"Kafka commit for group '{self.group}' timed out") from exc
        except KafkaError as exc:
            raise Unavailable(f"Kafka commit for group '{self.group}': {exc}") from exc
        for tp, offset in offsets.items():
            if self._pending.get(tp) == offset:
                del self._pending[tp]

    async def _revoked(self, revoked: set[Any]) -> None:
        self.rebalances += 1
        try:
            await self._flush(only=revoked)  # finished work is committed before we let go
        except Unavailable as exc:
            log.warning("group %s: commit on revocation failed: %s", self.group, exc)
        for tp in revoked:  # not ours any more: whatever is unfinished is dropped
            self._pending.pop(tp, None)
            self._first_polled.pop(tp, None)
        self.assignment -= revoked

    def _assigned(self, assigned: set[Any]) -> None:
        self.assignment = set(assigned)
        self._joined.set()
