"""Playbook cases: given incidents and the tasks they must give, run offline.

Beside each playbook ``NAME.yaml`` lies ``NAME.cases.yaml``: a list of cases, each an incident
(CAP as JSON, with defaults for the fields a case does not care about) and what the playbook must
do with it, judged against every playbook of the directory together (so a fallback standing
down is tested too). Running them is a dry run: pure planning, no database, no bus, nothing sent.
Each case is also planned through the hub's fast path and must agree with the explanation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.engine.evaluator import plan
from hub.engine.explain import Explanation, explain
from hub.engine.playbook import Playbook, load_playbooks, playbook_files
from hub.engine.source import Document, PlaybookError, Problem, read_yaml
from hub.model.envelope import derived_id, parse_time
from hub.model.incident import Incident, lane_for
from hub.region import Region, load_region

DEFAULT_SENT = "2026-07-01T08:30:00+08:00"
_INFO_DEFAULTS = {"language": "zh-CN", "urgency": "Immediate", "certainty": "Observed"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedTask(_Spec):
    step: str
    target: str
    agreement: str | None = None
    clause: str | None = None
    response: str | None = None


class ExpectedLadder(_Spec):
    step: str
    target: str
    escalate: str = Field(description="the escalate step whose rungs the task climbs")
    levels: list[str] = Field(min_length=1)


class Expect(_Spec):
    matched: bool
    tasks: list[ExpectedTask] = Field(default_factory=list)
    held: list[ExpectedTask] = Field(
        default_factory=list, description="tasks planned after an approval step, not yet issued"
    )
    approvals: list[str] | None = Field(
        default=None, description="the approval steps that ask a coordinator (checked if given)"
    )
    ladders: list[ExpectedLadder] | None = Field(
        default=None,
        description="the tasks that climb the playbook's own ladder (checked if given)",
    )
    failure: str | None = Field(default=None, description="text the published failure contains")


class Case(_Spec):
    name: str = Field(min_length=1)
    incident: dict[str, Any]
    thread: str | None = Field(default=None, description="default: the incident's own key")
    reported: str | None = Field(default=None, description="default: the incident's sent time")
    expect: Expect


class CasesFile(_Spec):
    playbook: str
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    line: int
    playbook: str
    name: str
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.file}:{self.line} {self.name}"
        return "\n".join([head, *(f"    {p}" for p in self.problems)])


def cases_path(playbook_path: Path) -> Path:
    return playbook_path.with_name(playbook_path.name.removesuffix(".yaml") + ".cases.yaml")


def incident_of(case: Case, index: int) -> Incident:
    """The case's incident with defaults filled in (identifier, sent, status, info fields)."""
    data: dict[str, Any] = {
        "identifier": f"case-{index + 1}",
        "sent": DEFAULT_SENT,
        "status": "Actual",
        "msgType": "Alert",
        "scope": "Public",
        **case.incident,
    }
    data["info"] = [{**_INFO_DEFAULTS, **info} for info in data.get("info", [])]
    return Incident.model_validate(data)


def run_case(
    case: Case, index: int, playbook: str, playbooks: Sequence[Playbook], region: Region
) -> list[str]:
    """What is wrong with one case (nothing: it passed)."""
    try:
        incident = incident_of(case, index)
    except ValidationError as exc:
        return [f"incident: {e['loc']}: {e['msg']}" for e in exc.errors()]
    thread = case.thread or incident.key
    cause = derived_id("incident.reported", incident.key)  # as the intake derives it
    reported = parse_time(case.reported or incident.sent)
    args: dict[str, Any] = {
        "thread": thread,
        "cause": cause,
        "reported_ms": reported,
        "lane": lane_for(incident.status),
        "playbooks": playbooks,
        "region": region,
    }
    explained = explain(incident, **args)
    fast = plan(incident, **args)
    problems = []
    if [t.id for t in fast.tasks] != [t.id for t in explained.plan.tasks]:
        problems.append("the hub's planner and the explanation disagree on the tasks")
    problems.extend(_compare(case.expect, playbook, explained))
    return problems


