"""The Kafka bridge: for a city that runs its own Kafka cluster.

**Up.** The bridge is a member of the consumer group ``transport.group`` on the city's
``incidents`` and ``answers`` topics (one topic for both works with a CAP codec, which tells an
Ack/Error from an incident). Records are handled one at a time in order: decoded, sent to the
hub with the adapter's token, and their offset is committed only after the hub accepted them
(or refused them for good: a record the codec cannot read, or the hub answers 403/409/422, is
logged with its topic, partition and offset and committed, so one bad record cannot stop the
city's stream). While the hub is down, the bridge retries with backoff and commits nothing: a
crash or restart of the bridge reads the same records again and the hub absorbs the resend.

**Down.** A :class:`TaskFeed` delivers the hub's tasks for the jurisdiction to the city's
``tasks`` topic (key = the task id, or ``{id}.{state}`` for a cancellation; headers
``Idempotency-Key``, ``Liandong-Task``, ``Liandong-Task-State``, ``Content-Type``); the city
deduplicates by key.

**Security.** ``transport.security`` (TLS, SASL) is resolved when the bridge is built (the
password from its environment variable, the certificate files tried) and handed to the city's
clients before either starts; a mistake stops the adapter with the setting named.

The Kafka client code lives in ``adapters/transports/kafka_city.py``; this module only drives it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Any

from adapters.framework.breaker import backoff_delay
from adapters.framework.codec import Channel, Codec
from adapters.framework.manifest import KafkaTransport, Retry
from adapters.framework.task_feed import Delivery, TaskFeed, message_key
from adapters.framework.upstream import Upstream
from adapters.transports.kafka_city import CityKafka, Record
from hub.errors import Unavailable

log = logging.getLogger(__name__)

__all__ = ["KafkaBridge", "KafkaSink"]

POLL_RECORDS = 100
POLL_TIMEOUT_S = 0.5
RECONNECT = Retry(initial_s=0.5, max_s=10.0)


class KafkaSink:
    """Delivers tasks to the city's tasks topic."""

    def __init__(self, city: CityKafka, topic: str, codec: Codec) -> None:
        self.city = city
        self.topic = topic
        self.codec = codec

    async def deliver(self, task: dict[str, Any]) -> Delivery:
        key = message_key(task)
        headers = {
            "Idempotency-Key": key,
            "Liandong-Task": str(task["id"]),
            "Liandong-Task-State": str(task.get("state", "issued")),
            "Content-Type": self.codec.content_type,
        }
        try:
            await self.city.produce(self.topic, key, self.codec.encode_task(task), headers)
        except Unavailable as exc:
            return Delivery(False, None, str(exc), 1)
        return Delivery(True, None, f"stored on {self.topic}", 1)


class KafkaBridge:
    """Runs both directions for one adapter on the city's cluster."""

    def __init__(
        self,
        settings: KafkaTransport,
        city: CityKafka,
        upstream: Upstream,
        feed: TaskFeed | None,
    ) -> None:
        self.settings = settings
        self.city = city
        if settings.security is not None:
            city.use_security(settings.security.resolve())
        self.upstream = upstream
        self.feed = feed
        self.stats: Counter[str] = Counter()
        self._rng = random.Random()

    def channel(self, topic: str) -> Channel:
        topics = self.settings.topics
        if topics.incidents == topics.answers:
            return "any"
        return "answers" if topic == topics.answers else "incidents"

    async def run(self) -> None:
        """Until cancelled; the city's clients are closed on the way out."""
        try:
            async with asyncio.TaskGroup() as group:
                if self.settings.topics.incidents or self.settings.topics.answers:
                    group.create_task(self._up())
                if self.feed is not None:
                    group.create_task(self.feed.run())
        finally:
            await self.city.close()

    async def _up(self) -> None:
        failures = 0
        rewind = False
        while True:
            try:
                if rewind:
                    # Records polled after a failure point were not handled: read them again
                    # from the committed offsets, or a later commit would pass over them.
                    await self.city.rewind()
                    rewind = False
                records = await self.city.poll(POLL_RECORDS, POLL_TIMEOUT_S)
                for record in records:
                    await self._handle(record)
                    await self.city.commit([record])
                failures = 0
            except Unavailable as exc:
                rewind = True
                delay = backoff_delay(RECONNECT, failures, self._rng)
                failures += 1
                log.warning("city cluster %s: %s; again in %.1f s", self.city.bootstrap, exc, delay)
                await asyncio.sleep(delay)

    async def _handle(self, record: Record) -> None:
        result = await self.upstream.forward(record.value, self.channel(record.topic))
        where = f"{record.topic}/{record.partition}@{record.offset}"
        self.stats["records_handled"] += 1  # what became of it: Upstream.stats
        if result.ok:
            log.debug("%s %s from %s: hub %s", result.kind, result.key, where, result.status)
            return
        log.error(
            "record %s refused (%s %s): %s; committed, not retried",
            where,
            result.kind,
            result.status,
            result.detail,
        )
