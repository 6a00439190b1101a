"""Tasks: joint-response requests from the hub to one jurisdiction, and their lifecycle."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from hub.model.envelope import Lane


class TaskState(StrEnum):
    ISSUED = "issued"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    DONE = "done"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"


# Which state may follow which. Escalation does not stop the target from answering late.
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.ISSUED: frozenset(
        {TaskState.DELIVERED, TaskState.ACKNOWLEDGED, TaskState.ESCALATED, TaskState.CANCELLED}
    ),
    TaskState.DELIVERED: frozenset(
        {TaskState.ACKNOWLEDGED, TaskState.ESCALATED, TaskState.CANCELLED}
    ),
    TaskState.ESCALATED: frozenset({TaskState.ACKNOWLEDGED, TaskState.CANCELLED}),
    TaskState.ACKNOWLEDGED: frozenset(
        {TaskState.ACCEPTED, TaskState.DECLINED, TaskState.CANCELLED}
    ),
    TaskState.ACCEPTED: frozenset({TaskState.DONE, TaskState.CANCELLED}),
    TaskState.DECLINED: frozenset(),
    TaskState.DONE: frozenset(),
    TaskState.CANCELLED: frozenset(),
}

OPEN_STATES = frozenset(
    {
        TaskState.ISSUED,
        TaskState.DELIVERED,
        TaskState.ESCALATED,
        TaskState.ACKNOWLEDGED,
        TaskState.ACCEPTED,
    }
)


def can_move(current: TaskState, target: TaskState) -> bool:
    return target in TRANSITIONS[current]


class Why(BaseModel):
    """Why a task exists: the playbook step, what matched, what authorises it, what caused it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    playbook: str
    version: int
    step: str
    conditions: list[str]
    agreement: str
    clause: str
    cause: str = Field(description="id of the event that caused the task")


class Task(BaseModel):
    """A joint-response request to one target jurisdiction, born of one playbook step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    incident: str = Field(
        description="the incident thread: 'sender,identifier' of its first message"
    )
    sender: str = Field(description="jurisdiction that reported the incident")
    target: str = Field(description="jurisdiction asked to act")
    action_zh: str
    action_en: str
    response: str = Field(description="what the target must answer: acknowledge, accept")
    issued: str
    due: str
    state: TaskState = TaskState.ISSUED
    lane: Lane = Lane.ACTUAL
    why: Why
