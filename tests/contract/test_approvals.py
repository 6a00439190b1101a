"""Approval requests and playbook-own ladders on SQLite and PostgreSQL: asked once, decided once,
expired once (even across a restart), cancelled with their incident.

The real playbooks run through the real engine runner: ``infectious-disease-joint-control``
holds the cross-border passes for the regional coordinator (``on_expiry: cancel``), and
``hazmat-expressway-accident`` escalates its traffic-control tasks on a ladder of its own
(duty liaison 5 min → city command 10 min → regional coordinator). A variant of the first
(``on_expiry: proceed``, plus a ladder of its own for the passes) shows what an expiry issues.
The clock is a ``FixedClock`` the test moves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.bus import topics
from hub.bus.port import Record
from hub.clock import FixedClock
from hub.engine.approvals import ApprovalService
from hub.engine.deadlines import Escalator
from hub.engine.playbook import Playbook, load_playbook, load_playbooks
from hub.engine.runner import EngineRunner
from hub.engine.spatial import load_zones
from hub.engine.workers import InProcessPlanner
from hub.errors import Conflict, InvalidInput, NotAllowed
from hub.model.approvals import ApprovalDecided, ApprovalExtended, ApprovalRequested, ApprovalState
from hub.model.envelope import derived_id, format_time, parse_time
from hub.model.events import IncidentReported, TaskUpdated, decode, make_event
from hub.model.incident import Incident
from hub.region import Region, load_region
from hub.store import approvals as approval_store
from hub.store import tasks as task_store
from hub.store.db import Runner, Tx
from hub.store.outbox import Outbox
from tests.factories import cap

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
RECEIVED = 1_782_865_800_000  # 2026-07-01T00:30:00Z
MIN = 60_000
DISEASE = "infectious-disease-joint-control"
HELD_STEPS = {"mutual-passes", "joint-checkpoints", "test-supplies"}


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


@pytest.fixture(scope="module")
def playbooks(region: Region) -> list[Playbook]:
    return load_playbooks(PLAYBOOKS, region)


def _record(message: dict[str, Any], offset: int = 0, thread: str | None = None) -> Record:
    incident = Incident.model_validate(message)
    key = thread or incident.key
    payload = IncidentReported(
        incident=incident, thread=key, version=1 + offset, received=format_time(RECEIVED)
    )
    envelope = make_event(
        "incident.reported",
        payload,
        id=derived_id("incident.reported", incident.key),
        source="/test",
        time=format_time(RECEIVED),
        jurisdiction=incident.sender,
        correlationid=key,
    )
    return Record(topics.INCIDENTS, 0, offset, key, envelope.encode(), RECEIVED)


def _outbreak(identifier: str = "hd-1", **kw: Any) -> dict[str, Any]:
    """The case of the disease playbook: a cluster at Jinze, Qingpu."""
    message = cap(identifier, category="Health", circle="31.05,120.95 3", **kw)
    message["info"][0]["event"] = "聚集性传染病疫情"
    message["info"][0]["area"][0]["areaDesc"] = "青浦区金泽镇"
    return message


def _at(clock: FixedClock, ms: int) -> None:
    clock.advance(ms - clock.now_ms())


def _runner(db: Runner, clock: FixedClock, playbooks: list[Playbook], region: Region) -> Any:
    return EngineRunner(db, Outbox(clock), clock, InProcessPlanner(playbooks, region))


async def _events(db: Runner, kind: str | None = None) -> list[Any]:
    def read(tx: Tx) -> list[bytes]:
        rows = tx.conn.execute("SELECT value FROM outbox ORDER BY id").fetchall()
        return [bytes(r[0]) for r in rows]

    events = [decode(v) for v in await db.run(read)]
    return [e for e in events if kind is None or e.envelope.type == kind]


async def _held_tasks_in_store(db: Runner, thread: str) -> list[Any]:
    found = await db.run(lambda tx: task_store.list_tasks(tx.conn, incident=thread))
    return [t for t in found if t.why.step in HELD_STEPS]


async def _only_approval(db: Runner) -> approval_store.Approval:
    (found,) = await db.run(lambda tx: approval_store.list_approvals(tx.conn))
    return found


async def test_an_approval_is_requested_once_under_redelivery(
    opener: Any, playbooks: list[Playbook], region: Region
) -> None:
    db = await opener()
    clock = FixedClock(RECEIVED + 100)
    runner = _runner(db, clock, playbooks, region)
    record = _record(_outbreak())
    await runner.handle([record])
    await runner.handle([record])  # redelivered, as after a crash before the offset commit
    await _runner(await opener(), clock, playbooks, region).handle([record])  # another instance

    asked = await _events(db, "approval.requested")
    assert len(asked) == 1
    request = asked[0].payload_as(ApprovalRequested)
    assert (request.playbook, request.step) == (DISEASE, "coordinator-approves-passes")
    assert request.expires == format_time(RECEIVED + 120 * MIN) and request.on_expiry == "cancel"
    assert {t.why.step for t in request.tasks} == HELD_STEPS and len(request.tasks) == 13
    assert asked[0].envelope.correlationid == "310118,hd-1"
    approval = await _only_approval(db)
    assert approval.id == request.approval and approval.state is ApprovalState.REQUESTED
    assert [h.task.id for h in approval.held] == sorted(t.id for t in request.tasks)
    issued = await _events(db, "task.issued")
    assert len(issued) == 8  # share-cases only: nothing after the approval step yet
    assert await _held_tasks_in_store(db, "310118,hd-1") == []
    assert await db.run(lambda tx: approval_store.next_expiry(tx.conn)) == RECEIVED + 120 * MIN


async def test_approve_issues_the_held_tasks_once_even_with_two_racing_approvers(
    opener: Any, playbooks: list[Playbook], region: Region
) -> None:
    db = await opener()
    clock = FixedClock(RECEIVED + 100)
    await _runner(db, clock, playbooks, region).handle([_record(_outbreak())])
    approval = await _only_approval(db)
    _at(clock, RECEIVED + 30 * MIN)
    first = ApprovalService(db, Outbox(clock), clock)
    second = ApprovalService(await opener(), Outbox(clock), clock)
    done = await asyncio.gather(
        first.approve(approval.id, by="user:wang", role="coordinator"),
        second.approve(approval.id, by="user:li", role="coordinator"),
    )
    assert {d.state for d in done} == {ApprovalState.APPROVED}
    decided = await _events(db, "approval.approved")
    assert len(decided) == 1
    outcome = decided[0].payload_as(ApprovalDecided)
    assert outcome.by in {"user:wang", "user:li"}
    held = await _held_tasks_in_store(db, "310118,hd-1")
    assert sorted(t.id for t in held) == sorted(h.task.id for h in approval.held)
    assert sorted(outcome.issued) == sorted(t.id for t in held)
    issued = [e for e in await _events(db, "task.issued") if e.envelope.subject in outcome.issued]
    assert len(issued) == 13 and {e.envelope.id for e in issued} == {
        derived_id(t.id, "task.issued") for t in held
    }
    assert all(e.envelope.causationid == decided[0].envelope.id for e in issued)
    passes = next(t for t in held if t.why.step == "mutual-passes")
    assert passes.issued == format_time(RECEIVED + 30 * MIN)  # the deadline counts from approval
    assert passes.due == format_time(RECEIVED + 150 * MIN)  # + PT2H
    again = await first.approve(approval.id, by="user:wang", role="coordinator")
    assert again.state is ApprovalState.APPROVED  # approving again: success, nothing new
    assert len(await _events(db, "task.issued")) == 8 + 13


async def test_only_a_coordinator_decides_and_a_rejection_issues_nothing(
    opener: Any, playbooks: list[Playbook], region: Region
) -> None:
    db = await opener()
    clock = FixedClock(RECEIVED + 100)
    await _runner(db, clock, playbooks, region).handle([_record(_outbreak())])
    approval = await _only_approval(db)
    service = ApprovalService(db, Outbox(clock), clock)
    for role in ("officer", "admin", "adapter"):
        with pytest.raises(NotAllowed, match="regional coordinator"):
            await service.approve(approval.id, by="user:x", role=role)
    with pytest.raises(InvalidInput, match="needs a reason"):
        await service.reject(approval.id, by="user:wang", role="coordinator", reason=" ")
    assert (await _only_approval(db)).state is ApprovalState.REQUESTED
    rejected = await service.reject(
        approval.id, by="user:wang", role="coordinator", reason="the border stays open"
    )
    assert rejected.state is ApprovalState.REJECTED and rejected.reason == "the border stays open"
    with pytest.raises(Conflict, match="is rejected"):
        await service.approve(approval.id, by="user:li", role="coordinator")
    _at(clock, RECEIVED + 24 * 60 * MIN)
    assert await service.expire_due() == 0  # a decided request never expires
    assert await _held_tasks_in_store(db, "310118,hd-1") == []
    (event,) = await _events(db, "approval.rejected")
    assert event.payload_as(ApprovalDecided).issued == []
    assert await _events(db, "approval.expired") == []


def _proceeding(tmp_path: Path, region: Region, playbooks: list[Playbook]) -> list[Playbook]:
    """The real playbooks, with the disease one changed: an expiry proceeds, and the passes
    climb a ladder of the playbook's own."""
    text = (PLAYBOOKS / f"{DISEASE}.yaml").read_text(encoding="utf-8")
    assert "on_expiry: cancel" in text
    text = text.replace("on_expiry: cancel", "on_expiry: proceed") + (
        "  - id: escalate-passes\n"
        "    escalate:\n"
        "      steps: [mutual-passes]\n"
        "      ladder:\n"
        "        - {level: district_command, wait: PT10M}\n"
        "        - {level: regional_coordinator, wait: PT10M}\n"
    )
    path = tmp_path / "variant" / f"{DISEASE}.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    variant = load_playbook(path, zones=load_zones(PLAYBOOKS / "zones"), region=region)
    return [p for p in playbooks if p.id != DISEASE] + [variant]


