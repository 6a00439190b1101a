"""A day of regional incidents from a seed (deterministic): for benchmarks and golden replays.

Each incident is one of the playbooks' own cases that plans tasks (``*.cases.yaml``), given a
new identifier, a sending time spread over the day and, sometimes, a follow-up (an Update that
raises the severity, or a Cancel). Targets answer as a ``Responder`` says, and a few duty rooms
fall silent for a while, so some deadlines pass and escalate. The same seed and size always
give the same day; a drill plays it, and its log is the recorded day.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hub.drills.scenario import Silence
from hub.drills.timeline import Action, Report, Responder, Timeline
from hub.engine.cases import incident_of, load_cases
from hub.errors import InvalidInput
from hub.model.envelope import parse_time
from hub.model.incident import Incident

DAY_MS = 86_400_000
CHINA = timezone(timedelta(hours=8))
DEFAULT_START = "2026-07-01T00:00:00+08:00"


def templates(playbooks: Path) -> list[Incident]:
    """The cases of every playbook that expect tasks, in file and case order."""
    out: list[Incident] = []
    for path in sorted(playbooks.glob("*.cases.yaml")):
        _, cases = load_cases(path)
        for index, case in enumerate(cases.cases, start=1):
            if case.expect.matched and case.expect.tasks:
                out.append(incident_of(case, index))
    if not out:
        raise InvalidInput(f"{playbooks}: no playbook case plans a task to build a day from")
    return out


def _cap_time(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).astimezone(CHINA).isoformat()


def generate(playbooks: Path, seed: int, incidents: int, *, start: str = DEFAULT_START) -> Timeline:
    """``incidents`` Alerts over one day from ``start``, with their follow-ups and answers."""
    if incidents < 1:
        raise InvalidInput(f"incidents {incidents}: a day needs at least one")
    rng = random.Random(seed)
    pool = templates(playbooks)
    start_ms = parse_time(start)
    times = sorted(rng.randrange(0, DAY_MS - 3_600_000) for _ in range(incidents))
    actions: list[Action] = []
    senders: set[str] = set()
    for n, offset in enumerate(times):
        base = rng.choice(pool)
        at = start_ms + offset + n  # distinct milliseconds: one order however it is sorted
        alert = _variant(base, f"day{seed}-{n:06d}", at, "Alert", None)
        senders.add(alert.sender)
        actions.append(Report(at, alert))
        roll = rng.random()
        if roll < 0.10:
            later = at + rng.randrange(600_000, 3_600_000)
            actions.append(Report(later, _variant(alert, f"{alert.identifier}.u", later,
                                                  "Update", alert)))  # fmt: skip
        elif roll < 0.14:
            later = at + rng.randrange(300_000, 3_600_000)
            actions.append(Report(later, _variant(alert, f"{alert.identifier}.c", later,
                                                  "Cancel", alert)))  # fmt: skip
    silences = []
    codes = sorted({t.sender for t in pool} | senders)
    for k in range(max(1, incidents // 200)):
        who = rng.choice(codes)
        begin = start_ms + rng.randrange(0, DAY_MS)
        until = begin + rng.randrange(1, 4) * 3_600_000
        silences.append(Silence(begin, f"silence-{k}", who, until))
    actions.sort(key=lambda a: a.at_ms)
    responder = Responder(ack_ms=4 * 60_000, accept_ms=11 * 60_000, silences=tuple(silences))
    return Timeline(f"day-{seed}-{incidents}", start_ms, tuple(actions), responder)


def _variant(
    base: Incident, identifier: str, at_ms: int, msg_type: str, first: Incident | None
) -> Incident:
    body: dict[str, Any] = base.model_dump(mode="json", exclude_none=True)
    body.update(identifier=identifier, sent=_cap_time(at_ms), msgType=msg_type, status="Exercise")
    if first is not None:
        body["references"] = f"{first.sender},{first.identifier},{first.sent}"
        if msg_type == "Update":
            for info in body.get("info", []):
                info["severity"] = "Extreme"
    return Incident.model_validate(body)
