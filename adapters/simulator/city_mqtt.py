"""A simulated city over MQTT: the city system's own connection to the hub's broker.

It connects with the city's credential (username = its GB/T 2260 code), keeps a persistent
MQTT 5 session, publishes ``online`` (retained) on ``liandong/v1/{code}/status`` with
``offline`` as its last will, and receives its tasks on ``.../tasks`` in its own format. A task
message is acknowledged to the broker (PUBACK) only after the city has it, so a crash means a
redelivery. Incidents go to ``.../incidents`` and answers to ``.../task-updates``, QoS 1: the
broker's PUBACK is all a city hears back (a refusal raises, and is reported as not sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from adapters.links.mqtt_protocol import OFFLINE, ONLINE, TEXT, topic
from adapters.simulator.cities import Sent
from adapters.transports.mqtt import (
    LastWill,
    MqttConnection,
    MqttEndpoint,
    MqttTransportError,
)
from adapters.transports.mqtt_session import Backoff, keep_connected

log = logging.getLogger("adapters.simulator")

__all__ = ["MqttCity"]

Receive = Callable[[bytes], Awaitable[bool]]
CONNECT_TIMEOUT_S = 30.0


class MqttCity:
    """One city system's MQTT side."""

    def __init__(self, endpoint: MqttEndpoint, jurisdiction: str, content_type: str) -> None:
        self.endpoint = endpoint
        self.jurisdiction = jurisdiction
        self.content_type = content_type
        self.connected = asyncio.Event()
        self._conn: MqttConnection | None = None
        self._receive: Receive | None = None
        self._running: asyncio.Task[None] | None = None

    async def start(self, receive: Receive) -> None:
        """Connect (reconnecting with backoff from then on) and wait for the first session."""
        self._receive = receive
        self._running = asyncio.create_task(
            keep_connected(
                self.endpoint,
                self._session,
                will=LastWill(topic(self.jurisdiction, "status"), OFFLINE),
                manual_ack=True,
                backoff=Backoff(initial_s=0.1, max_s=5.0),
            )
        )
        waiting = asyncio.create_task(self.connected.wait())
        done, _ = await asyncio.wait(
            {waiting, self._running}, timeout=CONNECT_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
        if self._running in done:
            waiting.cancel()
            self._running.result()  # raises why it stopped
        if waiting not in done:
            waiting.cancel()
            raise TimeoutError(f"no MQTT session with {self.endpoint.describe()}")

    async def _session(self, conn: MqttConnection) -> None:
        await conn.subscribe([topic(self.jurisdiction, "tasks")])
        await conn.publish(
            topic(self.jurisdiction, "status"), ONLINE, qos=1, retain=True, content_type=TEXT
        )
        self._conn = conn
        self.connected.set()
        try:
            async for delivery in conn.deliveries():
                assert self._receive is not None
                await self._receive(delivery.payload)  # unreadable: logged by the city
                delivery.ack()
        finally:
            self._conn = None
            self.connected.clear()

    async def _publish(self, kind: str, raw: bytes) -> Sent:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                while self._conn is None:
                    await self.connected.wait()
                rc = await self._conn.publish(
                    topic(self.jurisdiction, kind), raw, qos=1, content_type=self.content_type
                )
        except (MqttTransportError, TimeoutError) as exc:
            return Sent(False, None, str(exc) or type(exc).__name__)
        return Sent(True, None, f"PUBACK {rc}")

    async def send_incident(self, raw: bytes, key: str) -> Sent:
        return await self._publish("incidents", raw)

    async def send_answer(self, raw: bytes, key: str) -> Sent:
        return await self._publish("task-updates", raw)

    async def close(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(MqttTransportError, TimeoutError):
                async with asyncio.timeout(2):
                    await conn.publish(
                        topic(self.jurisdiction, "status"),
                        OFFLINE,
                        qos=1,
                        retain=True,
                        content_type=TEXT,
                    )
        if self._running is not None:
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)
