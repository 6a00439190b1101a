"""Matching and planning, pure: an incident and the playbooks in, planned tasks and reasons out.

No clock, no ids from the system, no I/O: the caller passes the time the incident was reported,
and every id is derived from its cause, so the same input always gives byte-identical tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from shapely.geometry.base import BaseGeometry

from hub.engine.duration import duration_ms
from hub.engine.playbook import (
    AllOf,
    AnyOf,
    CategoryIn,
    CertaintyAtLeast,
    Condition,
    MsgTypeIn,
    NotOf,
    Playbook,
    SeverityAtLeast,
    Step,
    UrgencyAtLeast,
)
from hub.model.envelope import Lane, derived_id, format_time
from hub.model.incident import (
    CERTAINTY_RANK,
    SEVERITY_RANK,
    URGENCY_RANK,
    Incident,
    Info,
)
from hub.model.task import Task, Why
from hub.region import Region


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one playbook matched an incident, and why (or why not)."""

    playbook: str
    version: int
    matched: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    tasks: tuple[Task, ...]
    verdicts: tuple[Verdict, ...]
    failures: tuple[tuple[str, str], ...] = field(default=())


def _holds(cond: Condition, info: Info, incident: Incident, why: list[str]) -> bool:
    """Evaluate one condition on one info block; appends the reason it held or failed."""
    if isinstance(cond, AllOf):
        return all(_holds(c, info, incident, why) for c in cond.all)
    if isinstance(cond, AnyOf):
        trail: list[str] = []
        ok = any(_holds(c, info, incident, trail) for c in cond.any)
        why.append(("any: " if ok else "none of: ") + "; ".join(trail))
        return ok
    if isinstance(cond, NotOf):
        trail = []
        ok = not _holds(cond.not_, info, incident, trail)
        why.append(f"not ({'; '.join(trail)})")
        return ok
    if isinstance(cond, CategoryIn):
        hit = sorted(set(info.category) & set(cond.category_in))
        verb = "in" if hit else "not in"
        why.append(f"category {'/'.join(info.category)} {verb} {'/'.join(cond.category_in)}")
        return bool(hit)
    if isinstance(cond, MsgTypeIn):
        ok = incident.msgType in cond.msg_type_in
        why.append(
            f"msgType {incident.msgType} {'in' if ok else 'not in'} {'/'.join(cond.msg_type_in)}"
        )
        return ok
    if isinstance(cond, SeverityAtLeast):
        ok = SEVERITY_RANK[info.severity] >= SEVERITY_RANK[cond.severity_at_least]
        why.append(f"severity {info.severity} {'>=' if ok else '<'} {cond.severity_at_least}")
        return ok
    if isinstance(cond, UrgencyAtLeast):
        ok = URGENCY_RANK[info.urgency] >= URGENCY_RANK[cond.urgency_at_least]
        why.append(f"urgency {info.urgency} {'>=' if ok else '<'} {cond.urgency_at_least}")
        return ok
    if isinstance(cond, CertaintyAtLeast):
        ok = CERTAINTY_RANK[info.certainty] >= CERTAINTY_RANK[cond.certainty_at_least]
        why.append(f"certainty {info.certainty} {'>=' if ok else '<'} {cond.certainty_at_least}")
        return ok
    raise TypeError(f"unhandled condition {type(cond).__name__}")


class _Area:
    """An incident's area, asked "which districts lie within N km?"; answers are memoised.

    A lone circle (the usual report) is answered from its centre without building a polygon.
    """

    def __init__(self, region: Region, incident: Incident) -> None:
        self._region = region
        self._polygons: list[list[tuple[float, float]]] = []
        self._circles: list[tuple[float, float, float]] = []
        self._geocodes: list[str] = []
        for info in incident.info:
            for area in info.area:
                self._polygons.extend(area.polygons())
                self._circles.extend(area.circles())
                self._geocodes.extend(g.value for g in area.geocode)
        self._geometry: BaseGeometry | None = None
        self._answers: dict[tuple[float, str], list[tuple[str, float]]] = {}

    @property
    def usable(self) -> bool:
        if len(self._circles) == 1 and not (self._polygons or self._geocodes):
            return True
        if not (self._polygons or self._circles or self._geocodes):
            return False
        if self._geometry is None:
            try:
                self._geometry = self._region.area_geometry(
                    self._polygons, self._circles, self._geocodes
                )
            except ValueError:
                return False
        return True

    def within_km(self, km: float, exclude: str) -> list[tuple[str, float]]:
        key = (km, exclude)
        found = self._answers.get(key)
        if found is None:
            if self._geometry is None and len(self._circles) == 1:
                lat, lon, radius = self._circles[0]
                found = self._region.within_km_of_circle(lat, lon, radius, km, exclude)
            else:
                assert self._geometry is not None, "ask .usable first"
                found = self._region.within_km(self._geometry, km, exclude)
            self._answers[key] = found
        return found


