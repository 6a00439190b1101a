"""From one ``incident.reported`` record to what the engine must write: pure, and picklable,
so it can run in a worker process while the hub's own process serves HTTP and writes.

The result carries everything rendered already (task rows, event bytes): the writer only
inserts. Same record, same playbooks, same region: byte-identical result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from hub.engine.evaluator import Plan, plan
from hub.engine.playbook import Playbook
from hub.engine.steps import Hold, Ladder
from hub.errors import InvalidInput
from hub.model.approvals import APPROVAL_REQUESTED, ApprovalRequested, OnExpiry
from hub.model.envelope import Lane, derived_id, parse_time
from hub.model.events import IncidentReported, TaskIssued, decode, make_event
from hub.model.incident import MsgType
from hub.model.task import Task
from hub.region import Region
from hub.store.approvals import HeldTask, Rungs, held_json

SOURCE = "/liandong/hub/engine"


@dataclass(frozen=True, slots=True)
class IssuedRow:
    """A planned task as the store and the bus want it."""

    id: str
    incident: str
    target: str
    due_ms: int
    body: bytes
    event: bytes
    playbook: str = ""
    ladder_step: str = ""
    ladder: Rungs = ()
    """The playbook's own ladder the task climbs (empty: its agreement's)."""


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """A planned approval request: what the store keeps and its ``approval.requested``."""

    id: str
    playbook: str
    version: int
    step: str
    approver: str
    question_zh: str
    question_en: str
    expires_ms: int
    on_expiry: OnExpiry
    held: tuple[HeldTask, ...]
    tasks_json: bytes
    event: bytes


@dataclass(frozen=True, slots=True)
class Planned:
    """What one incident record asks of the engine: tasks to issue, or its thread cancelled."""

    cancel: bool
    cause: str
    thread: str
    sender: str
    key: str
    received: str
    rows: tuple[IssuedRow, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()
    version: int = 0
    restart: tuple[str, ...] = ()
    """Playbooks in ``restart`` mode this Update matched: their earlier open tasks in the
    thread are cancelled (all but those this message plans again)."""
    approvals: tuple[ApprovalRow, ...] = ()


def prepare(
    value: bytes, lane: Lane, playbooks: Sequence[Playbook], region: Region
) -> Planned | None:
    """Plan one record; None when the engine has nothing to do for it (Test, Ack, Error).

    Raises ``InvalidInput`` for a record that is not a valid ``incident.reported``.
    """
    event = decode(value)
    reported = event.payload_as(IncidentReported)
    if event.envelope.status is not lane:
        return None  # Test/System/Draft traffic is recorded, never acted on
    incident = reported.incident
    cause = event.envelope.id
    if incident.msgType is MsgType.CANCEL:
        return Planned(
            True, cause, reported.thread, incident.sender, incident.key, reported.received
        )
    if incident.msgType not in (MsgType.ALERT, MsgType.UPDATE):
        return None
    result = plan(
        incident,
        thread=reported.thread,
        cause=cause,
        reported_ms=parse_time(reported.received),
        lane=lane,
        playbooks=playbooks,
        region=region,
    )
    own = own_ladders(result.ladders)
    rows = tuple(render(task, cause, lane, own.get(task.id)) for task in result.tasks)
    approvals = tuple(
        approval_row(hold, own, event.envelope.id, reported, lane) for hold in result.holds
    )
    return Planned(
        False,
        cause,
        reported.thread,
        incident.sender,
        incident.key,
        reported.received,
        rows,
        result.failures,
        reported.version,
        restarted(result, incident.msgType, playbooks),
        approvals,
    )


def own_ladders(ladders: Sequence[Ladder]) -> dict[str, tuple[str, Rungs]]:
    """Task id → (escalate step, rungs) of the playbook's own ladders; the first step wins."""
    own: dict[str, tuple[str, Rungs]] = {}
    for ladder in ladders:
        if ladder.source == "playbook" and ladder.task not in own:
            levels = tuple(level for level, _ in ladder.rungs)
            own[ladder.task] = (ladder.step, tuple(zip(levels, ladder.waits, strict=True)))
    return own


def approval_row(
    hold: Hold,
    own: dict[str, tuple[str, Rungs]],
    cause: str,
    reported: IncidentReported,
    lane: Lane,
) -> ApprovalRow:
    """An approval step's request, its held tasks (with their ladders) and its event."""
    held = tuple(
        HeldTask(t, *own.get(t.id, ("", ()))) for t in sorted(hold.tasks, key=lambda t: t.id)
    )
    on_expiry = OnExpiry(hold.on_expiry)
    payload = ApprovalRequested(
        approval=hold.id,
        incident=reported.thread,
        playbook=hold.playbook,
        version=hold.version,
        step=hold.step,
        approver=hold.approver,
        question_zh=hold.question_zh,
        question_en=hold.question_en,
        expires=hold.expires,
        on_expiry=on_expiry,
        tasks=[h.task for h in held],
    )
    envelope = make_event(
        APPROVAL_REQUESTED,
        payload,
        id=derived_id(hold.id, APPROVAL_REQUESTED),
        source=SOURCE,
        time=reported.received,
        jurisdiction=reported.incident.sender,
        correlationid=reported.thread,
        causationid=cause,
        subject=hold.id,
        status=lane,
    )
    return ApprovalRow(
        hold.id,
        hold.playbook,
        hold.version,
        hold.step,
        hold.approver,
        hold.question_zh,
        hold.question_en,
        parse_time(hold.expires),
        on_expiry,
        held,
        held_json(held),
        envelope.encode(),
    )


def restarted(result: Plan, msg_type: MsgType, playbooks: Sequence[Playbook]) -> tuple[str, ...]:
    """The playbooks in ``restart`` mode an Update matched, sorted: their round starts again."""
    if msg_type is not MsgType.UPDATE or not result.verdicts:
        return ()
    restart = {p.id for p in playbooks if p.mode == "restart"}
    return tuple(sorted(v.playbook for v in result.verdicts if v.playbook in restart))


def render(
    task: Task, cause: str, lane: Lane, ladder: tuple[str, Rungs] | None = None
) -> IssuedRow:
    """A task as its row and its ``task.issued`` event (caused by ``cause``); ``ladder``: the
    playbook's own (escalate step, rungs) it climbs, if any."""
    data = task.model_dump(mode="json")
    envelope = make_event(
        "task.issued",
        TaskIssued(task=task),
        id=derived_id(task.id, "task.issued"),
        source=SOURCE,
        time=task.issued,
        jurisdiction=task.target,
        correlationid=task.incident,
        causationid=cause,
        subject=task.id,
        status=lane,
        data={"task": data},
    )
    body = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    return IssuedRow(
        task.id,
        task.incident,
        task.target,
        parse_time(task.due),
        body,
        envelope.encode(),
        task.why.playbook,
        *(ladder or ("", ())),
    )


def prepare_batch(
    values: Sequence[bytes], lane: Lane, playbooks: Sequence[Playbook], region: Region
) -> list[Planned | InvalidInput | None]:
    """``prepare`` for a batch; a record's ``InvalidInput`` is returned in its place, so one
    bad record costs the batch nothing but its own slot."""
    out: list[Planned | InvalidInput | None] = []
    for value in values:
        try:
            out.append(prepare(value, lane, playbooks, region))
        except InvalidInput as exc:
            out.append(exc)
    return out
