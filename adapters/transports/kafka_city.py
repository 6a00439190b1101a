"""A city's own Kafka cluster, as the adapter framework's Kafka bridge uses it.

The consumer side is the hub's own group member (``hub.bus.kafka_consumer.KafkaConsumer``):
manual commits of what the caller finished, finished work committed on a rebalance, unfinished
work left to the partition's next owner. The producer sends with ``acks="all"`` and waits for
each send, so a task counts as delivered only once the city's cluster has stored it. No
idempotent producer: a resend after a lost acknowledgement is a duplicate the city removes by
key (the task id), as every delivery here is at-least-once.

TLS and SASL: ``security`` (a ``ClientSecurity``), given to the consumer and the producer
alike; :meth:`CityKafka.use_security` sets it before the first client starts (the bridge
does, from the manifest's ``transport.security``). None: plaintext.

This module (with ``hub/bus/kafka*``) is where aiokafka may be imported; the bridge itself
(``adapters/framework/kafka_bridge.py``) only sees :class:`CityKafka`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hub.bus.kafka_consumer import KafkaConsumer
from hub.bus.kafka_security import ClientSecurity, client_kwargs, explain
from hub.bus.kafka_setup import KafkaOptions
from hub.bus.port import Record
from hub.errors import Unavailable

log = logging.getLogger(__name__)

__all__ = ["CityKafka", "ClientSecurity", "KafkaOptions", "Record"]


class CityKafka:
    """One consumer group member on the city's topics, and a producer for its task topic."""

    def __init__(
        self,
        bootstrap: str,
        *,
        group: str,
        topics: Sequence[str],
        client_id: str,
        options: KafkaOptions | None = None,
        security: ClientSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.options = options or KafkaOptions()
        self.security = security
        self._client_id = client_id
        self._group = group
        self._topics = tuple(topics)
        self._consumer = self._new_consumer()
        self._producer: Any = None
        self._lock = asyncio.Lock()

    def _new_consumer(self) -> KafkaConsumer | None:
        if not self._topics:
            return None
        return KafkaConsumer(
            self.bootstrap,
            self._group,
            self._topics,
            client_id=self._client_id,
            options=self.options,
            security=self.security,
        )

    def use_security(self, security: ClientSecurity | None) -> None:
        """TLS/SASL for every client of this city; before the first poll or produce.

        The settings are tried now (files readable, password present), so a mistake stops
        the adapter at its start: ``InvalidInput`` names the setting."""
        if self._producer is not None or (self._consumer is not None and self._consumer.started):
            raise RuntimeError("use_security: a client of this city has started already")
        client_kwargs(security)
        self.security = security
        self._consumer = self._new_consumer()

    async def wait_assigned(self, timeout_s: float) -> None:
        """Join the group and wait for the first assignment (no-op without topics to read)."""
        if self._consumer is not None:
            await self._consumer.wait_assigned(timeout_s)

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Records from the city's topics; ``Unavailable`` when the cluster cannot be reached."""
        if self._consumer is None:
            await asyncio.sleep(timeout_s)
            return []
        return await self._consumer.poll(max_records, timeout_s)

    async def commit(self, records: Sequence[Record]) -> None:
        """Everything up to and including ``records`` is done (per partition)."""
        if self._consumer is not None and records:
            await self._consumer.commit(records)

    async def rewind(self) -> None:
        """Go back to the committed offsets: records polled but not committed come again."""
        if self._consumer is not None:
            await self._consumer.rewind()

    async def produce(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send one record and wait until the cluster stored it (acks=all)."""
        producer = await self._start_producer()
        try:
            await producer.send_and_wait(
                topic,
                value,
                key=key.encode(),
                headers=[(k, v.encode()) for k, v in (headers or {}).items()],
            )
        except KafkaError as exc:
            raise Unavailable(f"Kafka at {self.bootstrap}: send to '{topic}': {exc}") from exc

    async def _start_producer(self) -> Any:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self._client_id,
                    acks="all",
                    linger_ms=self.options.linger_ms,
                    request_timeout_ms=self.options.request_timeout_ms,
                    **client_kwargs(self.security),  # TLS and SASL; none: plaintext
                )
                try:
                    await producer.start()
                except KafkaError as exc:
                    await producer.stop()
                    message = await explain(self.bootstrap, self.security, exc)
                    raise Unavailable(message) from exc
                self._producer = producer
            return self._producer

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except KafkaError as exc:  # closing must not hide what made us close
                log.warning("closing the producer to %s: %s", self.bootstrap, exc)
        if self._consumer is not None:
            await self._consumer.close()
