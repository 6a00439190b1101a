"""The engine's consumer: incidents in, tasks stored and published, in one transaction.

At-least-once delivery is made exactly-once in effect by derived task ids: a redelivered incident
plans the same ids, the store refuses them, and no ``task.issued`` is emitted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.bus import topics
from hub.bus.port import Record
from hub.clock import Clock
from hub.engine.evaluator import Plan, plan
from hub.engine.playbook import Playbook
from hub.model.envelope import Lane, derived_id, format_time, parse_time
from hub.model.events import (
    TASK_UPDATE_TYPES,
    EvaluationFailed,
    IncidentReported,
    TaskIssued,
    TaskUpdated,
    decode,
    make_event,
)
from hub.model.incident import MsgType
from hub.model.task import OPEN_STATES, Task, TaskState
from hub.region import Region
from hub.store import tasks as task_store
from hub.store.db import Runner, Tx
from hub.store.outbox import Emitter, first_emission

SOURCE = "/liandong/hub/engine"


@dataclass(frozen=True, slots=True)
class _Work:
    reported: IncidentReported
    cause: str
    plan: Plan | None  # None: a Cancel


class EngineRunner:
    """Turns ``incident.reported`` events of one lane into tasks."""

    def __init__(
        self,
        db: Runner,
        emitter: Emitter,
        clock: Clock,
        region: Region,
        playbooks: Sequence[Playbook],
        lane: Lane = Lane.ACTUAL,
        on_issued: Callable[[int], None] | None = None,
    ) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock
        self._region = region
        self._playbooks = tuple(playbooks)
        self.lane = lane
        self.group = "engine" if lane is Lane.ACTUAL else "engine.exercise"
        self.topics = (topics.for_lane(topics.INCIDENTS, lane),)
        self._on_issued = on_issued

    async def handle(self, records: Sequence[Record]) -> None:
        work = [w for w in (self._prepare(r) for r in records) if w is not None]
        if work:
            issued = await self._db.run(lambda tx: self._write(tx, work))
            if issued and self._on_issued is not None:
                self._on_issued(issued)

    def _prepare(self, record: Record) -> _Work | None:
        event = decode(record.value)
        reported = event.payload_as(IncidentReported)
        if event.envelope.status is not self.lane:
            return None  # Test/System/Draft traffic is recorded, never acted on
        incident = reported.incident
        if incident.msgType is MsgType.CANCEL:
            return _Work(reported, event.envelope.id, None)
        if incident.msgType not in (MsgType.ALERT, MsgType.UPDATE):
            return None
        result = plan(
            incident,
            thread=reported.thread,
            cause=event.envelope.id,
            reported_ms=parse_time(reported.received),
            lane=self.lane,
            playbooks=self._playbooks,
            region=self._region,
        )
        return _Work(reported, event.envelope.id, result)

    def _write(self, tx: Tx, work: list[_Work]) -> int:
        issued = 0
        for item in work:
            if item.plan is None:
                self._cancel_thread(tx, item)
                continue
            for task in item.plan.tasks:
                if task_store.insert_task(
                    tx.conn, task, parse_time(task.due), self._clock.now_ms()
                ):
                    self._emit_issued(tx, task, item)
                    issued += 1
            for playbook, reason in item.plan.failures:
                self._emit_failure(tx, item, playbook, reason)
        return issued

    def _emit_issued(self, tx: Tx, task: Task, item: _Work) -> None:
        envelope = make_event(
            "task.issued",
            TaskIssued(task=task),
            id=derived_id(task.id, "task.issued"),
            source=SOURCE,
            time=task.issued,
            jurisdiction=task.target,
            correlationid=task.incident,
            causationid=item.cause,
            subject=task.id,
            status=self.lane,
        )
        self._emitter.append(
            tx, topics.for_lane(topics.TASKS, self.lane), task.target, envelope.encode()
        )

    def _cancel_thread(self, tx: Tx, item: _Work) -> None:
        thread = item.reported.thread
        states = tuple(s.value for s in sorted(OPEN_STATES))
        for task in task_store.list_tasks(tx.conn, incident=thread, states=states, limit=10_000):
            cancelled = task.model_copy(update={"state": TaskState.CANCELLED})
            task_store.save_task(tx.conn, cancelled, self._clock.now_ms())
            update = TaskUpdated(
                task=task.id,
                incident=thread,
                target=task.target,
                previous=task.state,
                state=TaskState.CANCELLED,
                by=item.reported.incident.sender,
                reason=f"incident cancelled by {item.reported.incident.key}",
                at=item.reported.received,
            )
            envelope = make_event(
                TASK_UPDATE_TYPES[TaskState.CANCELLED],
                update,
                id=derived_id(task.id, "task.cancelled"),
                source=SOURCE,
                time=item.reported.received,
                jurisdiction=task.target,
                correlationid=thread,
                causationid=item.cause,
                subject=task.id,
                status=self.lane,
            )
            self._emitter.append(
                tx, topics.for_lane(topics.TASK_UPDATES, self.lane), task.target, envelope.encode()
            )

    def _emit_failure(self, tx: Tx, item: _Work, playbook: str, reason: str) -> None:
        event_id = derived_id(item.cause, "evaluation.failed", playbook)
        if not first_emission(tx.conn, event_id):
            return
        payload = EvaluationFailed(incident=item.reported.thread, playbook=playbook, reason=reason)
        envelope = make_event(
            "evaluation.failed",
            payload,
            id=event_id,
            source=SOURCE,
            time=format_time(self._clock.now_ms()),
            jurisdiction=item.reported.incident.sender,
            correlationid=item.reported.thread,
            causationid=item.cause,
            status=self.lane,
        )
        self._emitter.append(
            tx, topics.for_lane(topics.AUDIT, self.lane), item.reported.thread, envelope.encode()
        )