@pytest.mark.parametrize("on_expiry", ["cancel", "proceed"])
async def test_an_expiry_that_passed_while_no_hub_ran_applies_once_after_restart(
    opener: Any,
    playbooks: list[Playbook],
    region: Region,
    tmp_path: Path,
    on_expiry: str,
) -> None:
    books = playbooks if on_expiry == "cancel" else _proceeding(tmp_path, region, playbooks)
    db = await opener()
    clock = FixedClock(RECEIVED + 100)
    await _runner(db, clock, books, region).handle([_record(_outbreak())])
    assert await Escalator(db, Outbox(clock), clock, region).run_once() == 0
    await db.stop()

    _at(clock, RECEIVED + 5 * 60 * MIN)  # down for five hours: the PT2H expiry passed meanwhile
    reopened = await opener()
    first, second = (Escalator(d, Outbox(clock), clock, region) for d in (reopened, await opener()))
    await asyncio.gather(first.run_once(), second.run_once())
    assert first.approvals.expired + second.approvals.expired == 1
    again = Escalator(await opener(), Outbox(clock), clock, region)
    await again.run_once()
    assert again.approvals.expired == 0

    (event,) = await _events(reopened, "approval.expired")
    outcome = event.payload_as(ApprovalDecided)
    expires = RECEIVED + 120 * MIN
    assert outcome.at == format_time(expires) and outcome.by == "hub"
    assert (await _only_approval(reopened)).state is ApprovalState.EXPIRED
    held = await _held_tasks_in_store(reopened, "310118,hd-1")
    if on_expiry == "cancel":
        assert held == [] and outcome.issued == []
        return
    assert len(held) == 13 and sorted(outcome.issued) == sorted(t.id for t in held)
    assert all(t.issued == format_time(expires) for t in held)  # as of the expiry
    # The passes climb the playbook's own ladder; the other held steps their agreement's.
    escalations = [e.payload_as(TaskUpdated) for e in await _events(reopened, "task.escalated")]
    passes = {t.id for t in held if t.why.step == "mutual-passes"}
    own = [u for u in escalations if u.task in passes]
    assert len(passes) == 2 and len(own) == 4
    for task in passes:
        climbed = [u for u in own if u.task == task]
        assert [u.level for u in climbed] == ["district_command", "regional_coordinator"]
        due = expires + 120 * MIN  # PT2H after the expiry issued it
        assert [u.at for u in climbed] == [format_time(due), format_time(due + 10 * MIN)]
        reason = climbed[0].reason or ""
        assert "playbook infectious-disease-joint-control step escalate-passes" in reason


