"""A matched playbook's steps, in order, turned into tasks (pure).

``task``, ``request_resources`` and ``notify`` steps give one task per authorised target.
After an ``approval`` step the following steps' tasks are planned but held for a coordinator;
``escalate`` steps say which ladder those tasks climb when nobody acknowledges them. Task ids are
derived from their cause (the playbook's ``mode`` decides which cause), so planning the same
incident again gives the same ids and a redelivery cannot issue a task twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hub.engine import catalogue
from hub.engine.conditions import holds, trace
from hub.engine.conditions import reasons as why_held
from hub.engine.duration import duration_ms
from hub.engine.operators import Facts
from hub.engine.playbook import (
    CompiledStep,
    EscalateSpec,
    NotifySpec,
    Playbook,
    ResourceRequestSpec,
    TaskSpec,
)
from hub.engine.spatial import Area
from hub.engine.targets import Authorised, Refused, could_authorise, kind_of, select
from hub.model.envelope import Lane, derived_id, format_time, parse_time
from hub.model.incident import Incident, Info
from hub.model.region import ClauseKind
from hub.model.task import Task, Why


@dataclass(frozen=True, slots=True)
class Hold:
    """Tasks planned after an approval step, waiting for a coordinator until ``expires``.
    ``id`` derives from the cause like a task id, so a redelivery asks the coordinator once."""

    id: str
    playbook: str
    version: int
    step: str
    approver: str
    question_zh: str
    question_en: str
    expires: str
    on_expiry: str
    tasks: tuple[Task, ...]


@dataclass(frozen=True, slots=True)
class Ladder:
    """Who is called, and when, if a task is not acknowledged: ``source`` is ``agreement`` (the
    authorising agreement's ladder) or ``playbook`` (the playbook's own rungs)."""

    task: str
    step: str
    source: str
    rungs: tuple[tuple[str, str], ...]
    waits: tuple[int, ...] = ()
    """Each rung's wait (ms) before the next one is called, in the order of ``rungs``."""


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """Items asked of one lender; the registry (its own issue) will fulfil it."""

    task: str
    target: str
    items: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True, slots=True)
class Occasion:
    """What every task planned for one incident message shares."""

    incident: Incident
    thread: str
    cause: str
    reported_ms: int
    lane: Lane
    area: Area


@dataclass(slots=True)
class Outcome:
    """What one playbook gives for one incident, and (for explaining) what it left out."""

    tasks: list[Task] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    ladders: list[Ladder] = field(default_factory=list)
    requests: list[ResourceRequest] = field(default_factory=list)
    refused: list[tuple[str, Refused]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)


_DEFAULT_KIND: dict[str, ClauseKind] = {
    "task": "joint_response",
    "request_resources": "resources",
    "notify": "information",
}


def run_steps(
    playbook: Playbook, info: Info, matched: list[str], at: Occasion, detail: bool = True
) -> Outcome:
    """Plan every step of a playbook whose conditions held on ``info`` (reasons: ``matched``).

    Without ``detail`` (the hub's hot path) skipped steps are not explained and only the
    ladders the hub must act on (a playbook's own) are listed.
    """
    out = Outcome()
    hold: Hold | None = None
    facts = Facts(at.incident, info, at.area)
    active = [s for s in playbook.steps if s.when is None or holds(s.when, facts)]
    if detail:
        for step in playbook.steps:
            if step.when is not None and step not in active:
                failed = "; ".join(trace(step.when, facts).failed())
                out.skipped.append((step.id, f"when does not hold: {failed}"))
    _prefetch(active, info, at, detail)
    for step in active:
        reasons = matched
        if step.when is not None:
            reasons = [*matched, *(f"when: {r}" for r in why_held(step.when, facts))]
        spec = step.spec
        if spec.approval is not None:
            approval = spec.approval
            expires = format_time(at.reported_ms + duration_ms(approval.ttl))
            q = approval.question
            hold = Hold(
                _task_id(playbook, step.id, "approval", at),
                playbook.id,
                playbook.version,
                step.id,
                approval.approver,
                q.zh,
                q.en,
                expires,
                approval.on_expiry,
                (),
            )
            out.holds.append(hold)
            continue
        if spec.escalate is not None:
            if detail or spec.escalate.ladder != "agreement":
                out.ladders.extend(_ladders(step.id, spec.escalate, out, at))
            continue
        tasks = _issue(playbook, step, info, reasons, at, out, detail)
        if hold is None:
            out.tasks.extend(tasks)
        else:
            hold = replace(hold, tasks=(*hold.tasks, *tasks))
            out.holds[-1] = hold
    return out


