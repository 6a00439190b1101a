"""The MQTT link: the hub's side of the broker, between city systems and the hub's HTTP API.

One process serves a set of jurisdictions: it holds one hub adapter token per jurisdiction and
one broker credential of its own (``liandong-link``, allowed on every ``liandong/v1/...``
subtree), and keeps a persistent MQTT 5 session (QoS 1, manual acknowledgement).

**Up.** It subscribes to ``liandong/v1/{code}/incidents``, ``.../task-updates`` and
``.../status`` of each jurisdiction it serves (not ``liandong/v1/+/...``: a link holds tokens for
the jurisdictions it serves only, and two links serving different jurisdictions must not take
each other's messages). An incident goes to ``POST /api/v1/incidents`` with the token of the
topic's jurisdiction (the hub still checks that the incident's ``sender`` is that jurisdiction);
an answer goes to ``POST /api/v1/tasks/{id}/{answer}``. The MQTT message is acknowledged only
after the hub answered, so a crash of the link or the hub means a redelivery, and the hub
answers a resend as it answered the first (same incident: same 202; same answer: 200).
Messages are handled concurrently in ``lanes``, keyed so that the messages of one incident
thread, and the answers to one task, keep their order; PUBACKs go out in the order the messages
came (MQTT 5, 4.6). A hub that is down or overloaded is retried with backoff; a message the hub
refuses for good (403, 409, 422...) is logged, counted and acknowledged.

**Down.** Every ``poll_interval_s`` it lists the tasks of each jurisdiction that have no answer
yet (``GET /api/v1/tasks?target=CODE&state=issued&state=delivered&state=escalated``, up to
5,000) and publishes each new one, QoS 1, to ``liandong/v1/{code}/tasks``, and again after
``resend_interval_s`` for as long as the hub lists it: a PUBACK proves only that the broker has
it, not that the city does (a broker killed between two saves loses it). It stops when the
city's answer reached the hub. While a city's retained status is ``offline``, tasks the broker
accepted for its session are not re-sent (the broker queues them); when it comes back
``online`` the interval starts again; while it keeps answering (working through a backlog) the
interval is ``BUSY_CITY_FACTOR`` times longer. A task whose state changed (escalated), or that
left the list without an answer through this link (cancelled, answered elsewhere), is published
once more with its new state.

**Payloads.** Canonical JSON as above; with ``codec`` set (an adapter whose city speaks its
own JSON dialect), incidents and answers are decoded by it (what it cannot read is logged,
counted and acknowledged) and tasks are encoded by it. With ``covers``, the tasks of a city's
districts are listed with the city's token and published on the city's topic too (a city
credential answers for its districts).

**Refusals.** With ``broker_log`` set, denied publishes in the broker's log are reported to the
hub (``adapters/links/mqtt_refusals.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from adapters.links.exercise import for_city
from adapters.links.hub_api import MAX_TASKS, HubApi, Outcome
from adapters.links.link_config import Forwarded, LinkConfig
from adapters.links.mqtt_protocol import (
    JSON,
    OFFLINE,
    Address,
    TaskAnswer,
    incident_order_key,
    parse_topic,
    topic,
)
from adapters.links.mqtt_refusals import BrokerLogWatcher, Refusal
from adapters.links.unreadable import unreadable_report
from adapters.transports.mqtt import (
    NO_MATCHING_SUBSCRIBERS,
    Delivery,
    MqttConnection,
    PublishRefused,
)
from adapters.transports.mqtt_session import keep_connected
from hub.errors import InvalidInput

log = logging.getLogger(__name__)

UP_KINDS = ("incidents", "task-updates", "status")
# While a city keeps answering (working through a backlog), its unanswered tasks are re-sent only
# after this many resend intervals: it has them queued, and a re-send would only add load.
BUSY_CITY_FACTOR = 4


@dataclass(slots=True)
class _Outgoing:
    state: str
    sent_at: float
    routed: bool  # the broker had a subscriber (or an offline session) for it


@dataclass(slots=True)
class _Slot:
    delivery: Delivery
    done: bool = False


class _InOrder:
    """PUBACKs in the order the messages arrived, each once its handling is done."""

    def __init__(self) -> None:
        self._slots: deque[_Slot] = deque()

    def add(self, delivery: Delivery) -> _Slot:
        slot = _Slot(delivery)
        self._slots.append(slot)
        return slot

    def done(self, slot: _Slot) -> None:
        slot.done = True
        while self._slots and self._slots[0].done:
            self._slots.popleft().delivery.ack()


@dataclass(slots=True)
class _Work:
    delivery: Delivery
    address: Address
    key: str  # the incident's identifier, or the task id
    answer: TaskAnswer | None
    slot: _Slot
    payload: bytes  # the canonical incident (empty for an answer)


class MqttLink:
    def __init__(
        self, config: LinkConfig, *, on_forwarded: Callable[[Forwarded], None] | None = None
    ) -> None:
        if not config.tokens:
            raise ValueError("the link needs a hub token for at least one jurisdiction")
        self.config = config
        self.api = HubApi(config.hub_url, timeout_s=config.http_timeout_s)
        self.stats: Counter[str] = Counter()
        self.city_status: dict[str, str] = {}
        self.refusals: deque[Refusal] = deque(maxlen=1000)
        self.connected = asyncio.Event()
        self._on_forwarded = on_forwarded
        self._outgoing: dict[str, dict[str, _Outgoing]] = {code: {} for code in config.tokens}
        self._settled: dict[str, set[str]] = {code: set() for code in config.tokens}
        # Answers received and not yet through to the hub: their tasks need no resend.
        self._answering: dict[str, Counter[str]] = {code: Counter() for code in config.tokens}
        self._heard: dict[str, float] = {}  # when a city's last answer came
        self._polls_failing: set[str] = set()
        self._missing_route_logged = False
        self._kept: set[asyncio.Task[Outcome]] = set()  # unreadable messages being handed over

    async def run(self) -> None:
        """Until cancelled: the MQTT session (reconnecting) and the broker log watcher."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(
                    keep_connected(
                        self.config.broker,
                        self._session,
                        manual_ack=True,
                        backoff=self.config.backoff,
                    )
                )
                if self.config.broker_log is not None:
                    watcher = BrokerLogWatcher(self.config.broker_log, self._refused)
                    group.create_task(watcher.run())
        finally:
            self.connected.clear()
            await self.api.aclose()

    # -- one connection ------------------------------------------------------------------------
    async def _session(self, conn: MqttConnection) -> None:
        codes = sorted(self.config.tokens)
        await conn.subscribe([topic(code, kind) for code in codes for kind in UP_KINDS])
        acks = _InOrder()
        lanes: list[asyncio.Queue[_Work]] = [asyncio.Queue() for _ in range(self.config.lanes)]
        self.connected.set()
        try:
            async with asyncio.TaskGroup() as group:
                for lane in lanes:
                    group.create_task(self._lane(lane, acks))
                group.create_task(self._down(conn))
                async for delivery in conn.deliveries():
                    self._receive(delivery, acks, lanes)
        finally:
            self.connected.clear()
            for answering in self._answering.values():
                answering.clear()  # unacknowledged: the broker delivers them again

    def _receive(
        self, delivery: Delivery, acks: _InOrder, lanes: list[asyncio.Queue[_Work]]
    ) -> None:
        slot = acks.add(delivery)
        address = parse_topic(delivery.topic)
        if address is None or address.jurisdiction not in self.config.tokens:
            log.error("message on '%s', which this link does not serve: dropped", delivery.topic)
            self.stats["unserved"] += 1
            acks.done(slot)
            return
        if address.kind == "status":
            self._status(address.jurisdiction, delivery.payload)
            acks.done(slot)
            return
        read = self._read(address, delivery)
        if read is None:
            acks.done(slot)
            return
        payload, answer = read
        if answer is not None:
            key, order = answer.task, f"{address.jurisdiction}/task/{answer.task}"
            self._answering[address.jurisdiction][answer.task] += 1
            self._heard[address.jurisdiction] = time.monotonic()
        else:
            key, order = incident_order_key(address.jurisdiction, payload)
        lane = lanes[zlib.crc32(order.encode()) % len(lanes)]
        lane.put_nowait(_Work(delivery, address, key, answer, slot, payload))

    def _read(self, address: Address, delivery: Delivery) -> tuple[bytes, TaskAnswer | None] | None:
        """The canonical incident, or the answer; None for what cannot be read (logged)."""
        codec, answers = self.config.codec, address.kind == "task-updates"
        try:
            if codec is None:
                if answers:
                    return b"", TaskAnswer.model_validate_json(delivery.payload)
                return delivery.payload, None  # the hub judges it (422 and a dead letter)
            found = codec.decode(delivery.payload, "answers" if answers else "incidents")
        except (ValidationError, InvalidInput) as exc:
            log.warning("unreadable message on '%s': %s", delivery.topic, exc)
            self.stats["answers_unreadable" if answers else "incidents_unreadable"] += 1
            channel = "answers" if answers else "incidents"
            self._keep(address.jurisdiction, channel, delivery.payload, str(exc))
            return None
        if isinstance(found, TaskAnswer):
            return b"", found
        return orjson.dumps(found.model_dump(mode="json", exclude_none=True)), None

    def _keep(self, code: str, channel: str, raw: bytes, reason: str) -> None:
        """Hand what could not be read to the hub's dead-letter store, in the background."""
        kind = self.config.codec.kind if self.config.codec else "canonical-json"
        media = getattr(self.config.codec, "content_type", "application/json")
        report = unreadable_report(channel, kind, media, raw, reason)
        task = asyncio.create_task(self.api.report_unreadable(self.config.tokens[code], report))
        self._kept.add(task)
        task.add_done_callback(self._kept.discard)

    async def _lane(self, lane: asyncio.Queue[_Work], acks: _InOrder) -> None:
        while True:
            work = await lane.get()
            try:
                await self._forward(work)
            finally:
                if work.answer is not None:
                    answering = self._answering[work.address.jurisdiction]
                    answering[work.answer.task] -= 1
                    if answering[work.answer.task] <= 0:
                        del answering[work.answer.task]
            acks.done(work.slot)

    # -- up: a city's message to the hub -------------------------------------------------------
    async def _forward(self, work: _Work) -> None:
        code = work.address.jurisdiction
        token = self.config.tokens[code]
        answer, key = work.answer, work.key
        call: Callable[[], Awaitable[Outcome]]
        if answer is None:
            payload = work.payload

            def call() -> Awaitable[Outcome]:
                return self.api.report_incident(token, payload)

        else:

            def call() -> Awaitable[Outcome]:
                return self.api.answer_task(token, answer)

        started = time.perf_counter_ns()
        outcome = await self._with_retry(call, f"{work.address.kind} of {code}")
        if self._on_forwarded is not None:
            took = time.perf_counter_ns() - started
            self._on_forwarded(
                Forwarded(work.address.kind, code, key, outcome.status, time.time_ns(), took)
            )
        kind = "incidents" if answer is None else "answers"
        if outcome.ok:
            self.stats[f"{kind}_forwarded"] += 1
            if answer is not None:
                self._outgoing[code].pop(answer.task, None)
                self._settled[code].add(answer.task)
            return
        self.stats[f"{kind}_refused"] += 1
        log.warning(
            "hub refused %s from %s (%s): %s %s",
            kind,
            code,
            key,
            outcome.status,
            outcome.detail(),
        )

    async def _with_retry(
        self, call: Callable[[], Awaitable[Outcome]], what: str, attempts: int | None = None
    ) -> Outcome:
        failures = 0
        while True:
            outcome = await call()
            if not outcome.retry:
                return outcome
            failures += 1
            if attempts is not None and failures >= attempts:
                return outcome
            delay = self.config.backoff.delay(failures - 1)
            log.warning(
                "hub did not take %s (%s %s); again in %.2f s",
                what,
                outcome.status,
                outcome.detail(),
                delay,
            )
            await asyncio.sleep(delay)

    def _status(self, code: str, payload: bytes) -> None:
        state = payload.decode(errors="replace").strip() or "unknown"
        previous = self.city_status.get(code)
        self.city_status[code] = state
        if state == previous:
            return
        log.info("city system of %s is %s", code, state)
        if previous == OFFLINE.decode() and state != previous:
            now = time.monotonic()  # the broker now delivers what it queued: give it time
            for outgoing in self._outgoing[code].values():
                if outgoing.routed:
                    outgoing.sent_at = now

    # -- down: tasks to the cities ---------------------------------------------------------------
    async def _down(self, conn: MqttConnection) -> None:
        codes = sorted(self.config.tokens)
        while True:
            await asyncio.gather(*(self._sync_tasks(conn, code) for code in codes))
            await asyncio.sleep(self.config.poll_interval_s)

    async def _sync_tasks(self, conn: MqttConnection, code: str) -> None:
        token = self.config.tokens[code]
        targets = self.config.covers.get(code) or (code,)
        outcome, tasks = await self.api.open_tasks_for(token, targets)
        if not outcome.ok:
            self.stats["task_polls_failed"] += 1
            if code not in self._polls_failing:  # once per outage, not once per poll
                self._polls_failing.add(code)
                log.warning(
                    "cannot list the tasks of %s: %s %s", code, outcome.status, outcome.detail()
                )
            return
        if code in self._polls_failing:
            self._polls_failing.discard(code)
            log.info("the tasks of %s can be listed again", code)
        now = time.monotonic()
        pending, settled = self._outgoing[code], self._settled[code]
        answering = self._answering[code]
        listed = {t["id"] for t in tasks}
        # A full page may have left open tasks out: then nothing unlisted counts as gone.
        gone = [] if len(tasks) >= MAX_TASKS else [t for t in pending if t not in listed]
        for task_id in gone:
            del pending[task_id]
        gone = [task_id for task_id in gone if task_id not in answering]
        settled &= listed  # answered through this link and no longer listed: forget
        offline = self.city_status.get(code) == OFFLINE.decode()
        interval = self.config.resend_interval_s
        busy = now - self._heard.get(code, -interval) < interval
        send: list[tuple[dict[str, Any], str]] = []
        for task in tasks:
            if task["id"] in settled or task["id"] in answering:
                continue
            known = pending.get(task["id"])
            if known is None or known.state != task["state"]:
                send.append((task, "sent"))
                continue
            age = now - known.sent_at
            if offline and known.routed:
                continue  # queued by the broker for its session
            if age >= interval * (BUSY_CITY_FACTOR if busy else 1):
                send.append((task, "resent"))
        # Cancelled, or answered some other way: tell the city once.
        gate = asyncio.Semaphore(16)

        async def final(task_id: str) -> dict[str, Any] | None:
            async with gate:
                return (await self.api.task(token, task_id))[1]

        for found in await asyncio.gather(*(final(task_id) for task_id in gone)):
            if found is not None:
                send.append((found, "final"))
        if send:
            await self._publish_tasks(conn, code, send)

    async def _publish_tasks(
        self, conn: MqttConnection, code: str, send: list[tuple[dict[str, Any], str]]
    ) -> None:
        pending = self._outgoing[code]
        name = topic(code, "tasks")
        gate = asyncio.Semaphore(max(1, conn.endpoint.max_inflight))
        codec = self.config.codec

        async def one(task: dict[str, Any], why: str) -> None:
            given = for_city(task, self.config.live_only)
            if given is None:  # the isolation guard: settled here, never sent, never resent
                self._settled[code].add(task["id"])
                self.stats["exercise_refused"] += 1
                log.error("exercise task %s not sent: %s is live-only", task["id"], code)
                return
            task = given
            async with gate:
                try:
                    body = orjson.dumps(task) if codec is None else codec.encode_task(task)
                    kind = JSON if codec is None else codec.content_type
                    rc = await conn.publish(name, body, qos=1, content_type=kind)
                except InvalidInput as exc:  # counted as sent: tried again after the interval
                    self.stats["tasks_unencodable"] += 1
                    log.error("task %s for %s cannot be encoded: %s", task["id"], code, exc)
                    if why != "final":
                        pending[task["id"]] = _Outgoing(task["state"], time.monotonic(), False)
                    return
                except PublishRefused as exc:
                    self.stats["tasks_refused_by_broker"] += 1
                    log.error("%s (is the link's ACL right?)", exc)
                    return
            self.stats[f"tasks_{why}"] += 1
            if why != "final":
                routed = rc != NO_MATCHING_SUBSCRIBERS
                pending[task["id"]] = _Outgoing(task["state"], time.monotonic(), routed)

        await asyncio.gather(*(one(task, why) for task, why in send))

    # -- refusals ----------------------------------------------------------------------------------
    async def _refused(self, refusal: Refusal) -> None:
        self.refusals.append(refusal)
        self.stats["refusals_seen"] += 1
        log.warning(
            "broker refused client '%s' (credential %s): %s",
            refusal.client_id,
            refusal.credential,
            refusal.reason,
        )
        token = self.config.tokens.get(refusal.credential or "")
        if token is None:
            log.warning(
                "no hub token for credential %r: the refusal %s is in this log only",
                refusal.credential,
                refusal.id,
            )
            return
        outcome = await self._with_retry(
            lambda: self.api.report_refusal(token, refusal.report()),
            f"refusal report {refusal.id}",
            attempts=self.config.refusal_attempts,
        )
        refusal.hub_status = outcome.status
        refusal.reported = outcome.ok
        if outcome.ok:
            self.stats["refusals_reported"] += 1
            return
        self.stats["refusals_unreported"] += 1
        if outcome.status in (404, 405) and self._missing_route_logged:
            return
        self._missing_route_logged = self._missing_route_logged or outcome.status in (404, 405)
        log.warning(
            "hub did not record refusal %s: %s %s", refusal.id, outcome.status, outcome.detail()
        )