async def test_a_playbook_ladder_climbs_its_own_rungs_once_each(
    opener: Any, playbooks: list[Playbook], region: Region
) -> None:
    message = cap(
        "hz-1",
        category="Transport",
        circle="31.045,120.915 0.5",
    )
    message["info"][0]["event"] = "沪渝高速G50金泽段危化品槽罐车侧翻泄漏"
    message["info"][0]["area"][0]["areaDesc"] = "G50沪渝高速金泽收费站以西"
    db = await opener()
    clock = FixedClock(RECEIVED + 100)
    await _runner(db, clock, playbooks, region).handle([_record(message)])
    tasks = await db.run(lambda tx: task_store.list_tasks(tx.conn, incident="310118,hz-1"))
    control = sorted(t.id for t in tasks if t.why.step == "traffic-control")
    assert len(control) == 3
    due = parse_time(format_time(RECEIVED + 20 * MIN))  # ack_deadline PT20M
    escalator = Escalator(db, Outbox(clock), clock, region)
    _at(clock, due + 5 * MIN)  # the first two rungs of each fall due
    assert await escalator.run_once() > 0
    await db.stop()

    _at(clock, due + 24 * 60 * MIN)  # the last rung passes while no hub runs
    reopened = await opener()
    await asyncio.gather(
        Escalator(reopened, Outbox(clock), clock, region).run_once(),
        Escalator(await opener(), Outbox(clock), clock, region).run_once(),
    )
    assert await Escalator(reopened, Outbox(clock), clock, region).run_once() == 0
    found = [e for e in await _events(reopened, "task.escalated")]
    assert len({e.envelope.id for e in found}) == len(found)
    by_task: dict[str, list[TaskUpdated]] = {}
    for e in found:
        update = e.payload_as(TaskUpdated)
        by_task.setdefault(update.task, []).append(update)
    ladder = ["duty_liaison", "city_command", "regional_coordinator"]
    for task in control:
        climbed = by_task[task]
        assert [u.level for u in climbed] == ladder
        assert [u.at for u in climbed] == [format_time(due + m * MIN) for m in (0, 5, 15)]
        assert [u.rung for u in climbed] == [1, 2, 3]
        reason = climbed[0].reason or ""
        assert "of 3) on the ladder of playbook hazmat-expressway-accident" in reason
    # The resource request has no ladder of its own: its agreement's (four rungs) is climbed.
    gear = {t.id for t in tasks if t.why.step == "protective-gear"}
    assert gear and all(len(by_task[t]) == 4 for t in gear)


