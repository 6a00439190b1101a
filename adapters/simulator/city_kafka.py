"""A simulated city over Kafka: the city's own system on its own cluster.

It writes incidents (key: ``sender,identifier``) to its incidents topic and answers (key: the
task id) to its answers topic, and reads its tasks topic as a consumer group of its own,
committing a record only after the city has it. The bridge writes each task once per adapter
process (a restart writes the open ones again), so the city deduplicates by task id and state.
Kafka client code stays in ``adapters/transports/kafka_city.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from adapters.framework.manifest import KafkaTopics
from adapters.simulator.cities import Sent
from adapters.transports.kafka_city import CityKafka, KafkaOptions
from hub.errors import Unavailable

log = logging.getLogger("adapters.simulator")

__all__ = ["KafkaCity"]

Receive = Callable[[bytes], Awaitable[bool]]
JOIN_TIMEOUT_S = 60.0
POLL_RECORDS = 100
POLL_TIMEOUT_S = 0.5


class KafkaCity:
    """One city system's side of its Kafka cluster."""

    def __init__(
        self,
        bootstrap: str,
        topics: KafkaTopics,
        *,
        group: str,
        client_id: str,
        options: KafkaOptions,
    ) -> None:
        self.topics = topics
        self._kafka = CityKafka(
            bootstrap,
            group=group,
            topics=[topics.tasks] if topics.tasks else [],
            client_id=client_id,
            options=options,
        )
        self._receive: Receive | None = None
        self._running: asyncio.Task[None] | None = None

    async def start(self, receive: Receive) -> None:
        """Join the group on the tasks topic and start reading it."""
        self._receive = receive
        await self._kafka.wait_assigned(JOIN_TIMEOUT_S)
        self._running = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                records = await self._kafka.poll(POLL_RECORDS, POLL_TIMEOUT_S)
                for record in records:
                    assert self._receive is not None
                    await self._receive(record.value)  # unreadable: logged by the city
                    await self._kafka.commit([record])
            except Unavailable as exc:
                log.warning("city cluster: %s; reading again in 1 s", exc)
                await asyncio.sleep(1.0)
                with contextlib.suppress(Unavailable):
                    await self._kafka.rewind()  # records polled after the failure come again

    async def _produce(self, topic: str | None, key: str, raw: bytes) -> Sent:
        if topic is None:
            return Sent(False, None, "the manifest names no topic for it")
        try:
            await self._kafka.produce(topic, key, raw)
        except Unavailable as exc:
            return Sent(False, None, str(exc))
        return Sent(True, None, f"stored on {topic}")

    async def send_incident(self, raw: bytes, key: str) -> Sent:
        return await self._produce(self.topics.incidents, key, raw)

    async def send_answer(self, raw: bytes, key: str) -> Sent:
        return await self._produce(self.topics.answers, key, raw)

    async def close(self) -> None:
        if self._running is not None:
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)
        await self._kafka.close()
