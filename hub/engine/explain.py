"""Why each playbook matched an incident or did not, and what each matched one asked for.

``explain`` evaluates every playbook in full (no index, no short-circuit), records each test's
reason, the targets an agreement did not authorise, the steps skipped and any failure, and plans
exactly what :func:`hub.engine.evaluator.plan` plans (a test holds them to it). It backs
``liandong playbooks explain`` and ``GET /api/v1/incidents/{identifier}/explain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.engine.conditions import Trace, trace
from hub.engine.evaluator import Book, Collected, Plan, book_of
from hub.engine.operators import Facts
from hub.engine.playbook import Playbook
from hub.engine.spatial import Area
from hub.engine.steps import Occasion, Outcome, run_steps
from hub.model.envelope import Lane
from hub.model.incident import Incident
from hub.region import Region


@dataclass(frozen=True, slots=True)
class Report:
    """One playbook's verdict on one incident."""

    playbook: Playbook
    matched: bool
    traces: tuple[Trace, ...]
    reasons: tuple[str, ...]
    outcome: Outcome | None = None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    incident: Incident
    thread: str
    cause: str
    reports: tuple[Report, ...]
    plan: Plan

    def to_json(self) -> dict[str, Any]:
        """The explanation as JSON-ready data (for ``--json`` and the API)."""
        return {
            "incident": self.incident.key,
            "thread": self.thread,
            "cause": self.cause,
            "playbooks": [_report_json(r) for r in self.reports],
            "tasks": [t.model_dump(mode="json") for t in self.plan.tasks],
            "failures": [{"playbook": p, "reason": r} for p, r in self.plan.failures],
        }

    def lines(self) -> list[str]:
        """The explanation for people, one line each."""
        matched = [r for r in self.reports if r.matched]
        out = [
            f"incident {self.incident.key} (thread {self.thread}): "
            f"{len(matched)} of {len(self.reports)} playbooks matched, "
            f"{len(self.plan.tasks)} tasks"
        ]
        for report in self.reports:
            out.append("")
            out.extend(_report_lines(report))
        return out


def explain(
    incident: Incident,
    *,
    thread: str,
    cause: str,
    reported_ms: int,
    lane: Lane,
    playbooks: Sequence[Playbook] | Book,
    region: Region,
) -> Explanation:
    """Evaluate every playbook on ``incident`` and say why each matched or did not."""
    book = book_of(playbooks)
    area = Area(region, incident)
    at = Occasion(incident, thread, cause, reported_ms, lane, area)
    out = Collected()
    reports = [_evaluate(p, at, out) for p in book.playbooks if not p.fallback]
    handled = [r.playbook.id for r in reports if r.matched or r.failure]
    for playbook in (p for p in book.playbooks if p.fallback):
        if not handled:
            reports.append(_evaluate(playbook, at, out))
            continue
        stand_down = f"fallback stands down: handled by {', '.join(handled)}"
        reports.append(Report(playbook, False, (), (stand_down,)))
    return Explanation(incident, thread, cause, tuple(reports), out.plan())


def _evaluate(playbook: Playbook, at: Occasion, out: Collected) -> Report:
    incident = at.incident
    try:
        traces = tuple(
            trace(playbook.conditions, Facts(incident, info, at.area)) for info in incident.info
        )
        hit = next((i for i, t in enumerate(traces) if t.ok), None)
        if hit is None:
            reasons = tuple(line for t in traces for line in t.lines()) or ("no info block",)
            return Report(playbook, False, traces, reasons)
        held = traces[hit].held()
        outcome = run_steps(playbook, incident.info[hit], held, at)
    except Exception as exc:  # reported as the runner would publish it
        out.fail(playbook, exc)
        return Report(playbook, False, (), (), failure=f"{type(exc).__name__}: {exc}")
    out.add(playbook, held, outcome)
    return Report(playbook, True, traces, tuple(held), outcome)


def _report_json(report: Report) -> dict[str, Any]:
    p = report.playbook
    data: dict[str, Any] = {
        "id": p.id,
        "version": p.version,
        "title": {"zh": p.spec.title.zh, "en": p.spec.title.en},
        "fallback": p.fallback,
        "matched": report.matched,
        "reasons": list(report.reasons),
        "conditions": [t.lines() for t in report.traces],
        "failure": report.failure,
    }
    outcome = report.outcome
    if outcome is not None:
        data["tasks"] = [
            {"id": t.id, "step": t.why.step, "target": t.target, "agreement": t.why.agreement,
             "clause": t.why.clause, "due": t.due}
            for t in outcome.tasks
        ]  # fmt: skip
        data["refused"] = [
            {"step": s, "target": r.code, "found": r.note, "reason": r.reason}
            for s, r in outcome.refused
        ]
        data["skipped"] = [{"step": s, "reason": why} for s, why in outcome.skipped]
        data["notes"] = [{"step": s, "note": n} for s, n in outcome.notes]
        data["held"] = [
            {"id": h.id, "step": h.step, "approver": h.approver, "expires": h.expires,
             "on_expiry": h.on_expiry, "tasks": [t.id for t in h.tasks]}
            for h in outcome.holds
        ]  # fmt: skip
        data["ladders"] = [
            {
                "task": x.task,
                "step": x.step,
                "source": x.source,
                "rungs": [list(r) for r in x.rungs],
            }
            for x in outcome.ladders
        ]
    return data


def _report_lines(report: Report) -> list[str]:
    p = report.playbook
    head = "MATCHED" if report.matched else ("FAILED" if report.failure else "not matched")
    kind = " (fallback)" if p.fallback else ""
    out = [f"{head}: {p.id} v{p.version}{kind} — {p.spec.title.zh} / {p.spec.title.en}"]
    if report.failure:
        out.append(f"  evaluation failed: {report.failure}")
        return out
    if not report.traces:
        out.extend(f"  {r}" for r in report.reasons)
    for i, t in enumerate(report.traces):
        if len(report.traces) > 1:
            out.append(f"  info block {i}:")
        out.extend(f"  {line}" for line in t.lines())
    outcome = report.outcome
    if outcome is None:
        return out
    for task in outcome.tasks:
        why = task.why
        out.append(
            f"  → task {why.step} → {task.target} ({why.agreement} clause {why.clause}, "
            f"due {task.due}): {task.action_zh}"
        )
    for step, refused in outcome.refused:
        out.append(f"  ✗ {step} → {refused.code}: {refused.reason}")
    for step, why_not in outcome.skipped:
        out.append(f"  – step {step} skipped: {why_not}")
    for step, note in outcome.notes:
        out.append(f"  – step {step}: {note}")
    for hold in outcome.holds:
        targets = ", ".join(f"{t.why.step}→{t.target}" for t in hold.tasks) or "nothing"
        out.append(
            f"  ⏸ approval {hold.step} by {hold.approver} (until {hold.expires}, then "
            f"{hold.on_expiry}) holds: {targets}"
        )
    for ladder in outcome.ladders:
        rungs = ", ".join(f"{level} at {when}" for level, when in ladder.rungs)
        out.append(f"  ↑ {ladder.step}: task {ladder.task[:8]} climbs ({ladder.source}): {rungs}")
    return out
