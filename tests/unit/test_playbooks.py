"""The playbook format, its loader and checker, and the pure planner (no hub, no database)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML
from typer.testing import CliRunner

from hub.engine.cli_playbooks import app as playbooks_cli
from hub.engine.duration import duration_ms
from hub.engine.evaluator import Plan, plan
from hub.engine.explain import explain
from hub.engine.planning import own_ladders
from hub.engine.playbook import Playbook, load_playbook, load_playbooks
from hub.engine.schema import SCHEMA_PATH, rendered
from hub.engine.source import PlaybookError
from hub.errors import InvalidInput
from hub.model.envelope import Lane, derived_id, parse_time
from hub.model.incident import Incident
from hub.region import Region, load_region
from tests.factories import cap

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
REPORTED = parse_time("2026-07-01T08:31:00+08:00")
WATER = (PLAYBOOKS / "cross-border-water-pollution.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


@pytest.fixture(scope="module")
def playbooks(region: Region) -> list[Playbook]:
    return load_playbooks(PLAYBOOKS, region)


def _run(message: dict[str, Any], playbooks: list[Playbook], region: Region, **kw: Any) -> Plan:
    incident = Incident.model_validate(message)
    args: dict[str, Any] = {
        "thread": incident.key,
        "cause": "cause-id",
        "reported_ms": REPORTED,
        "lane": Lane.ACTUAL,
        "playbooks": playbooks,
        "region": region,
        **kw,
    }
    return plan(incident, **args)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "zones").mkdir(exist_ok=True)
    for zone in (PLAYBOOKS / "zones").glob("*.geojson"):
        (tmp_path / "zones" / zone.name).write_bytes(zone.read_bytes())
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_durations() -> None:
    assert duration_ms("PT30M") == 1_800_000
    assert duration_ms("P1DT2H") == 93_600_000
    assert duration_ms("PT0.5S") == 500
    for bad in ("30M", "P", "PT", "P1Y", "PT-5M"):
        with pytest.raises(ValueError, match="ISO 8601"):
            duration_ms(bad)


def test_the_region_has_its_eight_playbooks_and_the_fallback(playbooks: list[Playbook]) -> None:
    assert [p.id for p in playbooks] == [
        "border-severe-fallback",
        "cross-border-water-pollution",
        "dianshan-lake-water-rescue",
        "hazmat-expressway-accident",
        "industrial-park-fire",
        "infectious-disease-joint-control",
        "taihu-basin-flooding",
        "typhoon-storm-surge",
        "water-town-crowd-surge",
    ]
    assert [p.id for p in playbooks if p.fallback] == ["border-severe-fallback"]
    for p in playbooks:  # bilingual, owned, with a cases file beside it
        assert p.spec.title.zh and p.spec.title.en and p.spec.owners
        assert (PLAYBOOKS / f"{p.id}.cases.yaml").exists()
    assert pickle.loads(pickle.dumps(playbooks))[1].id == "cross-border-water-pollution"


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (("version: 2\n", "version: 2\nversion: 3\n"), 10, 'duplicate key "version"'),
        (("        within_km: 10\n", "        within_kms: 10\n"), 31, "within_kms: Extra inputs"),
        (("ack_deadline: PT30M", "ack_deadline: 30 minutes"), 37, "ISO 8601"),
        (("severity_at_least: Severe", "severity_at_least: Serious"), 22, "'Serious' is not"),
        (("in_zone: taipu-river-corridor\n", "in_zone: taipu-creek\n"), 25, "unknown zone"),
        (("- category_in: [Env]", "- category_is: [Env]"), 21, "unknown operator 'category_is'"),
        (("{item: oil-boom,", "{item: oil-booms,"), 61, "unknown item 'oil-booms'"),
        (
            ("steps: [protect-intakes,", "steps: [protect-intake,"),
            70,
            "protect-intake: not earlier",
        ),
        (('jurisdictions: ["310118",', 'jurisdictions: ["319999",'), 45, "'319999' is not a"),
    ],
)
def test_every_fault_names_its_file_and_line(
    tmp_path: Path, region: Region, change: tuple[str, str], line: int, message: str
) -> None:
    assert change[0] in WATER
    path = _write(tmp_path, "broken.yaml", WATER.replace(change[0], change[1], 1))
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path, region=region)
    problem = caught.value.problems[0]
    assert isinstance(caught.value, InvalidInput)
    assert (problem.file, problem.line) == (str(path), line), str(caught.value)
    assert message in str(problem)


def test_conditions_must_say_how_they_combine(tmp_path: Path, region: Region) -> None:
    text = WATER.replace("conditions:\n  all:\n", "conditions:\n  list:\n", 1)
    with pytest.raises(PlaybookError, match="all:, any: or not:"):
        load_playbook(_write(tmp_path, "x.yaml", text), region=region)


def test_duplicate_ids_across_files_are_an_error(tmp_path: Path, region: Region) -> None:
    _write(tmp_path, "a.yaml", WATER)
    _write(tmp_path, "b.yaml", WATER)
    with pytest.raises(PlaybookError, match="already used by"):
        load_playbooks(tmp_path, region)


def test_check_reports_file_line_and_exit_status(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(playbooks_cli, ["check", str(PLAYBOOKS)])
    assert ok.exit_code == 0, ok.output
    assert "9 playbooks" in ok.output
    _write(tmp_path, "w.yaml", WATER.replace("version: 2\n", "version: 2\nversion: 3\n"))
    bad = runner.invoke(playbooks_cli, ["check", str(tmp_path)])
    assert bad.exit_code == 1
    assert f"{tmp_path / 'w.yaml'}:10: found duplicate key" in bad.output
    assert "no cases: write w.cases.yaml" in bad.output


def test_the_schema_file_is_generated_and_agrees_with_the_loader() -> None:
    assert SCHEMA_PATH.read_bytes() == rendered(), "run: liandong playbooks schema > " + str(
        SCHEMA_PATH
    )
    validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    yaml = YAML(typ="safe", pure=True)
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        if not path.name.endswith(".cases.yaml"):
            assert not list(validator.iter_errors(yaml.load(path.read_text("utf-8")))), path
    for old, new in [
        ("severity_at_least: Severe", "severity_at_least: Serious"),
        ("- category_in: [Env]", "- category_is: [Env]"),
        ("mode: once_per_incident", "mode: twice"),
        ("{item: oil-boom,", "{item: oil-booms,"),
    ]:
        assert list(validator.iter_errors(yaml.load(WATER.replace(old, new, 1)))), new


def test_jinze_spill_gives_tasks_to_wujiang_kunshan_and_jiashan(
    playbooks: list[Playbook], region: Region
) -> None:
    result = _run(cap("jinze-1"), playbooks, region)
    assert {t.target for t in result.tasks} == {"320509", "320583", "330421"}
    wujiang = next(t for t in result.tasks if t.target == "320509")
    # The demonstration-zone agreement is the most specific authority for Qingpu–Wujiang.
    assert (wujiang.why.agreement, wujiang.why.clause) == ("yrd-demo-zone-emergency-linkage", "4")
    assert wujiang.why.playbook == "cross-border-water-pollution" and wujiang.why.version == 2
    assert wujiang.why.step == "protect-intakes" and wujiang.why.cause == "cause-id"
    assert "category Env in Env" in wujiang.why.conditions
    assert any("taipu-river-corridor" in c for c in wujiang.why.conditions)
    assert wujiang.why.conditions[-1] == "320509 within 10 km (0.0 km)"
    assert wujiang.due == "2026-07-01T01:01:00.000Z"  # reported + PT30M
    assert [v.playbook for v in result.verdicts] == ["cross-border-water-pollution"]
    assert result.ladders == ()  # the agreement's ladder: the escalator climbs it, nothing to do
    assert result.holds == () and result.failures == ()
    incident = Incident.model_validate(cap("jinze-1"))
    told = explain(
        incident,
        thread=incident.key,
        cause="cause-id",
        reported_ms=REPORTED,
        lane=Lane.ACTUAL,
        playbooks=playbooks,
        region=region,
    )
    assert told.plan.tasks == result.tasks
    ladder = next(x for x in told.plan.ladders if x.task == wujiang.id)
    assert ladder.source == "agreement"
    assert ladder.rungs[0] == ("duty_liaison", wujiang.due)  # then as the agreement says
    assert ladder.rungs[1] == ("district_command", "2026-07-01T01:16:00.000Z")


def test_an_extreme_taipu_spill_requests_resources_under_resources_clauses(
    playbooks: list[Playbook], region: Region
) -> None:
    result = _run(cap("jinze-x", severity="Extreme"), playbooks, region)
    asked = {r.target: r.items for r in result.requests}
    assert asked["320509"] == (
        ("oil-boom", 2000, "metres"),
        ("absorbent-pad", 5000, "pads"),
        ("activated-carbon", 20, "tonnes"),
    )
    for task in result.tasks:
        if task.why.step == "booms-and-absorbents":
            assert task.response == "accept" and "围油栏 2000 米" in task.action_zh
            clause = next(
                c for c in region.agreement(task.why.agreement).clauses if c.id == task.why.clause
            )
            assert clause.kind == "resources"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"severity": "Moderate"}, "severity Moderate < Severe"),
        ({"category": "Fire"}, "category Fire not in Env"),
    ],
)
def test_what_does_not_match_says_why(
    change: dict[str, str], reason: str, playbooks: list[Playbook], region: Region
) -> None:
    incident = Incident.model_validate(cap("jinze-2", **change))  # type: ignore[arg-type]
    told = explain(
        incident,
        thread=incident.key,
        cause="c",
        reported_ms=REPORTED,
        lane=Lane.ACTUAL,
        playbooks=playbooks,
        region=region,
    )
    water = next(r for r in told.reports if r.playbook.id == "cross-border-water-pollution")
    assert not water.matched
    assert any(reason in r for r in water.reasons)
    assert "cross-border-water-pollution" not in {t.why.playbook for t in told.plan.tasks}


def test_no_agreement_no_task_and_explain_says_which_agreement_is_missing(
    playbooks: list[Playbook], region: Region
) -> None:
    # Jinshan and Songjiang share no joint-response clause: Songjiang is near, but not asked.
    message = cap("jinshan", "310116", circle="30.80,121.20 3")
    result = _run(message, playbooks, region)
    assert {t.target for t in result.tasks} == {"330482"}
    incident = Incident.model_validate(message)
    told = explain(
        incident,
        thread=incident.key,
        cause="c",
        reported_ms=REPORTED,
        lane=Lane.ACTUAL,
        playbooks=playbooks,
        region=region,
    )
    water = next(r for r in told.reports if r.playbook.id == "cross-border-water-pollution")
    assert water.outcome is not None
    refused = {r.code: r.reason for _, r in water.outcome.refused}
    assert "joint_response clause" in refused["310117"]
    assert any("310117" in line and "no agreement" in line for line in told.lines())


def test_the_fallback_acts_only_when_no_other_playbook_matched(
    playbooks: list[Playbook], region: Region
) -> None:
    fire = _run(
        cap("fire", "320509", category="Fire", severity="Extreme", circle="30.98,120.85 2"),
        playbooks,
        region,
    )
    assert {t.why.playbook for t in fire.tasks} == {"border-severe-fallback"}
    spill = _run(cap("spill"), playbooks, region)
    assert "border-severe-fallback" not in {t.why.playbook for t in spill.tasks}


def test_modes_decide_whether_an_update_plans_new_tasks(
    playbooks: list[Playbook], region: Region
) -> None:
    alert = _run(cap("a-1"), playbooks, region)
    update = _run(
        cap("a-2", msg_type="Update", references="310118,a-1,2026-07-01T08:30:00+08:00"),
        playbooks,
        region,
        thread="310118,a-1",
    )
    # once_per_incident: the same ids again, so the store refuses them and nobody is asked twice
    assert [t.id for t in update.tasks] == [t.id for t in alert.tasks]
    assert alert.tasks[0].id == derived_id(
        "cross-border-water-pollution", "2", "310118,a-1", "protect-intakes", alert.tasks[0].target
    )


def _variant(tmp_path: Path, region: Region, replace: list[tuple[str, str]]) -> list[Playbook]:
    text = WATER
    for old, new in replace:
        assert old in text
        text = text.replace(old, new, 1)
    return [load_playbook(_write(tmp_path, "v.yaml", text), region=region)]


def test_on_every_update_and_restart_give_each_message_its_own_ids(
    tmp_path: Path, region: Region
) -> None:
    every = _variant(tmp_path, region, [("mode: once_per_incident", "mode: on_every_update")])
    update = cap("u-2", msg_type="Update", references="310118,u-1,2026-07-01T08:30:00+08:00")
    first = _run(cap("u-1"), every, region)
    again = _run(update, every, region, thread="310118,u-1")
    assert first.tasks and not {t.id for t in first.tasks} & {t.id for t in again.tasks}
    restart = _variant(tmp_path, region, [("mode: once_per_incident", "mode: restart")])
    round_one = _run(cap("u-1"), restart, region)  # an Alert starts the first round
    round_two = _run(update, restart, region, thread="310118,u-1")
    assert round_one.tasks and round_two.tasks and round_two.failures == ()
    assert not {t.id for t in round_one.tasks} & {t.id for t in round_two.tasks}
    assert {t.target for t in round_one.tasks} == {t.target for t in round_two.tasks}
    once = _variant(tmp_path, region, [])
    same = _run(update, once, region, thread="310118,u-1")
    assert {t.id for t in same.tasks} == {t.id for t in _run(cap("u-1"), once, region).tasks}


def test_steps_after_an_approval_are_held_for_a_coordinator(tmp_path: Path, region: Region) -> None:
    approval = (
        "  - id: coordinator-approves\n    approval:\n      question: {zh: 批准？, en: Approve?}\n"
        "      ttl: PT1H\n      on_expiry: proceed\n  - id: escalate-intakes\n"
    )
    held = _variant(tmp_path, region, [("  - id: escalate-intakes\n", approval)])
    result = _run(cap("h-1", severity="Extreme"), held, region)
    assert {t.why.step for t in result.tasks} == {
        "protect-intakes",
        "taipu-water-supply",
        "booms-and-absorbents",
    }
    (hold,) = result.holds
    assert hold.expires == "2026-07-01T01:31:00.000Z" and hold.on_expiry == "proceed"
    thread = "310118,h-1"
    assert hold.id == derived_id(
        "cross-border-water-pollution", "2", thread, "coordinator-approves", "approval"
    )
    assert (hold.playbook, hold.version, hold.step) == (
        "cross-border-water-pollution",
        2,
        "coordinator-approves",
    )
    assert hold.tasks == ()  # only the escalate step follows: nothing to hold
    moved = _variant(
        tmp_path,
        region,
        [
            (
                "  - id: booms-and-absorbents\n",
                approval.replace("  - id: escalate-intakes\n", "  - id: booms-and-absorbents\n"),
            )
        ],
    )
    result = _run(cap("h-2", severity="Extreme"), moved, region)
    assert {t.why.step for t in result.holds[0].tasks} == {"booms-and-absorbents"}
    assert "booms-and-absorbents" not in {t.why.step for t in result.tasks}
    assert result.failures == ()  # an approval is a request to a coordinator, not a failure
    again = _run(cap("h-2", severity="Extreme"), moved, region)
    assert again.holds == result.holds  # a redelivery asks for the same approval (same id)


def test_a_playbook_ladder_is_planned_with_its_own_rungs_and_waits(
    tmp_path: Path, region: Region
) -> None:
    custom = _variant(
        tmp_path,
        region,
        [
            (
                "      ladder: agreement\n",
                "      ladder:\n"
                "        - {level: duty_liaison, wait: PT5M}\n"
                "        - {level: regional_coordinator, wait: PT10M}\n",
            )
        ],
    )
    result = _run(cap("l-1"), custom, region)
    ladder = next(x for x in result.ladders if x.step == "escalate-intakes")
    assert ladder.source == "playbook"
    assert ladder.rungs == (
        ("duty_liaison", "2026-07-01T01:01:00.000Z"),
        ("regional_coordinator", "2026-07-01T01:06:00.000Z"),
    )
    assert ladder.waits == (5 * 60_000, 10 * 60_000)
    own = own_ladders(result.ladders)
    assert own[ladder.task] == (
        "escalate-intakes",
        (("duty_liaison", 5 * 60_000), ("regional_coordinator", 10 * 60_000)),
    )
    assert result.failures == ()


def test_planning_is_deterministic_and_sorted(playbooks: list[Playbook], region: Region) -> None:
    first = _run(cap("det-1", severity="Extreme"), playbooks, region)
    second = _run(cap("det-1", severity="Extreme"), playbooks, region)
    assert first == second
    assert [t.id for t in first.tasks] == sorted(t.id for t in first.tasks)
