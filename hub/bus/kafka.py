"""The Kafka bus: the same ``Bus`` on aiokafka, for several hub instances in one consumer group.

Offsets and partitions are Kafka's: a record's ``offset`` counts from 0 within its partition, and
a message's ``key`` (incident thread, target jurisdiction) picks the partition, so one key's
records keep their order.

- ``publish`` sends with ``acks="all"`` and awaits every send: it returns when the broker has
  stored every message. No idempotent or transactional producer (Tansu, the test broker, has
  neither, and at-least-once does not need them: a resent duplicate is made harmless by derived
  ids). aiokafka keeps one batch in flight per partition, so a retry cannot reorder a key.
- ``read(topic, after, limit)`` reads outside any group: from every partition, the records whose
  offset is at least ``after`` (Kafka's position: ``0`` is the beginning, as on the embedded log),
  in (partition, offset) order, at most ``limit``. To page through a topic, use ``read_from`` with
  one position per partition (the last record's offset + 1).
- ``end_offsets`` / ``committed`` sum the partitions of each topic (high watermarks; the group's
  committed next offsets, 0 where nothing is committed), so ``committed >= end`` means the group
  has caught up; ``lag`` counts the records it has not committed. ``partition_ends`` and
  ``partition_committed`` give the same per partition.
- ``consumer`` gives a group member (``hub.bus.kafka_consumer``): commits only what the loop says
  is done (Kafka's ``offset + 1``), commits finished work and forgets the rest on a rebalance.

Topics are created explicitly, before use, by ``ensure_topics``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, OffsetOutOfRangeError

from hub.bus.kafka_consumer import KafkaConsumer, stop_consumer, to_record
from hub.bus.kafka_setup import DEFAULT_PARTITIONS, KafkaOptions, ensure_topics
from hub.bus.port import Outgoing, Record
from hub.clock import Clock, SystemClock
from hub.errors import HubError, InvalidInput, Unavailable

log = logging.getLogger(__name__)

_STEP_MS = 10  # how long one fetch step of a direct read waits for data

__all__ = ["DEFAULT_PARTITIONS", "KafkaBus", "KafkaOptions", "ensure_topics"]


class KafkaBus:
    """``Bus`` on a Kafka cluster (or any Kafka-protocol broker)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "liandong",
        clock: Clock | None = None,
        options: KafkaOptions | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.options = options or KafkaOptions()
        self._clock = clock or SystemClock()
        self._lock = asyncio.Lock()  # starting the shared clients
        self._read_lock = asyncio.Lock()  # the direct reader serves one read at a time
        self._producer: Any = None
        self._admin: Any = None
        self._reader: Any = None
        self._members: set[KafkaConsumer] = set()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect the producer, the admin client and the direct reader (idempotent)."""
        async with self._lock:
            if self._producer is not None:
                return
            o = self.options
            common: dict[str, Any] = {
                "bootstrap_servers": self.bootstrap,
                "request_timeout_ms": o.request_timeout_ms,
            }
            producer = AIOKafkaProducer(
                client_id=f"{self.client_id}-producer",
                acks="all",
                enable_idempotence=False,
                linger_ms=o.linger_ms,
                **common,
            )
            admin = AIOKafkaAdminClient(client_id=f"{self.client_id}-admin", **common)
            reader = AIOKafkaConsumer(
                client_id=f"{self.client_id}-reader",
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="none",
                fetch_max_wait_ms=min(o.fetch_max_wait_ms, _STEP_MS // 2),
                **common,
            )
            started: list[Any] = []
            try:
                for client in (producer, admin, reader):
                    await client.start()
                    started.append(client)
            except KafkaError as exc:
                for client in started:
                    await _stop(client.close() if client is admin else client.stop())
                raise Unavailable(f"Kafka at {self.bootstrap}: {exc}") from exc
            self._producer, self._admin, self._reader = producer, admin, reader

    async def close(self) -> None:
        for member in list(self._members):
            await member.close()
        async with self._lock, self._read_lock:
            if self._reader is not None:
                await _stop(stop_consumer(self._reader))
            if self._admin is not None:
                await _stop(self._admin.close())
            if self._producer is not None:
                await _stop(self._producer.stop())
            self._producer = self._admin = self._reader = None

    def _forget(self, member: KafkaConsumer) -> None:
        self._members.discard(member)

    # -- Bus ----------------------------------------------------------------------------------
    async def publish(self, messages: Sequence[Outgoing]) -> list[Record]:
        if not messages:
            return []
        await self.start()
        futures: list[asyncio.Future[Any]] = []
        try:
            for m in messages:
                key = None if m.key is None else m.key.encode("utf-8")
                futures.append(
                    await self._producer.send(
                        m.topic, value=m.value, key=key, timestamp_ms=self._clock.now_ms()
                    )
                )
        except KafkaError as exc:
            await asyncio.gather(*futures, return_exceptions=True)
            raise _publish_error(exc) from exc
        results = await asyncio.gather(*futures, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise _publish_error(failed[0]) from failed[0]
        metas: list[Any] = results
        return [
            Record(m.topic, meta.partition, meta.offset, m.key, m.value, meta.timestamp)
            for m, meta in zip(messages, metas, strict=True)
        ]

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        member = KafkaConsumer(
            self.bootstrap,
            group,
            tuple(topics),
            client_id=f"{self.client_id}-{group}",
            options=self.options,
            on_close=self._forget,
        )
        self._members.add(member)
        return member

    async def read(self, topic: str, after: int, limit: int) -> list[Record]:
        """From every partition the records with ``offset >= after``; see the module doc."""
        partitions = (await self.partitions([topic])).get(topic, [])
        return await self.read_from(topic, dict.fromkeys(partitions, max(after, 0)), limit)

    async def read_from(self, topic: str, positions: Mapping[int, int], limit: int) -> list[Record]:
        """Records from ``positions`` (partition -> first offset), in (partition, offset) order."""
        await self.start()
        out: list[Record] = []
        async with self._read_lock:
            for partition in sorted(positions):
                if len(out) >= limit:
                    break
                tp = TopicPartition(topic, partition)
                out.extend(await self._read_partition(tp, positions[partition], limit - len(out)))
        return out

    async def end_offsets(self, topics: Sequence[str]) -> dict[str, int]:
        ends = await self.partition_ends(topics)
        return {t: sum(ends.get(t, {}).values()) for t in topics}

    async def committed(self, group: str, topics: Sequence[str]) -> dict[str, int]:
        done = await self.partition_committed(group, topics)
        return {t: sum(done.get(t, {}).values()) for t in topics}

    async def lag(self, group: str, topics: Sequence[str]) -> dict[str, int]:
        """Per topic, how many records ``group`` has not committed yet (summed over partitions)."""
        ends = await self.partition_ends(topics)
        done = await self.partition_committed(group, topics)
        return {
            t: sum(max(0, end - done.get(t, {}).get(p, 0)) for p, end in ends.get(t, {}).items())
            for t in topics
        }

    # -- per partition ------------------------------------------------------------------------
    async def partitions(self, topics: Sequence[str]) -> dict[str, list[int]]:
        """The partitions of the topics that exist (a missing topic is absent, not created)."""
        await self.start()
        try:
            existing = set(await self._admin.list_topics())
            wanted = [t for t in dict.fromkeys(topics) if t in existing]
            described = await self._admin.describe_topics(wanted) if wanted else []
        except KafkaError as exc:
            raise Unavailable(f"Kafka metadata: {exc}") from exc
        return {
            t["topic"]: sorted(p["partition"] for p in t["partitions"])
            for t in described
            if t["error_code"] == 0
        }

    async def partition_ends(self, topics: Sequence[str]) -> dict[str, dict[int, int]]:
        """Each partition's high watermark (the offset the next record will get)."""
        parts = await self.partitions(topics)
        tps = [TopicPartition(t, p) for t, ps in parts.items() for p in ps]
        ends: dict[str, dict[int, int]] = {t: {} for t in parts}
        if not tps:
            return ends
        async with self._read_lock:
            reader = self._reader
            reader.assign(tps)
            try:
                # ListOffsets gives the end on Kafka, but only a lower bound on Tansu (its last
                # batch's base offset + 1); a fetch from there reports the true high watermark.
                await reader.seek_to_end(*tps)
                async with asyncio.timeout(self.options.request_timeout_ms / 1000):
                    while any(reader.highwater(tp) is None for tp in tps):
                        await reader.getmany(*tps, timeout_ms=_STEP_MS, max_records=1)
            except TimeoutError as exc:
                raise Unavailable("Kafka: no high watermark within the request timeout") from exc
            except KafkaError as exc:
                raise Unavailable(f"Kafka end offsets: {exc}") from exc
            else:
                for tp in tps:
                    ends[tp.topic][tp.partition] = reader.highwater(tp)
            finally:
                reader.pause(*tps)  # no idle fetching; the next read assigns afresh
        return ends

    async def partition_committed(
        self, group: str, topics: Sequence[str]
    ) -> dict[str, dict[int, int]]:
        """The group's committed next offset per partition (0 where it committed nothing)."""
        parts = await self.partitions(topics)
        tps = [TopicPartition(t, p) for t, ps in parts.items() for p in ps]
        out: dict[str, dict[int, int]] = {t: dict.fromkeys(ps, 0) for t, ps in parts.items()}
        if not tps:
            return out
        try:
            offsets = await self._admin.list_consumer_group_offsets(group, partitions=tps)
        except KafkaError as exc:
            raise Unavailable(f"Kafka committed offsets of '{group}': {exc}") from exc
        for tp, meta in offsets.items():
            if tp.topic in out and meta.offset >= 0:
                out[tp.topic][tp.partition] = meta.offset
        return out

    async def _read_partition(self, tp: Any, start: int, limit: int) -> list[Record]:
        reader = self._reader
        reader.assign([tp])
        out: list[Record] = []
        try:
            async with asyncio.timeout(self.options.request_timeout_ms / 1000):
                # Retention may have removed the oldest records: start at the first one kept.
                first = (await reader.beginning_offsets([tp]))[tp]
                reader.seek(tp, max(start, first))
                while len(out) < limit:
                    batches = await reader.getmany(
                        tp, timeout_ms=_STEP_MS, max_records=limit - len(out)
                    )
                    out.extend(to_record(m) for m in batches.get(tp, ()))
                    end = reader.highwater(tp)
                    if end is not None and await reader.position(tp) >= end:
                        break
        except OffsetOutOfRangeError:
            pass  # ``start`` lies beyond the end: nothing to read
        except TimeoutError as exc:
            raise Unavailable(f"Kafka: reading {tp.topic}[{tp.partition}] timed out") from exc
        except KafkaError as exc:
            raise Unavailable(f"Kafka read {tp.topic}[{tp.partition}]: {exc}") from exc
        finally:
            reader.pause(tp)
        return out


def _publish_error(exc: BaseException) -> HubError:
    """A message the broker will never take is bad input; anything else may pass later."""
    if isinstance(exc, MessageSizeTooLargeError):
        return InvalidInput(f"Kafka refused the message: {exc}")
    return Unavailable(f"publish to Kafka failed: {exc}")


async def _stop(closing: Awaitable[Any]) -> None:
    try:
        await closing
    except Exception as exc:  # closing must not hide what made us close
        log.warning("closing a Kafka client: %s", exc)
