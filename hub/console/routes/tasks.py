"""``/api/v1/tasks``: tasks for an incident or a jurisdiction, and the target's answers.

Reading: any adapter or signed-in user (the regional picture). Answering: only an actor that
speaks for the task's target (its adapter, or a duty officer of the target or of its city);
a coordinator or an administrator answers no task. Anyone else: 403, nothing changes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from hub.console.auth import CurrentActor, CurrentHub
from hub.errors import InvalidInput, NotAllowed, NotFound
from hub.model.task import TaskState
from hub.store import incidents as incident_store
from hub.store import tasks as task_store

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


class Answer(StrEnum):
    acknowledge = "acknowledge"
    accept = "accept"
    decline = "decline"
    done = "done"


_STATE = {
    Answer.acknowledge: TaskState.ACKNOWLEDGED,
    Answer.accept: TaskState.ACCEPTED,
    Answer.decline: TaskState.DECLINED,
    Answer.done: TaskState.DONE,
}


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


@router.get("")
async def list_tasks(
    hub: CurrentHub,
    actor: CurrentActor,
    incident: str | None = Query(
        default=None,
        description="identifier (or 'sender,identifier') of any message of the incident",
    ),
    target: str | None = Query(
        default=None, description="jurisdiction code the tasks are addressed to"
    ),
    state: list[TaskState] = Query(default=[]),
    limit: int = Query(default=500, ge=1, le=5000),
) -> Response:
    """Tasks, newest first. ``incident`` accepts any message of the thread (Alert or Update)."""
    if incident is None and target is None:
        raise InvalidInput("give ?incident=IDENTIFIER or ?target=CODE")

    def read(tx: Any) -> list[dict[str, Any]]:
        thread = None
        if incident is not None:
            if "," in incident:
                sender, identifier = incident.split(",", 1)
                row = incident_store.get_incident(tx.conn, sender, identifier)
                rows = [row] if row else []
            else:
                rows = incident_store.find_by_identifier(tx.conn, incident)
            if not rows:
                raise NotFound(f"no incident with identifier '{incident}'")
            threads = {r.thread for r in rows}
            if len(threads) > 1:
                raise InvalidInput(f"identifier '{incident}' is ambiguous; use 'sender,identifier'")
            thread = threads.pop()
        found = task_store.list_tasks(
            tx.conn,
            incident=thread,
            target=target,
            states=tuple(s.value for s in state),
            limit=limit,
        )
        return [t.model_dump(mode="json") for t in found]

    return _json({"tasks": await hub.db.run(read)})


@router.get("/{task_id}")
async def get_task(task_id: str, hub: CurrentHub, actor: CurrentActor) -> Response:
    task = await hub.tasks.get(task_id)
    return _json(task.model_dump(mode="json"))


@router.post("/{task_id}/{answer}")
async def answer_task(
    task_id: str,
    answer: Answer,
    hub: CurrentHub,
    actor: CurrentActor,
    body: AnswerBody | None = None,
) -> Response:
    """The target jurisdiction's answer (its adapter or duty officer); anyone else gets 403 and
    nothing changes."""
    jurisdiction = actor.require_jurisdiction("answer a task")
    target = (await hub.tasks.get(task_id)).target
    if not actor.may_act_for(target):
        raise NotAllowed(f"task {task_id} is addressed to {target}, not to {jurisdiction}")
    reason = body.reason if body else None
    if answer is Answer.decline and not reason:
        raise InvalidInput('a decline needs a reason: {"reason": "..."}')
    task = await hub.tasks.move(
        task_id, _STATE[answer], actor=jurisdiction, by=actor.by, reason=reason
    )
    return _json(task.model_dump(mode="json"))