def _compare(expect: Expect, playbook: str, explained: Explanation) -> list[str]:
    report = next((r for r in explained.reports if r.playbook.id == playbook), None)
    if report is None:
        return [f"no playbook '{playbook}' in the directory"]
    problems = []
    if report.matched is not expect.matched:
        why = "; ".join(report.reasons) or report.failure or ""
        problems.append(f"expected matched={expect.matched}, got {report.matched}: {why}")
    tasks = [t for t in explained.plan.tasks if t.why.playbook == playbook]
    problems += _diff("tasks", expect.tasks, [(t.why.step, t.target, t) for t in tasks])
    held = [t for h in explained.plan.holds if h.playbook == playbook for t in h.tasks]
    problems += _diff("held tasks", expect.held, [(t.why.step, t.target, t) for t in held])
    holds = [h for h in explained.plan.holds if h.playbook == playbook]
    if expect.approvals is not None and [h.step for h in holds] != expect.approvals:
        problems.append(f"approvals {[h.step for h in holds]}, expected {expect.approvals}")
    if expect.ladders is not None:
        problems += _ladder_diff(expect.ladders, explained, playbook)
    failures = [r for p, r in explained.plan.failures if p == playbook]
    if expect.failure is None and failures:
        problems.append(f"unexpected failure: {'; '.join(failures)}")
    if expect.failure is not None and not any(expect.failure in f for f in failures):
        problems.append(
            f"expected a failure containing '{expect.failure}', got {failures or 'none'}"
        )
    return problems


def _ladder_diff(
    expected: Sequence[ExpectedLadder], explained: Explanation, playbook: str
) -> list[str]:
    tasks = {t.id: t for t in explained.plan.tasks if t.why.playbook == playbook}
    tasks.update((t.id, t) for h in explained.plan.holds if h.playbook == playbook for t in h.tasks)
    have = {
        (tasks[x.task].why.step, tasks[x.task].target): (x.step, [r[0] for r in x.rungs])
        for x in explained.plan.ladders
        if x.source == "playbook" and x.task in tasks
    }
    want = {(e.step, e.target): (e.escalate, e.levels) for e in expected}
    if have == want:
        return []
    got = sorted(f"{s}→{t}: {e} {lv}" for (s, t), (e, lv) in have.items())
    wanted = sorted(f"{s}→{t}: {e} {lv}" for (s, t), (e, lv) in want.items())
    return [f"own ladders {got}, expected {wanted}"]


def _diff(
    what: str, expected: Sequence[ExpectedTask], got: Sequence[tuple[str, str, Any]]
) -> list[str]:
    want = {(e.step, e.target): e for e in expected}
    have = {(step, target): task for step, target, task in got}
    problems = []
    if missing := sorted(set(want) - set(have)):
        problems.append(f"{what} missing: {', '.join(f'{s}→{t}' for s, t in missing)}")
    if extra := sorted(set(have) - set(want)):
        problems.append(f"{what} not expected: {', '.join(f'{s}→{t}' for s, t in extra)}")
    for key in sorted(set(want) & set(have)):
        e, task = want[key], have[key]
        for name, actual in (
            ("agreement", task.why.agreement),
            ("clause", task.why.clause),
            ("response", task.response),
        ):
            wanted = getattr(e, name)
            if wanted is not None and wanted != actual:
                problems.append(f"{key[0]}→{key[1]}: {name} {actual}, expected {wanted}")
    return problems


def load_cases(path: Path) -> tuple[Document, CasesFile]:
    doc = read_yaml(path)
    try:
        return doc, CasesFile.model_validate(doc.data)
    except ValidationError as exc:
        problems = [doc.problem(tuple(e["loc"]), str(e["msg"])) for e in exc.errors()]
        raise PlaybookError(problems) from None


def run_directory(directory: Path, region: Region | None = None) -> list[CaseResult]:
    """Every case of every playbook in ``directory``; a playbook without cases fails."""
    the_region = region or load_region()
    playbooks = load_playbooks(directory, the_region)
    by_source: Mapping[str, Playbook] = {p.source: p for p in playbooks}
    results: list[CaseResult] = []
    for path in playbook_files(directory):
        playbook = by_source[str(path)]
        cases = cases_path(path)
        if not cases.exists():
            message = f"no cases: write {cases.name} beside it"
            results.append(CaseResult(str(path), 1, playbook.id, "(no cases)", (message,)))
            continue
        try:
            doc, parsed = load_cases(cases)
        except PlaybookError as exc:
            results.extend(_broken(exc.problems, playbook.id))
            continue
        if parsed.playbook != playbook.id:
            message = f"names playbook '{parsed.playbook}', but beside '{playbook.id}'"
            results.append(
                CaseResult(
                    str(cases), doc.line_of(("playbook",)), playbook.id, "(file)", (message,)
                )
            )
            continue
        for i, case in enumerate(parsed.cases):
            problems = run_case(case, i, playbook.id, playbooks, the_region)
            line = doc.line_of(("cases", i))
            results.append(CaseResult(str(cases), line, playbook.id, case.name, tuple(problems)))
    return results


def _broken(problems: Sequence[Problem], playbook: str) -> list[CaseResult]:
    return [
        CaseResult(p.file, p.line, playbook, "(file)", (f"{p.where}: {p.message}",))
        for p in problems
    ]
