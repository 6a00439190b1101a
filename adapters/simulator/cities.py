"""A simulated city command centre: it reports its incidents and answers its tasks, in its own
format (:mod:`adapters.simulator.speech`) over its own transport (``city_http``,
``city_mqtt``, ``city_kafka``).

Like a real city system it deduplicates the task messages it receives by task id and state
(every delivery here is at-least-once: the MQTT link sends a task again until it is answered),
acts once per task, and answers as :func:`adapters.simulator.behaviour.decide` decided: after a
delay it acknowledges, then declines with a reason or accepts, perhaps reports done, or never
answers at all. A task cancelled before its answers are all sent is not answered further.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from adapters.links.mqtt_protocol import Answer, TaskAnswer
from adapters.simulator.behaviour import Decision, decide
from adapters.simulator.region_scenario import CityPlay
from adapters.simulator.speech import HeardTask, Speech
from hub.errors import InvalidInput
from hub.model.incident import Incident

log = logging.getLogger("adapters.simulator")

__all__ = ["CST", "CityTransport", "Sent", "SimulatedCity", "TaskRecord", "now_cst"]

CST = timezone(timedelta(hours=8), "CST")


def now_cst() -> str:
    """Now as a CAP dateTime in China Standard Time, whole seconds."""
    return datetime.now(CST).replace(microsecond=0).isoformat()


@dataclass(frozen=True, slots=True)
class Sent:
    """What came of one message the city sent."""

    ok: bool  # taken (HTTP 2xx; on a broker: stored)
    status: int | None  # HTTP status; None on a broker
    detail: str = ""


class CityTransport(Protocol):
    async def send_incident(self, raw: bytes, key: str) -> Sent: ...

    async def send_answer(self, raw: bytes, key: str) -> Sent: ...

    async def close(self) -> None: ...


@dataclass
class TaskRecord:
    """One task at this city: what it heard, what it decided, what it answered."""

    heard: HeardTask
    decision: Decision
    messages: int = 1  # task messages received for it, repeats included
    states: list[str] = field(default_factory=list)  # every distinct state heard, in order
    answers: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "task": self.heard.task_id,
            "target": self.heard.target,
            "incident": self.heard.incident,
            "response": self.heard.response,
            "states_heard": self.states,
            "messages": self.messages,
            "silent": self.decision.silent,
            "answers": self.answers,
        }


class SimulatedCity:
    """One city command centre of the scenario."""

    def __init__(
        self,
        adapter_id: str,
        jurisdiction: str,
        speech: Speech,
        play: CityPlay,
        *,
        seed: int,
        speed: float,
        names: Mapping[str, str],
    ) -> None:
        self.adapter_id = adapter_id
        self.jurisdiction = jurisdiction
        self.speech = speech
        self.play = play
        self.seed = seed
        self.speed = speed
        self.transport: CityTransport | None = None
        self.tasks: dict[str, TaskRecord] = {}
        self.incidents: list[dict[str, Any]] = []
        self.unreadable = 0
        self._names = names  # incident identifier -> its name in the scenario
        self._answering: dict[str, asyncio.Task[None]] = {}
        self._on_change: list[Callable[[], None]] = []

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever this city heard or answered something."""
        self._on_change.append(callback)

    def _changed(self) -> None:
        for callback in self._on_change:
            callback()

    # -- tasks in ----------------------------------------------------------------------------
    async def receive(self, raw: bytes) -> bool:
        """A task message from the adapter; False if the city cannot read it."""
        try:
            heard = self.speech.hear(raw)
        except InvalidInput as exc:
            self.unreadable += 1
            log.error("%s: unreadable task message: %s", self.adapter_id, exc)
            return False
        record = self.tasks.get(heard.task_id)
        if record is None:
            record = TaskRecord(heard, self._decide(heard), states=[heard.state])
            self.tasks[heard.task_id] = record
            log.info(
                "%s %s 收到任务 received task %s for %s: %s",
                self.adapter_id,
                self.jurisdiction,
                heard.task_id[:8],
                heard.target,
                heard.action[:40],
            )
            if heard.open:
                self._answering[heard.task_id] = asyncio.create_task(self._answer(record))
        else:
            record.messages += 1
            if heard.state != record.states[-1]:
                record.states.append(heard.state)
                log.info("%s: task %s is now %s", self.adapter_id, heard.task_id[:8], heard.state)
        if heard.state == "cancelled":
            running = self._answering.pop(heard.task_id, None)
            if running is not None:
                running.cancel()
        self._changed()
        return True

    def _decide(self, heard: HeardTask) -> Decision:
        identifier = heard.incident.split(",", 1)[-1]
        return decide(
            self.seed,
            self.play.answers,
            city=self.adapter_id,
            incident=self._names.get(identifier, identifier),
            target=heard.target,
            action=heard.action,
        )

    # -- answers out -------------------------------------------------------------------------
    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)

    async def _answer(self, record: TaskRecord) -> None:
        decision, heard = record.decision, record.heard
        if decision.silent:
            log.info("%s: stays silent on task %s", self.adapter_id, heard.task_id[:8])
            return
        await self._sleep(decision.acknowledge_after_s)
        if not await self._send(record, Answer.ACKNOWLEDGE, None):
            return
        if decision.declines:
            await self._sleep(decision.then_after_s)
            await self._send(record, Answer.DECLINE, decision.decline_reason)
            return
        if heard.response != Answer.ACCEPT.value:
            return
        await self._sleep(decision.then_after_s)
        if not await self._send(record, Answer.ACCEPT, None):
            return
        if decision.done_after_s is not None:
            await self._sleep(decision.done_after_s)
            await self._send(record, Answer.DONE, None)

    async def _send(self, record: TaskRecord, answer: Answer, reason: str | None) -> bool:
        assert self.transport is not None, "connect the city first"
        task_id = record.heard.task_id
        message = TaskAnswer(task=task_id, answer=answer, reason=reason)
        raw = self.speech.answer(message, record.heard, sender=self.jurisdiction, sent=now_cst())
        sent = await self.transport.send_answer(raw, task_id)
        record.answers.append(
            {"answer": answer.value, "reason": reason, "ok": sent.ok, "status": sent.status}
        )
        word = {"acknowledge": "签收", "accept": "接受", "decline": "拒绝", "done": "办结"}
        log.info(
            "%s %s %s task %s%s -> %s",
            self.adapter_id,
            word[answer.value],
            answer.value,
            task_id[:8],
            f" ({reason})" if reason else "",
            sent.status if sent.status is not None else ("sent" if sent.ok else sent.detail),
        )
        self._changed()
        return sent.ok

    # -- incidents out -----------------------------------------------------------------------
    async def report(self, name: str, incident: Incident) -> Sent:
        """Send one incident in the city's format."""
        assert self.transport is not None, "connect the city first"
        sent = await self.transport.send_incident(self.speech.incident(incident), incident.key)
        self.incidents.append(
            {
                "name": name,
                "identifier": incident.identifier,
                "sender": incident.sender,
                "msgType": incident.msgType.value,
                "ok": sent.ok,
                "status": sent.status,
                "detail": sent.detail if not sent.ok else "",
            }
        )
        event = incident.info[0].event if incident.info else ""
        log.info(
            "%s %s 报送 reported %s %s (%s) -> %s",
            self.adapter_id,
            incident.sender,
            incident.msgType.value,
            name,
            event,
            sent.status if sent.status is not None else ("sent" if sent.ok else sent.detail),
        )
        self._changed()
        return sent

    @property
    def busy(self) -> bool:
        """Answers still to come."""
        return any(not task.done() for task in self._answering.values())

    async def close(self) -> None:
        for task in self._answering.values():
            task.cancel()
        await asyncio.gather(*self._answering.values(), return_exceptions=True)
        if self.transport is not None:
            await self.transport.close()

    def summary(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "format": self.speech.kind,
            "incidents": self.incidents,
            "tasks": [record.summary() for record in self.tasks.values()],
            "unreadable_task_messages": self.unreadable,
        }