async def test_a_cancel_cancels_the_pending_approval(
    opener: Any, playbooks: list[Playbook], region: Region
) -> None:
    db = await opener()
    clock = FixedClock(RECEIVED + 100)
    runner = _runner(db, clock, playbooks, region)
    await runner.handle([_record(_outbreak())])
    approval = await _only_approval(db)
    cancel = _record(
        _outbreak("hd-2", msg_type="Cancel", references="310118,hd-1,2026-07-01T08:30:00+08:00"),
        offset=1,
        thread="310118,hd-1",
    )
    await runner.handle([cancel])
    await runner.handle([cancel])  # redelivered
    (event,) = await _events(db, "approval.cancelled")
    outcome = event.payload_as(ApprovalDecided)
    assert outcome.approval == approval.id and outcome.issued == []
    assert outcome.by == "310118" and "cancelled by 310118,hd-2" in (outcome.reason or "")
    assert event.envelope.causationid == orjson.loads(cancel.value)["id"]
    assert (await _only_approval(db)).state is ApprovalState.CANCELLED
    service = ApprovalService(db, Outbox(clock), clock)
    with pytest.raises(Conflict, match="is cancelled"):
        await service.approve(approval.id, by="user:wang", role="coordinator")
    _at(clock, RECEIVED + 24 * 60 * MIN)
    assert await service.expire_due() == 0
    assert await _held_tasks_in_store(db, "310118,hd-1") == []
    assert len(await _events(db, "task.cancelled")) == 8  # the issued share-cases tasks