def _sent_date(incident: Incident) -> date:
    return datetime.fromisoformat(incident.sent).date()


def _plan_step(
    playbook: Playbook,
    step: Step,
    incident: Incident,
    info: Info,
    area: _Area,
    region: Region,
    conditions: list[str],
    thread: str,
    cause: str,
    reported_ms: int,
    lane: Lane,
) -> list[Task]:
    spec = step.task
    tasks = []
    on = _sent_date(incident)
    issued = format_time(reported_ms)
    due = format_time(reported_ms + duration_ms(spec.ack_deadline))
    for target, distance in area.within_km(spec.targets.within_km, exclude=incident.sender):
        binding = []
        for category in info.category:
            binding = region.agreements_binding(
                incident.sender, target, category, kind=spec.targets.agreement.kind, on=on
            )
            if binding:
                break
        if not binding:
            continue
        # The most specific authority wins: fewest parties, then the narrowest clause.
        agreement, clause = min(
            binding,
            key=lambda ac: (
                len(region.parties(ac[0].id)),
                len(ac[1].categories),
                ac[0].id,
                ac[1].id,
            ),
        )
        tasks.append(
            Task(
                id=derived_id(playbook.id, str(playbook.version), thread, step.id, target),
                incident=thread,
                sender=incident.sender,
                target=target,
                action_zh=spec.action.zh,
                action_en=spec.action.en,
                response=spec.response,
                issued=issued,
                due=due,
                lane=lane,
                why=Why(
                    playbook=playbook.id,
                    version=playbook.version,
                    step=step.id,
                    conditions=[
                        *conditions,
                        f"{target} within {spec.targets.within_km:g} km ({distance:.1f} km)",
                    ],
                    agreement=agreement.id,
                    clause=clause.id,
                    cause=cause,
                ),
            )
        )
    return tasks


def plan(
    incident: Incident,
    *,
    thread: str,
    cause: str,
    reported_ms: int,
    lane: Lane,
    playbooks: Sequence[Playbook],
    region: Region,
) -> Plan:
    """Which playbooks match ``incident`` and the tasks they give, sorted by task id."""
    verdicts: list[Verdict] = []
    failures: list[tuple[str, str]] = []
    tasks: dict[str, Task] = {}
    area = _Area(region, incident)
    for playbook in playbooks:
        try:
            verdict, planned = _evaluate(
                playbook, incident, area, region, thread, cause, reported_ms, lane
            )
        except Exception as exc:  # a playbook bug must not stop the others: reported as a failure
            failures.append((playbook.id, f"{type(exc).__name__}: {exc}"))
            continue
        verdicts.append(verdict)
        for task in planned:
            tasks.setdefault(task.id, task)
    return Plan(
        tasks=tuple(tasks[k] for k in sorted(tasks)),
        verdicts=tuple(verdicts),
        failures=tuple(failures),
    )


def _evaluate(
    playbook: Playbook,
    incident: Incident,
    area: _Area,
    region: Region,
    thread: str,
    cause: str,
    reported_ms: int,
    lane: Lane,
) -> tuple[Verdict, list[Task]]:
    matched_info: Info | None = None
    reasons: list[str] = []
    for info in incident.info:
        trail: list[str] = []
        if _holds(playbook.conditions, info, incident, trail):
            matched_info, reasons = info, trail
            break
        reasons = trail
    if matched_info is None:
        return Verdict(
            playbook.id, playbook.version, False, tuple(reasons or ["no info block"])
        ), []
    if not area.usable:
        return Verdict(
            playbook.id, playbook.version, False, (*reasons, "incident has no usable area")
        ), []
    planned: list[Task] = []
    for step in playbook.steps:
        planned.extend(
            _plan_step(
                playbook,
                step,
                incident,
                matched_info,
                area,
                region,
                reasons,
                thread,
                cause,
                reported_ms,
                lane,
            )
        )
    return Verdict(playbook.id, playbook.version, True, tuple(reasons)), planned
