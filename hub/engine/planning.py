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
from hub.errors import InvalidInput
from hub.model.envelope import Lane, derived_id, parse_time
from hub.model.events import IncidentReported, TaskIssued, decode, make_event
from hub.model.incident import MsgType
from hub.model.task import Task
from hub.region import Region

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
    rows = tuple(render(task, cause, lane) for task in result.tasks)
    return Planned(
        False,
        cause,
        reported.thread,
        incident.sender,
        incident.key,
        reported.received,
        rows,
        (*result.failures, *not_built(result)),
        reported.version,
        restarted(result, incident.msgType, playbooks),
    )


def restarted(result: Plan, msg_type: MsgType, playbooks: Sequence[Playbook]) -> tuple[str, ...]:
    """The playbooks in ``restart`` mode an Update matched, sorted: their round starts again."""
    if msg_type is not MsgType.UPDATE or not result.verdicts:
        return ()
    restart = {p.id for p in playbooks if p.mode == "restart"}
    return tuple(sorted(v.playbook for v in result.verdicts if v.playbook in restart))


def not_built(result: Plan) -> list[tuple[str, str]]:
    """What a plan asks for that the hub cannot do yet, as failures to publish: held tasks
    would wait for an approval nobody can give, and the escalator climbs only agreements'
    ladders. One entry per playbook (the runner publishes one event per playbook and cause)."""
    missing: dict[str, list[str]] = {}
    for hold in result.holds:
        missing.setdefault(hold.playbook, []).append(
            f"approval step '{hold.step}' is not built yet (issue 5): {len(hold.tasks)} "
            "task(s) after it were not issued"
        )
    by_task = {t.id: t.why.playbook for t in result.tasks}
    for ladder in result.ladders:
        if ladder.source == "playbook" and ladder.task in by_task:
            reasons = missing.setdefault(by_task[ladder.task], [])
            note = (
                f"escalate step '{ladder.step}': a playbook's own ladder is not run yet; "
                "the escalator climbs the authorising agreement's ladder"
            )
            if note not in reasons:
                reasons.append(note)
    return [(playbook, "; ".join(reasons)) for playbook, reasons in sorted(missing.items())]


def render(task: Task, cause: str, lane: Lane) -> IssuedRow:
    """A task as its row and its ``task.issued`` event (caused by ``cause``)."""
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