def _issue(
    playbook: Playbook,
    step: CompiledStep,
    info: Info,
    reasons: list[str],
    at: Occasion,
    out: Outcome,
    detail: bool,
) -> list[Task]:
    spec: TaskSpec | ResourceRequestSpec | NotifySpec = step.body
    kind = _DEFAULT_KIND[step.kind]
    kept, refused, notes = select(spec.targets, kind, at.incident, info, at.area, detail)
    out.refused.extend((step.id, r) for r in refused)
    out.notes.extend((step.id, n) for n in notes)
    if isinstance(spec, TaskSpec | ResourceRequestSpec) and spec.at_most is not None:
        if detail and len(kept) > spec.at_most:
            reserve = ", ".join(t.code for t in kept[spec.at_most :])
            out.notes.append((step.id, f"at_most {spec.at_most}: kept in reserve {reserve}"))
        kept = kept[: spec.at_most]  # the rest are the reserve a decline draws on
    action_zh, action_en, response = wording(spec)
    issued = format_time(at.reported_ms)
    due = format_time(at.reported_ms + duration_ms(spec.ack_deadline))
    tasks = []
    for target in kept:
        task = Task(
            id=_task_id(playbook, step.id, target.code, at),
            incident=at.thread,
            sender=at.incident.sender,
            target=target.code,
            action_zh=action_zh,
            action_en=action_en,
            response=response,
            issued=issued,
            due=due,
            lane=at.lane,
            why=why_for(playbook, step.id, reasons, target, at.cause),
        )
        tasks.append(task)
        if isinstance(spec, ResourceRequestSpec):
            items = tuple(
                (line.item, line.quantity, catalogue.item(line.item).unit_en) for line in spec.items
            )
            out.requests.append(ResourceRequest(task.id, target.code, items))
    return tasks


def _prefetch(steps: list[CompiledStep], info: Info, at: Occasion, detail: bool) -> None:
    """One spatial query for the widest radius the steps ask for (the narrower ones filter its
    answer), leaving out steps no agreement could authorise anyone for."""
    radii = []
    for step in steps:
        if step.kind in _DEFAULT_KIND:
            targets = step.body.targets
            kind = kind_of(targets, _DEFAULT_KIND[step.kind])
            if targets.within_km and (
                detail or could_authorise(at.area, at.incident.sender, info, kind)
            ):
                radii.append(targets.within_km)
    if radii and at.area.usable:
        at.area.within_km(max(radii), at.incident.sender)


def _task_id(playbook: Playbook, step: str, target: str, at: Occasion) -> str:
    """A task's id (``target`` a jurisdiction code) or an approval's (``target`` 'approval')."""
    # on_every_update and restart: each message is a new round with ids of its own, so a
    # redelivered message plans the same ids and the store refuses them.
    if playbook.mode == "once_per_incident":
        # Thread, not message: an Update plans the same ids, so only new targets get a task.
        return derived_id(playbook.id, str(playbook.version), at.thread, step, target)
    return derived_id(playbook.id, str(playbook.version), at.thread, at.incident.key, step, target)


def why_for(
    playbook: Playbook, step: str, reasons: list[str], target: Authorised, cause: str
) -> Why:
    """The ``why`` of a task for ``target`` planned by ``step``."""
    return Why(
        playbook=playbook.id,
        version=playbook.version,
        step=step,
        conditions=[*reasons, target.note],
        agreement=target.agreement.id,
        clause=target.clause.id,
        cause=cause,
    )


def wording(spec: TaskSpec | ResourceRequestSpec | NotifySpec) -> tuple[str, str, str]:
    """A step's action in Chinese and English, and the answer it asks for."""
    if isinstance(spec, TaskSpec):
        return spec.action.zh, spec.action.en, spec.response
    if isinstance(spec, NotifySpec):
        return f"【通报】{spec.message.zh}", f"For information: {spec.message.en}", "acknowledge"
    lines = [(catalogue.item(x.item), x.quantity) for x in spec.items]
    zh = "；".join(f"{i.zh} {q} {i.unit_zh}" for i, q in lines)
    en = "; ".join(f"{q} {i.unit_en} of {i.en}" for i, q in lines)
    return (
        f"{spec.purpose.zh}。请求调拨（可部分满足）：{zh}",
        f"{spec.purpose.en}. Please lend (in part if need be): {en}",
        "accept",
    )


def _ladders(step: str, spec: EscalateSpec, out: Outcome, at: Occasion) -> list[Ladder]:
    covered = set(spec.steps)
    tasks = [t for t in out.tasks if t.why.step in covered]
    tasks += [t for h in out.holds for t in h.tasks if t.why.step in covered]
    ladders = []
    for task in tasks:
        due = parse_time(task.due)
        if spec.ladder == "agreement":
            agreement = at.area.region.agreement(task.why.agreement)
            rungs = [(r.level, int(r.wait.total_seconds() * 1000)) for r in agreement.escalation]
            source = "agreement"
        else:
            rungs = [(r.level, duration_ms(r.wait)) for r in spec.ladder]
            source = "playbook"
        called, schedule = due, []
        for level, wait in rungs:
            schedule.append((level, format_time(called)))
            called += wait
        waits = tuple(wait for _, wait in rungs)
        ladders.append(Ladder(task.id, step, source, tuple(schedule), waits))
    return ladders
