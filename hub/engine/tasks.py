"""The task lifecycle as the target jurisdiction drives it (acknowledge, accept, decline, done).

Only the target may move its task; anyone else gets ``NotAllowed`` and nothing changes. Moving a
task to the state it is already in is answered as success, so a city system may resend.

A decline of a task whose step says ``on_decline: next_candidate`` asks the next candidate in the
same transaction (:mod:`hub.engine.reassign` decides who, purely): the decline, the new task and
its ``task.issued`` commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.bus import topics
from hub.clock import Clock
from hub.engine.planning import render
from hub.engine.playbook import Playbook
from hub.engine.reassign import declined_event_id, next_candidate
from hub.errors import Conflict, NotAllowed, NotFound
from hub.model.envelope import derived_id, format_time
from hub.model.events import TASK_UPDATE_TYPES, TaskUpdated, make_event
from hub.model.incident import Incident
from hub.model.region import speaks_for
from hub.model.task import Task, TaskState, can_move
from hub.region import Region
from hub.store import approvals as approval_store
from hub.store import incidents as incident_store
from hub.store import tasks as task_store
from hub.store.db import Runner, Tx
from hub.store.outbox import Emitter


class TaskService:
    """The targets' answers. Given the hub's ``playbooks`` and ``region``, a decline also hands
    the task to the next candidate where its step says so; without them declines stand."""

    def __init__(
        self,
        db: Runner,
        emitter: Emitter,
        clock: Clock,
        *,
        playbooks: Sequence[Playbook] = (),
        region: Region | None = None,
    ) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock
        self._playbooks = tuple(playbooks)
        self._region = region

    async def get(self, task_id: str) -> Task:
        task = await self._db.run(lambda tx: task_store.get_task(tx.conn, task_id))
        if task is None:
            raise NotFound(f"no task with id '{task_id}'")
        return task

    async def move(
        self, task_id: str, state: TaskState, *, actor: str, by: str, reason: str | None = None
    ) -> Task:
        """Move a task of ``actor``'s jurisdiction to ``state``; ``by`` names who acted."""
        return await self._db.run(lambda tx: self.move_in(tx, task_id, state, actor, by, reason))

    def move_in(
        self, tx: Tx, task_id: str, state: TaskState, actor: str, by: str, reason: str | None
    ) -> Task:
        """``move`` in the caller's transaction."""
        task = task_store.get_task(tx.conn, task_id)
        if task is None:
            raise NotFound(f"no task with id '{task_id}'")
        if not speaks_for(actor, task.target):
            raise NotAllowed(f"task {task_id} is addressed to {task.target}, not to {actor}")
        if task.state is state:
            return task
        if not can_move(task.state, state):
            raise Conflict(f"task {task_id} is {task.state}; it cannot become {state}")
        now = self._clock.now_ms()
        moved = task.model_copy(update={"state": state})
        task_store.save_task(tx.conn, moved, now, task.state)
        update = TaskUpdated(
            task=task.id,
            incident=task.incident,
            target=task.target,
            previous=task.state,
            state=state,
            by=by,
            reason=reason,
            at=format_time(now),
        )
        envelope = make_event(
            TASK_UPDATE_TYPES[state],
            update,
            id=derived_id(task.id, f"task.{state.value}"),
            source=f"/liandong/adapters/{by}",
            time=format_time(now),
            jurisdiction=task.target,
            correlationid=task.incident,
            subject=task.id,
            status=task.lane,
        )
        lane_topic = topics.for_lane(topics.TASK_UPDATES, task.lane)
        self._emitter.append(tx, lane_topic, task.target, envelope.encode(), now)
        if state is TaskState.DECLINED:
            self._ask_next(tx, moved, now)
        return moved

    def _ask_next(self, tx: Tx, declined: Task, now: int) -> None:
        """Issue the declined task's step to its next candidate, if the step says so."""
        if self._region is None or not any(p.id == declined.why.playbook for p in self._playbooks):
            return
        incident = _causing_incident(tx, declined)
        if incident is None:
            return
        asked = {
            t.target
            for t in task_store.list_tasks(tx.conn, incident=declined.incident, limit=10_000)
            if t.why.playbook == declined.why.playbook and t.why.step == declined.why.step
        }
        task = next_candidate(
            declined,
            incident,
            asked,
            now_ms=now,
            playbooks=self._playbooks,
            region=self._region,
        )
        if task is None:
            return
        ladder = approval_store.ladder_of(tx.conn, declined.id)  # the step's own, if any
        row = render(task, declined_event_id(declined.id), task.lane, ladder)
        if task_store.insert_row(
            tx.conn, row.id, row.incident, row.target, row.due_ms, now, row.body
        ):
            if row.ladder:
                approval_store.insert_ladder(tx.conn, row.id, row.ladder_step, row.ladder)
            tasks_topic = topics.for_lane(topics.TASKS, task.lane)
            self._emitter.append(tx, tasks_topic, row.target, row.event, now)


def _causing_incident(tx: Tx, task: Task) -> Incident | None:
    """The incident message whose planning issued ``task`` (the thread's latest if unknown)."""
    versions = incident_store.thread_versions(tx.conn, task.incident)
    if not versions:
        return None
    found = next((v for v in versions if v.event_id == task.why.cause), versions[-1])
    return Incident.model_validate_json(found.body)
