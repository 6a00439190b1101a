"""Exercise scenarios: the shipped ones are valid and realistic; faults name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.drills.scenario import Decline, Silence, TimedIncident, expand
from hub.drills.scenario_file import ScenarioError, load_scenario
from hub.model.incident import MsgType, Status
from hub.region import load_region

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "drills").glob("*.yaml"))

HEAD = """\
id: t
title: {zh: 测试, en: test}
start: "2026-06-18T09:00:00+08:00"
injects:
"""
ALERT = """\
  - id: spill
    at: PT0M
    jurisdiction: "320509"
    incident:
      event: 太浦河泄漏
      category: [Env]
      urgency: Immediate
      severity: Severe
      certainty: Observed
      area:
        - desc: 平望
          circle: ["30.972,120.645 2"]
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return load_scenario(path, load_region())


def _problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        _load(tmp_path, text)
    return str(caught.value)


def test_two_region_scenarios_ship() -> None:
    names = {p.name for p in SHIPPED}
    assert {"taipu-pollution-chain.yaml", "typhoon-zhoushan-ningbo.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenario_expands_to_exercise_incidents_inside_their_senders(path: Path) -> None:
    region = load_region()
    scenario = load_scenario(path, region)
    timed = expand(scenario)
    assert timed == expand(scenario)  # pure and deterministic
    assert [t.offset_ms for t in timed] == sorted(t.offset_ms for t in timed)
    incidents = [t for t in timed if isinstance(t, TimedIncident)]
    kinds = {type(t) for t in timed}
    assert kinds == {TimedIncident, Silence, Decline}
    assert {i.incident.msgType for i in incidents} >= {MsgType.ALERT, MsgType.UPDATE}
    for item in incidents:
        incident = item.incident
        assert incident.status is Status.EXERCISE
        assert incident.sender == item.jurisdiction
        for info in incident.info:
            for area in info.area:
                geometry = region.area_geometry(area.polygons(), area.circles())
                # Real places: each area touches the reporting jurisdiction.
                assert region.distance_km(incident.sender, geometry) == 0.0, area.areaDesc


def test_updates_cancels_and_declines_thread_to_the_alert(tmp_path: Path) -> None:
    scenario = _load(
        tmp_path,
        HEAD
        + ALERT
        + """\
  - id: worse
    at: PT20M
    jurisdiction: "320509"
    update: {of: spill, severity: Extreme, note: 扩大}
  - id: no
    at: PT10M
    jurisdiction: "330421"
    decline: {of: spill, reason: 无船可派}
  - id: quiet
    at: PT5M
    jurisdiction: "310118"
    silence: PT30M
  - id: off
    at: PT1H
    jurisdiction: "320509"
    cancel: {of: spill}
""",
    )
    alert, quiet, no, worse, off = expand(scenario)  # type: ignore[arg-type]
    assert isinstance(alert, TimedIncident) and isinstance(worse, TimedIncident)
    assert alert.incident.identifier == "t.spill"
    assert alert.incident.sent == "2026-06-18T09:00:00+08:00"
    assert isinstance(quiet, Silence) and (quiet.offset_ms, quiet.until_ms) == (300_000, 2_100_000)
    assert isinstance(no, Decline) and no.incident == "320509,t.spill" and no.reason == "无船可派"
    assert worse.incident.msgType is MsgType.UPDATE
    assert worse.incident.references == "320509,t.spill,2026-06-18T09:00:00+08:00"
    assert worse.incident.info[0].severity == "Extreme" and worse.incident.note == "扩大"
    assert worse.incident.sent == "2026-06-18T09:20:00+08:00"
    assert isinstance(off, TimedIncident) and off.incident.msgType is MsgType.CANCEL
    assert off.incident.info[0].severity == "Extreme"  # carries the latest version's info
    moved = expand(scenario, start="2026-07-01T00:00:00+00:00")  # type: ignore[arg-type]
    assert isinstance(moved[0], TimedIncident)
    assert moved[0].incident.sent == "2026-07-01T00:00:00+00:00"


def test_canonical_incident_is_forced_to_exercise(tmp_path: Path) -> None:
    scenario = _load(
        tmp_path,
        HEAD
        + """\
  - id: cap
    at: PT1M
    jurisdiction: "310118"
    incident:
      status: Actual
      scope: Public
      info:
        - category: [Env]
          event: 金泽取水口异常
          urgency: Immediate
          severity: Severe
          certainty: Likely
""",
    )
    (item,) = expand(scenario)  # type: ignore[arg-type]
    assert isinstance(item, TimedIncident)
    assert item.incident.status is Status.EXERCISE and item.incident.sender == "310118"


@pytest.mark.parametrize(
    ("tail", "line", "message"),
    [
        (
            '  - id: up\n    at: PT1M\n    jurisdiction: "320509"\n    update: {of: nothing}\n',
            20,
            "'nothing' is not an incident inject",
        ),
        (
            '  - id: up\n    at: 5 minutes\n    jurisdiction: "320509"\n    silence: PT1M\n',
            18,
            "not an ISO 8601 duration",
        ),
        (
            '  - id: spill\n    at: PT1M\n    jurisdiction: "320509"\n    silence: PT1M\n',
            17,
            "'spill' is used at line 5",
        ),
        (
            '  - id: x\n    at: PT1M\n    jurisdiction: "999999"\n    silence: PT1M\n',
            19,
            "'999999' is not a jurisdiction",
        ),
        (
            "  - id: x\n    at: PT1M\n    jurisdiction: 320509\n    silence: PT1M\n",
            19,
            "valid string",
        ),
        ('  - id: x\n    at: PT1M\n    jurisdiction: "320509"\n', 17, "exactly one of"),
        (
            '  - id: x\n    at: PT1M\n    jurisdiction: "310118"\n    cancel: {of: spill}\n',
            20,
            "only 320509",
        ),
        (
            '  - id: x\n    at: PT1M\n    jurisdiction: "320509"\n    decline: {of: spill, '
            "reason: r}\n",
            20,
            "gets no tasks to decline",
        ),
    ],
)
def test_faults_name_file_and_line(tmp_path: Path, tail: str, line: int, message: str) -> None:
    problem = _problem(tmp_path, HEAD + ALERT + tail)
    assert problem.startswith(f"{tmp_path / 's.yaml'}:{line}:"), problem
    assert message in problem


def test_an_update_cannot_refer_to_a_later_incident(tmp_path: Path) -> None:
    early = '  - id: up\n    at: PT0S\n    jurisdiction: "320509"\n    update: {of: spill}\n'
    problem = _problem(tmp_path, HEAD + ALERT.replace("PT0M", "PT5M") + early)
    assert ":20:" in problem and "'spill' is not an incident inject at or before PT0S" in problem


def test_invalid_cap_in_a_compact_incident_names_its_line(tmp_path: Path) -> None:
    bad = ALERT.replace('"30.972,120.645 2"', '"91,120.645 2"')
    problem = _problem(tmp_path, HEAD + bad)
    assert ":8:" in problem and "outside WGS-84" in problem
