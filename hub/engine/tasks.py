"""The task lifecycle as the target jurisdiction drives it (acknowledge, accept, decline, done).

Only the target may move its task; anyone else gets ``NotAllowed`` and nothing changes. Moving a
task to the state it is already in is answered as success, so a city system may resend.
"""

from __future__ import annotations

from hub.bus import topics
from hub.clock import Clock
from hub.errors import Conflict, NotAllowed, NotFound
from hub.model.envelope import derived_id, format_time
from hub.model.events import TASK_UPDATE_TYPES, TaskUpdated, make_event
from hub.model.region import speaks_for
from hub.model.task import Task, TaskState, can_move
from hub.store import tasks as task_store
from hub.store.db import Runner, Tx
from hub.store.outbox import Emitter


class TaskService:
    def __init__(self, db: Runner, emitter: Emitter, clock: Clock) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock

    async def get(self, task_id: str) -> Task:
        task = await self._db.run(lambda tx: task_store.get_task(tx.conn, task_id))
        if task is None:
            raise NotFound(f"no task with id '{task_id}'")
        return task

    async def move(
        self, task_id: str, state: TaskState, *, actor: str, by: str, reason: str | None = None
    ) -> Task:
        """Move a task of ``actor``'s jurisdiction to ``state``; ``by`` names who acted."""
        return await self._db.run(lambda tx: self._move(tx, task_id, state, actor, by, reason))

    def _move(
        self, tx: Tx, task_id: str, state: TaskState, actor: str, by: str, reason: str | None
    ) -> Task:
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
        return moved
