"""A city system's side of the MQTT link: an example for integrators, used by the tests and
the simulator.

:class:`CityClient` connects with the city's own credential (username = its GB/T 2260 code),
keeps a persistent MQTT 5 session, publishes ``online`` (retained) to its status topic with
``offline`` as its last will, and receives its tasks. The hub's link sends a task again until
the task's answer reached the hub, so the city **deduplicates by task id**: ``on_task`` runs
once per task id, and a repeat is answered again (the first answer may have been lost with a
broker) but not applied again. A task that comes back with a new state (escalated, cancelled)
goes to ``on_change``. A task message is acknowledged to the broker only after it was handled
and its answer published, so a crash in between means a redelivery, not a loss.

For a real city system, keep ``known`` (task id -> last state) in the same store, and the same
transaction, as the effect of ``on_task``: then a crash cannot apply a task twice either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson

from adapters.links.mqtt_protocol import (
    JSON,
    OFFLINE,
    ONLINE,
    TEXT,
    Answer,
    TaskAnswer,
    topic,
)
from adapters.transports.mqtt import (
    ConnectionLost,
    Delivery,
    LastWill,
    MqttConnection,
    MqttEndpoint,
)
from adapters.transports.mqtt_session import Backoff, keep_connected

log = logging.getLogger(__name__)

TaskHandler = Callable[[dict[str, Any]], Awaitable[None]]
OPEN_STATES = frozenset({"issued", "delivered", "escalated"})


class CityClient:
    def __init__(
        self,
        endpoint: MqttEndpoint,
        jurisdiction: str,
        *,
        on_task: TaskHandler | None = None,
        on_change: TaskHandler | None = None,
        auto_acknowledge: bool = True,
        known: MutableMapping[str, str] | None = None,
        backoff: Backoff = Backoff(initial_s=0.1, max_s=5.0),
    ) -> None:
        self.endpoint = endpoint
        self.jurisdiction = jurisdiction
        self.known: MutableMapping[str, str] = {} if known is None else known
        self.applied: Counter[str] = Counter()  # task id -> times on_task ran (once each)
        self.received = 0  # task messages, repeats included
        self.repeats = 0
        self.connected = asyncio.Event()
        self._on_task = on_task
        self._on_change = on_change
        self._auto_acknowledge = auto_acknowledge
        self._backoff = backoff
        self._conn: MqttConnection | None = None
        self._stop = asyncio.Event()

    @property
    def connection(self) -> MqttConnection | None:
        """The live connection, if any."""
        return self._conn

    # -- running ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Stay connected (reconnecting with backoff) until :meth:`stop`."""
        self._stop.clear()
        await keep_connected(
            self.endpoint,
            self._session,
            will=LastWill(topic(self.jurisdiction, "status"), OFFLINE),
            manual_ack=True,
            backoff=self._backoff,
        )

    def stop(self) -> None:
        """Go offline on purpose: publish ``offline``, DISCONNECT; :meth:`run` returns."""
        self._stop.set()

    def drop(self) -> None:
        """Lose the connection as a network failure would (the broker publishes the will);
        :meth:`run` reconnects."""
        if self._conn is not None:
            self._conn.abort()

    async def _session(self, conn: MqttConnection) -> None:
        await conn.subscribe([topic(self.jurisdiction, "tasks")])
        await self._status(conn, ONLINE)
        self._conn = conn
        self.connected.set()
        receiving = asyncio.create_task(self._receive(conn))
        stopping = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait({receiving, stopping}, return_when="FIRST_COMPLETED")
            if receiving in done:
                receiving.result()  # raises ConnectionLost
            else:
                with contextlib.suppress(ConnectionLost):
                    await self._status(conn, OFFLINE)
        finally:
            self._conn = None
            self.connected.clear()
            for task in (receiving, stopping):
                task.cancel()
            await asyncio.gather(receiving, stopping, return_exceptions=True)

    async def _status(self, conn: MqttConnection, state: bytes) -> None:
        await conn.publish(
            topic(self.jurisdiction, "status"), state, qos=1, retain=True, content_type=TEXT
        )

    async def _receive(self, conn: MqttConnection) -> None:
        async for delivery in conn.deliveries():
            await self._handle(conn, delivery)

    async def _handle(self, conn: MqttConnection, delivery: Delivery) -> None:
        try:
            task: dict[str, Any] = orjson.loads(delivery.payload)
            task_id, state = str(task["id"]), str(task["state"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.error("unreadable task on '%s': %s", delivery.topic, exc)
            delivery.ack()
            return
        self.received += 1
        previous = self.known.get(task_id)
        if previous is None:
            if self._on_task is not None:
                await self._on_task(task)
            self.applied[task_id] += 1
        elif previous != state:
            if self._on_change is not None:
                await self._on_change(task)
        else:
            self.repeats += 1
        self.known[task_id] = state
        if self._auto_acknowledge and state in OPEN_STATES:
            # Also for a repeat: the link sends again only while the hub has no answer.
            await self._publish_answer(conn, TaskAnswer(task=task_id, answer=Answer.ACKNOWLEDGE))
        delivery.ack()

    # -- what a city system sends ------------------------------------------------------------------
    async def _connection(self, timeout_s: float) -> MqttConnection:
        async with asyncio.timeout(timeout_s):
            while self._conn is None:
                await self.connected.wait()
                if self._conn is None:
                    await asyncio.sleep(0.01)
        return self._conn

    async def report(self, incident: Mapping[str, Any] | bytes, timeout_s: float = 10.0) -> int:
        """Publish a canonical incident (QoS 1); returns the PUBACK reason code. Raises
        :class:`~adapters.transports.mqtt.PublishRefused` if the broker refuses it."""
        payload = incident if isinstance(incident, bytes) else orjson.dumps(incident)
        conn = await self._connection(timeout_s)
        return await conn.publish(
            topic(self.jurisdiction, "incidents"), payload, qos=1, content_type=JSON
        )

    async def answer(
        self, task_id: str, answer: Answer, reason: str | None = None, timeout_s: float = 10.0
    ) -> int:
        conn = await self._connection(timeout_s)
        return await self._publish_answer(
            conn, TaskAnswer(task=task_id, answer=answer, reason=reason)
        )

    async def _publish_answer(self, conn: MqttConnection, answer: TaskAnswer) -> int:
        return await conn.publish(
            topic(self.jurisdiction, "task-updates"), answer.encode(), qos=1, content_type=JSON
        )
