"""The pure parts of approvals and playbook-own ladders: what the planner renders for an approval
step (ids, held tasks with their ladders, the ``approval.requested`` bytes), the stored form of
held tasks, and the cases' ``approvals`` / ``ladders`` expectations (no database)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.engine.cases import Case, run_case
from hub.engine.planning import Planned, prepare
from hub.engine.playbook import Playbook, load_playbooks
from hub.model.approvals import ApprovalRequested, OnExpiry
from hub.model.envelope import Lane, derived_id, format_time
from hub.model.events import IncidentReported, decode, make_event
from hub.model.incident import Incident
from hub.region import Region, load_region
from hub.store.approvals import HeldTask, held_json, parse_held
from tests.factories import cap

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
RECEIVED = 1_782_865_800_000  # 2026-07-01T00:30:00Z


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


@pytest.fixture(scope="module")
def playbooks(region: Region) -> list[Playbook]:
    return load_playbooks(PLAYBOOKS, region)


def _value(message: dict[str, Any], thread: str | None = None, received: int = RECEIVED) -> bytes:
    incident = Incident.model_validate(message)
    key = thread or incident.key
    payload = IncidentReported(
        incident=incident, thread=key, version=1, received=format_time(received)
    )
    return make_event(
        "incident.reported",
        payload,
        id=derived_id("incident.reported", incident.key),
        source="/test",
        time=format_time(received),
        jurisdiction=incident.sender,
        correlationid=key,
    ).encode()


def _outbreak(identifier: str, **kw: Any) -> dict[str, Any]:
    message = cap(identifier, category="Health", circle="31.05,120.95 3", **kw)
    message["info"][0]["event"] = "聚集性传染病疫情"
    return message


def _hazmat(identifier: str) -> dict[str, Any]:
    message = cap(identifier, category="Transport", circle="31.045,120.915 0.5")
    message["info"][0]["event"] = "沪渝高速G50金泽段危化品槽罐车侧翻泄漏"
    message["info"][0]["area"][0]["areaDesc"] = "G50沪渝高速金泽收费站以西"
    return message


def _prepare(value: bytes, playbooks: list[Playbook], region: Region) -> Planned:
    planned = prepare(value, Lane.ACTUAL, playbooks, region)
    assert isinstance(planned, Planned)
    return planned


def test_an_approval_step_is_rendered_as_a_request_with_its_held_tasks(
    playbooks: list[Playbook], region: Region
) -> None:
    planned = _prepare(_value(_outbreak("ap-1")), playbooks, region)
    assert planned.failures == ()  # no longer reported as "not built"
    (ask,) = planned.approvals
    thread = "310118,ap-1"
    assert ask.id == derived_id(
        "infectious-disease-joint-control", "1", thread, "coordinator-approves-passes", "approval"
    )
    assert ask.expires_ms == RECEIVED + 2 * 3_600_000 and ask.on_expiry is OnExpiry.CANCEL
    assert [h.task.id for h in ask.held] == sorted(h.task.id for h in ask.held)
    assert {h.task.why.step for h in ask.held} == {
        "mutual-passes",
        "joint-checkpoints",
        "test-supplies",
    }
    assert not {h.task.id for h in ask.held} & {r.id for r in planned.rows}
    event = decode(ask.event)
    assert event.envelope.type == "approval.requested"
    assert event.envelope.id == derived_id(ask.id, "approval.requested")
    assert event.envelope.causationid == planned.cause and event.envelope.subject == ask.id
    request = event.payload_as(ApprovalRequested)
    assert [t.id for t in request.tasks] == [h.task.id for h in ask.held]
    assert request.question_en.startswith("Start mutual recognition")
    assert parse_held(ask.tasks_json) == ask.held
    assert pickle.loads(pickle.dumps(planned)) == planned  # crosses the planner worker's pipe
    # An Update of the same thread asks for the same approval (once_per_incident): same id.
    refs = "310118,ap-1,2026-07-01T08:30:00+08:00"
    update = _outbreak("ap-2", msg_type="Update", references=refs)
    again = _prepare(_value(update, thread=thread), playbooks, region)
    assert [a.id for a in again.approvals] == [ask.id]


def test_planning_an_approval_twice_gives_the_same_bytes(
    playbooks: list[Playbook], region: Region
) -> None:
    first = _prepare(_value(_outbreak("ap-3")), playbooks, region)
    second = _prepare(_value(_outbreak("ap-3")), playbooks, region)
    assert [(a.event, a.tasks_json) for a in first.approvals] == [
        (a.event, a.tasks_json) for a in second.approvals
    ]


def test_a_playbook_ladder_rides_with_its_tasks_and_others_have_none(
    playbooks: list[Playbook], region: Region
) -> None:
    planned = _prepare(_value(_hazmat("hz-1")), playbooks, region)
    own = {r.target: r for r in planned.rows if r.ladder}
    assert set(own) == {"320509", "320583", "330421"}
    for row in own.values():
        assert row.ladder_step == "escalate-traffic-control"
        assert row.ladder == (
            ("duty_liaison", 5 * 60_000),
            ("city_command", 10 * 60_000),
            ("regional_coordinator", 15 * 60_000),
        )
    gear = [r for r in planned.rows if not r.ladder]
    assert gear and all(orjson.loads(r.body)["why"]["step"] == "protective-gear" for r in gear)


def test_held_tasks_round_trip_through_their_stored_form(
    playbooks: list[Playbook], region: Region
) -> None:
    (ask,) = _prepare(_value(_outbreak("ap-4")), playbooks, region).approvals
    laddered = (HeldTask(ask.held[0].task, "escalate-x", (("city_command", 60_000),)),)
    mixed = (*ask.held[1:], *laddered)
    assert parse_held(held_json(mixed)) == tuple(sorted(mixed, key=lambda h: h.task.id))
    assert held_json(mixed) == held_json(tuple(reversed(mixed)))  # sorted, whatever the order


def _case(data: dict[str, Any]) -> Case:
    return Case.model_validate(data)


def test_cases_check_the_approval_steps_and_the_own_ladders(
    playbooks: list[Playbook], region: Region
) -> None:
    outbreak = {k: v for k, v in _outbreak("c").items() if k in ("sender", "info")}
    right = {"matched": True, "approvals": ["coordinator-approves-passes"]}
    wrong = {"matched": True, "approvals": []}
    disease = "infectious-disease-joint-control"
    found = run_case(_case({"name": "a", "incident": outbreak, "expect": right}), 0, disease,
                     playbooks, region)  # fmt: skip
    assert not any("approvals" in p for p in found), found
    found = run_case(_case({"name": "b", "incident": outbreak, "expect": wrong}), 0, disease,
                     playbooks, region)  # fmt: skip
    assert any("approvals ['coordinator-approves-passes'], expected []" in p for p in found)

    hazmat = {k: v for k, v in _hazmat("c").items() if k in ("sender", "info")}
    levels = ["duty_liaison", "city_command", "regional_coordinator"]
    ladders = [
        {"step": "traffic-control", "target": t, "escalate": "escalate-traffic-control",
         "levels": levels}
        for t in ("320509", "320583", "330421")
    ]  # fmt: skip
    good = {"matched": True, "ladders": ladders}
    found = run_case(_case({"name": "c", "incident": hazmat, "expect": good}), 0,
                     "hazmat-expressway-accident", playbooks, region)  # fmt: skip
    assert not any("own ladders" in p for p in found), found
    bad = {"matched": True, "ladders": [{**ladders[0], "levels": ["duty_liaison"]}]}
    found = run_case(_case({"name": "d", "incident": hazmat, "expect": bad}), 0,
                     "hazmat-expressway-accident", playbooks, region)  # fmt: skip
    assert any(p.startswith("own ladders") for p in found)