async def test_an_update_adds_its_new_targets_to_the_pending_request_or_issues_them_if_approved(
    opener: Any, playbooks: list[Playbook], region: Region
) -> None:
    """once_per_incident: an Update asks for the same approval; the targets it newly reaches
    join the pending request, and after the approval they are issued at once."""
    db = await opener()
    clock = FixedClock(RECEIVED + 100)
    runner = _runner(db, clock, playbooks, region)
    await runner.handle([_record(_outbreak())])
    refs = "310118,hd-1,2026-07-01T08:30:00+08:00"

    def update(identifier: str, circle: str, offset: int) -> Record:
        message = _outbreak(identifier, msg_type="Update", references=refs)
        message["info"][0]["area"][0]["circle"] = [circle]
        return _record(message, offset=offset, thread="310118,hd-1")

    before = {h.task.id for h in (await _only_approval(db)).held}
    first = update("hd-u1", "31.05,120.95 10", 1)  # reaches Jiaxing's Nanhu too
    await runner.handle([first])
    await runner.handle([first])  # redelivered: adds nothing, says nothing
    approval = await _only_approval(db)
    assert len(approval.held) == 14 and len(await _events(db, "approval.requested")) == 1
    assert "330502" in {h.task.target for h in approval.held}
    (extended,) = await _events(db, "approval.extended")
    payload = extended.payload_as(ApprovalExtended)
    added = {h.task.id for h in approval.held} - before
    assert {t.id for t in payload.tasks} == added and len(added) == 1
    assert (payload.approval, payload.by, payload.incident) == (
        approval.id,
        "310118",
        "310118,hd-1",
    )
    assert extended.envelope.subject == approval.id
    service = ApprovalService(db, Outbox(clock), clock)
    await service.approve(approval.id, by="user:wang", role="coordinator")
    assert len(await _held_tasks_in_store(db, "310118,hd-1")) == 14

    wider = update("hd-u2", "31.05,120.95 20", 2)  # two more lenders within 50 km
    await runner.handle([wider])
    await runner.handle([wider])  # redelivered
    held = await _held_tasks_in_store(db, "310118,hd-1")
    assert len(held) == 16 and {"320205", "320214"} <= {t.target for t in held}
    assert len(await _events(db, "approval.requested")) == 1
    assert len(await _events(db, "approval.approved")) == 1
    assert len(await _events(db, "approval.extended")) == 1  # issued at once, not held


async def test_a_cancel_racing_an_approval_leaves_no_held_task_open(
    opener: Any, playbooks: list[Playbook], region: Region
) -> None:
    """Whichever commits first, the incident's Cancel wins in the end: either the request is
    cancelled and nothing was issued, or it was approved and every task it issued is
    cancelled."""
    db = await opener()
    clock = FixedClock(RECEIVED + 100)
    await _runner(db, clock, playbooks, region).handle([_record(_outbreak())])
    approval = await _only_approval(db)
    cancel = _record(
        _outbreak("hd-2", msg_type="Cancel", references="310118,hd-1,2026-07-01T08:30:00+08:00"),
        offset=1,
        thread="310118,hd-1",
    )
    service = ApprovalService(await opener(), Outbox(clock), clock)

    async def approve() -> Any:
        try:
            return await service.approve(approval.id, by="user:wang", role="coordinator")
        except Conflict as exc:  # the Cancel committed first
            return exc

    _, decided = await asyncio.gather(
        _runner(await opener(), clock, playbooks, region).handle([cancel]), approve()
    )
    state = (await _only_approval(db)).state
    held = await _held_tasks_in_store(db, "310118,hd-1")
    if state is ApprovalState.CANCELLED:
        assert isinstance(decided, Conflict) and held == []
    else:
        assert state is ApprovalState.APPROVED and len(held) == 13
        assert {t.state.value for t in held} == {"cancelled"}
