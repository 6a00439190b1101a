"""The registry of event types: each CloudEvents ``type`` and the model of its ``data``.

Event types are past-tense facts. Decoding goes through this registry, so an unknown type or a
payload that does not fit its model fails loudly with a message naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from hub.errors import InvalidInput, UnknownEventType
from hub.model.approvals import (
    APPROVAL_DECIDED_TYPES,
    APPROVAL_EXTENDED,
    APPROVAL_REQUESTED,
    ApprovalDecided,
    ApprovalExtended,
    ApprovalRequested,
)
from hub.model.envelope import Envelope, Lane, OutgoingEvent
from hub.model.incident import Incident
from hub.model.payload import Payload as _Payload
from hub.model.resources import (
    RESOURCE_LINE_MOVED,
    STOCK_EVENT_TYPES,
    STOCK_LOW,
    STOCK_REFUSED,
    ResourceLineMoved,
    StockChanged,
    StockLow,
    StockRefused,
)
from hub.model.task import Task, TaskState


class IncidentReported(_Payload):
    """A CAP message accepted by the intake; ``thread`` keys the incident's first message."""

    incident: Incident
    thread: str
    version: int
    received: str


class TaskIssued(_Payload):
    task: Task


class TaskUpdated(_Payload):
    """A task moved from ``previous`` to ``state``; ``by`` is the acting jurisdiction or 'hub'.

    For ``task.escalated``: ``rung`` (1 = the first escalation) and ``level`` name the rung of the
    agreement's ladder now called, ``contact`` the routing address the agreement gives for it
    (when it gives one), ``at`` the deadline that passed.
    """

    task: str
    incident: str
    target: str
    previous: TaskState
    state: TaskState
    by: str
    reason: str | None = None
    at: str
    rung: int | None = None
    level: str | None = None
    contact: str | None = None


class EvaluationFailed(_Payload):
    incident: str
    playbook: str
    reason: str


class IntakeRefused(_Payload):
    """An adapter tried something its credential does not allow (recorded for audit): an
    incident for another sender, or a publish the MQTT broker refused (``topic`` set)."""

    adapter: str
    credential_jurisdiction: str
    claimed: str | None
    identifier: str | None = None
    reason: str
    transport: str | None = None
    topic: str | None = None


class EventDeadLettered(_Payload):
    """A message no handler could process; kept with the reason, never dropped silently.

    From a consumer: ``topic``, ``offset``, ``group`` name the record. From a transport that
    refused a message before it became an event (the HTTP intake: malformed JSON, invalid CAP,
    an unreadable media type, an oversize body): ``topic`` names the route (``POST
    /api/v1/incidents``), ``adapter`` whose credential sent it, ``media_type`` and ``size`` what
    arrived; ``payload`` keeps the bytes (UTF-8 text, else hex), cut at ``kept`` bytes when
    ``size`` is larger.
    """

    topic: str
    offset: int | None = None
    key: str | None = None
    group: str | None = None
    reason: str
    payload: str
    adapter: str | None = None
    media_type: str | None = None
    size: int | None = None
    kept: int | None = None


TASK_UPDATE_TYPES: Mapping[TaskState, str] = {
    state: f"task.{state.value}" for state in TaskState if state is not TaskState.ISSUED
}

EVENT_TYPES: Mapping[str, type[_Payload]] = {
    "incident.reported": IncidentReported,
    "task.issued": TaskIssued,
    **{name: TaskUpdated for name in TASK_UPDATE_TYPES.values()},
    "evaluation.failed": EvaluationFailed,
    "intake.refused": IntakeRefused,
    "event.deadlettered": EventDeadLettered,
    **{name: StockChanged for name in STOCK_EVENT_TYPES.values()},
    STOCK_REFUSED: StockRefused,
    STOCK_LOW: StockLow,
    RESOURCE_LINE_MOVED: ResourceLineMoved,
    APPROVAL_REQUESTED: ApprovalRequested,
    APPROVAL_EXTENDED: ApprovalExtended,
    **{name: ApprovalDecided for name in APPROVAL_DECIDED_TYPES.values()},
}

P = TypeVar("P", bound=_Payload)


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded event: the envelope and its typed payload."""

    envelope: Envelope
    payload: _Payload

    def payload_as(self, kind: type[P]) -> P:
        if not isinstance(self.payload, kind):
            raise InvalidInput(
                f"event {self.envelope.id} of type {self.envelope.type} is not a {kind.__name__}"
            )
        return self.payload


def make_event(
    type_: str,
    payload: _Payload,
    *,
    id: str,
    source: str,
    time: str,
    jurisdiction: str,
    correlationid: str,
    status: Lane = Lane.ACTUAL,
    causationid: str | None = None,
    subject: str | None = None,
    drill: str | None = None,
    data: dict[str, Any] | None = None,
) -> OutgoingEvent:
    """Build an envelope for a registered type, checking the payload fits the type.

    ``data`` may carry the payload already rendered as JSON-ready data (the caller rendered it
    for its own row), so it is not rendered twice; it must be ``payload``'s rendering. The
    envelope is built from typed values only, so it is not validated again.
    """
    expected = EVENT_TYPES.get(type_)
    if expected is None:
        raise UnknownEventType(f"unknown event type '{type_}'")
    if not isinstance(payload, expected):
        raise InvalidInput(
            f"event type '{type_}' carries {expected.__name__}, not {type(payload).__name__}"
        )
    return OutgoingEvent(
        id=id,
        source=source,
        type=type_,
        subject=subject,
        time=time,
        data=payload.model_dump(mode="json", exclude_none=True) if data is None else data,
        jurisdiction=jurisdiction,
        status=status,
        drill=drill,
        correlationid=correlationid,
        causationid=causationid,
    )


def decode(raw: bytes | str) -> Event:
    """Decode bytes into a typed event; raises ``InvalidInput`` / ``UnknownEventType``."""
    try:
        obj: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidInput("a CloudEvent must be a JSON object")
    type_ = obj.get("type")
    model = EVENT_TYPES.get(type_) if isinstance(type_, str) else None
    if model is None:
        raise UnknownEventType(f"unknown event type {type_!r}")
    try:
        envelope = Envelope.model_validate(obj)
        payload = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidInput(f"{type_}: {_first_error(exc)}") from None
    return Event(envelope, payload)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {err['msg']}"
