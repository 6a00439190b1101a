"""What a drill plays: a recording or a scenario turned into timed actions (pure).

From a recording, the inputs are taken and the hub's own outputs are left for the drill hub to
produce again: every ``incident.reported`` becomes a report through the intake (forced to CAP
status Exercise), every answer a target gave (acknowledged, accepted, declined, done) becomes
that target's answer to its open tasks of that incident at the same moment, and every stock
request (held or refused) becomes the same request to the drill's copy of the registry, with
owners' approvals and releases. Tasks, escalations, cancellations, hand-overs to the next
candidate, hold expiries and automatic commitments are the hub's: the drill makes them anew.

From a scenario, the incidents are its injects; targets answer as the ``Responder`` says
(acknowledge, then accept, after fixed delays) unless an inject keeps them silent or declines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hub.drills import recording
from hub.drills.scenario import Scenario, Silence, TimedIncident, expand
from hub.errors import InvalidInput
from hub.model.envelope import parse_time
from hub.model.incident import Incident, Status
from hub.model.task import TaskState

ANSWERS = {
    "task.acknowledged": TaskState.ACKNOWLEDGED,
    "task.accepted": TaskState.ACCEPTED,
    "task.declined": TaskState.DECLINED,
    "task.done": TaskState.DONE,
}


@dataclass(frozen=True, slots=True)
class Report:
    at_ms: int
    incident: Incident


@dataclass(frozen=True, slots=True)
class Answer:
    """``target`` answers its open tasks of incident ``thread`` (those that can take it)."""

    at_ms: int
    thread: str
    target: str
    state: TaskState
    by: str
    reason: str | None = None
    task: str | None = None
    """The task answered, when known (recordings); else the target's open tasks of ``thread``."""


@dataclass(frozen=True, slots=True)
class StockAsk:
    at_ms: int
    request: str
    depot: str
    item: str
    quantity: int
    partner: str
    agreement: str
    actor: str
    clause: str | None = None


@dataclass(frozen=True, slots=True)
class StockMove:
    """The depot owner approves (``commit``) or releases a hold."""

    at_ms: int
    kind: str  # "commit" | "release"
    hold: str
    actor: str
    reason: str | None = None


Action = Report | Answer | StockAsk | StockMove


@dataclass(frozen=True, slots=True)
class Responder:
    """How scenario targets answer their tasks: acknowledge after ``ack_ms`` and accept after
    ``accept_ms`` from issue, unless silent then (they answer when the silence ends)."""

    ack_ms: int = 3 * 60_000
    accept_ms: int = 8 * 60_000
    silences: tuple[Silence, ...] = ()
    declining: frozenset[tuple[str, str]] = frozenset()
    """(thread, jurisdiction) pairs a decline inject answers: the responder leaves them be."""

    def answer_time(self, jurisdiction: str, at_ms: int) -> int:
        """When ``jurisdiction`` answers something it would answer at ``at_ms``."""
        moved = True
        while moved:
            moved = False
            for s in self.silences:
                if s.jurisdiction == jurisdiction and s.offset_ms <= at_ms < s.until_ms:
                    at_ms, moved = s.until_ms, True
        return at_ms


@dataclass(frozen=True, slots=True)
class Timeline:
    """Actions at offsets from ``start_ms`` (times are absolute ms; offsets keep file order)."""

    name: str
    start_ms: int
    actions: tuple[Action, ...]
    responder: Responder | None = None

    @property
    def end_ms(self) -> int:
        return max([self.start_ms, *(a.at_ms for a in self.actions)])


def from_recording(name: str, records: list[recording.Record]) -> Timeline:
    """The inputs of a recording, in the order they were appended."""
    actions: list[Action] = []
    for r in sorted(records, key=lambda r: r.offset):
        try:
            action = _action(r)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise InvalidInput(f"{name}: record at offset {r.offset} ({r.topic}): {exc}") from None
        if action is not None:
            actions.append(action)
    if not actions:
        raise InvalidInput(f"{name}: the recording holds no incident, answer or stock request")
    start = min(a.at_ms for a in actions)
    return Timeline(name, start, tuple(actions))


def _action(r: recording.Record) -> Action | None:
    env = r.envelope
    kind, data = env.get("type"), env.get("data") or {}
    at = r.appended_ms
    if kind == "incident.reported":
        body: dict[str, Any] = dict(data["incident"])
        if body.get("status") not in (Status.ACTUAL.value, Status.EXERCISE.value):
            return None  # Test, System and Draft were never acted on
        body["status"] = Status.EXERCISE.value
        return Report(at, Incident.model_validate(body))
    if kind in ANSWERS and data.get("by") != "hub":
        state = ANSWERS[kind]
        return Answer(
            at, data["incident"], data["target"], state, data["by"], data.get("reason"),
            data.get("task"),
        )  # fmt: skip
    if kind == "stock.held" or kind == "stock.refused":
        return StockAsk(
            at, data["request"], data["depot"], data["item"], int(data["quantity"]),
            data["partner"], data.get("agreement") or "", data.get("actor") or data["partner"],
            data.get("clause"),
        )  # fmt: skip
    if kind == "stock.committed" and data.get("actor") != "policy" and data.get("hold"):
        return StockMove(at, "commit", data["hold"], data["actor"])
    if kind == "stock.released" and data.get("hold"):
        return StockMove(at, "release", data["hold"], data["actor"], data.get("reason"))
    return None


def from_scenario(scenario: Scenario, responder: Responder | None = None) -> Timeline:
    """A scenario's injects; ``responder`` (default delays) answers for the targets."""
    actions: list[Action] = []
    silences: list[Silence] = []
    declining: set[tuple[str, str]] = set()
    start = parse_time(scenario.start)
    for t in expand(scenario):
        at = start + t.offset_ms
        if isinstance(t, TimedIncident):
            actions.append(Report(at, t.incident))
        elif isinstance(t, Silence):
            silences.append(Silence(at, t.inject, t.jurisdiction, start + t.until_ms))
        else:
            declining.add((t.incident, t.jurisdiction))
            actions.append(Answer(at, t.incident, t.jurisdiction, TaskState.DECLINED,
                                  t.jurisdiction, t.reason))  # fmt: skip
    base = responder or Responder()
    chosen = Responder(base.ack_ms, base.accept_ms, tuple(silences), frozenset(declining))
    return Timeline(scenario.id, start, tuple(actions), chosen)


def load(path: Path) -> Timeline:
    """A scenario (``.yaml``/``.yml``) or a recording (JSONL) from a file."""
    if path.suffix in (".yaml", ".yml"):
        from hub.drills.scenario_file import ScenarioError, load_scenario
        from hub.region import load_region

        try:
            return from_scenario(load_scenario(path, load_region()))
        except ScenarioError as exc:
            raise InvalidInput(str(exc)) from None
    return from_recording(path.name, recording.read(path))
