"""Issue 5 part 2, the lifecycle on a real hub: an Update under each playbook mode, a Cancel
releasing what its tasks hold, and a decline handed to the next candidate."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from hub.bus import topics
from hub.bus.embedded import EmbeddedBus
from hub.bus.port import Outgoing
from hub.clock import FixedClock
from hub.engine.playbook import load_playbooks
from hub.engine.runner import EngineRunner
from hub.engine.tasks import TaskService
from hub.engine.workers import InProcessPlanner
from hub.model.envelope import Lane, derived_id, format_time
from hub.model.events import IncidentReported, TaskUpdated, decode, make_event
from hub.model.incident import Incident
from hub.model.task import Task
from hub.region import load_region
from hub.runtime import Hub
from hub.settings import Settings
from hub.store.db import Database, Tx
from tests.factories import cap
from tests.integration.test_api import _tasks, _wait_tasks, auth, hub_idle

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
QINGPU, WUJIANG, KUNSHAN, JIASHAN, XIUZHOU = "310118", "320509", "320583", "330421", "330411"
SENT = "2026-07-01T08:30:00+08:00"
RESTART = [("mode: once_per_incident", "mode: restart")]
EVERY = [("mode: once_per_incident", "mode: on_every_update")]
NEXT = [
    (
        "  - id: protect-intakes\n    task:\n",
        "  - id: protect-intakes\n    task:\n      at_most: 1\n      on_decline: next_candidate\n",
    )
]


@pytest.fixture
def edits() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def settings(tmp_path: Path, edits: list[tuple[str, str]]) -> Settings:
    """The region's playbooks, with the water playbook edited as the test asks."""
    directory = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, directory)
    water = directory / "cross-border-water-pollution.yaml"
    text = water.read_text("utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    water.write_text(text, "utf-8")
    return Settings(data=tmp_path / "data", playbooks=directory, engine_workers=0)


def update(identifier: str, circle: str, previous: str = "th-1") -> bytes:
    references = f"{QINGPU},{previous},{SENT}"
    return orjson.dumps(cap(identifier, msg_type="Update", references=references, circle=circle))


async def post(client: httpx.AsyncClient, token: str, body: bytes) -> None:
    res = await client.post("/api/v1/incidents", content=body, headers=auth(token))
    assert res.status_code == 202, res.text


async def redeliver(hub: Hub) -> None:
    """Every incident record again, as after a crash before the engine's offset commit."""
    await hub.engines[0].handle(await hub.bus.read(topics.INCIDENTS, 0, 100))


async def events(hub: Hub, topic: str) -> list[bytes]:
    return [r.value for r in await hub.bus.read(topic, 0, 1000)]


def states(tasks: list[dict[str, object]]) -> dict[str, object]:
    return {str(t["id"]): t["state"] for t in tasks}


@pytest.mark.parametrize("edits", [RESTART])
async def test_restart_cancels_the_earlier_round_and_plans_afresh(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    qingpu, wujiang = token(QINGPU), token(WUJIANG)
    await post(client, qingpu, orjson.dumps(cap("th-1")))
    first = await _wait_tasks(client, qingpu, "th-1", 3)
    answered = next(t for t in first if t["target"] == WUJIANG)
    ack = f"/api/v1/tasks/{answered['id']}/acknowledge"
    assert (await client.post(ack, headers=auth(wujiang))).status_code == 200

    await post(client, qingpu, update("th-2", "31.03,120.90 8"))
    await hub_idle(hub)
    now = states(await _tasks(client, qingpu, "th-1"))
    assert {now[str(t["id"])] for t in first} == {"cancelled"}  # acknowledged one included
    second = {i for i, s in now.items() if s == "issued"}
    assert len(second) == 4 and not second & {str(t["id"]) for t in first}
    cancelled = [
        decode(v).payload_as(TaskUpdated)
        for v in await events(hub, topics.TASK_UPDATES)
        if decode(v).envelope.type == "task.cancelled"
    ]
    assert len(cancelled) == 3
    assert {c.reason for c in cancelled} == {
        f"incident updated by {QINGPU},th-2: playbook cross-border-water-pollution restarted"
    }

    # The second Update restarts again; redelivering all three messages changes nothing, and
    # the stale first Update does not cancel the round of the second.
    await post(client, qingpu, update("th-3", "31.03,120.90 2", previous="th-2"))
    await hub_idle(hub)
    settled = states(await _tasks(client, qingpu, "th-1"))
    third = {i for i, s in settled.items() if s == "issued"}
    assert len(third) == 3 and not third & second
    issued, updates = await events(hub, topics.TASKS), await events(hub, topics.TASK_UPDATES)
    await redeliver(hub)
    assert states(await _tasks(client, qingpu, "th-1")) == settled
    assert await events(hub, topics.TASKS) == issued
    assert await events(hub, topics.TASK_UPDATES) == updates


@pytest.mark.parametrize("edits", [[], EVERY], ids=["once_per_incident", "on_every_update"])
async def test_an_update_reaching_a_new_neighbour_adds_tasks_and_leaves_the_rest(
    client: httpx.AsyncClient,
    token: Callable[[str], str],
    hub: Hub,
    edits: list[tuple[str, str]],
) -> None:
    qingpu, wujiang = token(QINGPU), token(WUJIANG)
    await post(client, qingpu, orjson.dumps(cap("th-1")))
    first = await _wait_tasks(client, qingpu, "th-1", 3)
    assert XIUZHOU not in {t["target"] for t in first}
    answered = next(t for t in first if t["target"] == WUJIANG)
    ack = f"/api/v1/tasks/{answered['id']}/acknowledge"
    assert (await client.post(ack, headers=auth(wujiang))).status_code == 200
    before = states(await _tasks(client, qingpu, "th-1"))

    await post(client, qingpu, update("th-2", "31.03,120.90 8"))  # now reaches Xiuzhou too
    await hub_idle(hub)
    after = await _tasks(client, qingpu, "th-1")
    assert {i: s for i, s in states(after).items() if i in before} == before  # left alone
    added = [t for t in after if str(t["id"]) not in before]
    if edits == EVERY:  # a new round: everyone in range is asked again, Xiuzhou for the first time
        assert sorted(str(t["target"]) for t in added) == [WUJIANG, KUNSHAN, XIUZHOU, JIASHAN]
    else:  # same ids for those already asked: only the new neighbour gets a task
        assert [t["target"] for t in added] == [XIUZHOU]
    assert {t["state"] for t in added} == {"issued"}
    issued = await events(hub, topics.TASKS)
    assert len(issued) == len(after)
    await redeliver(hub)
    assert await events(hub, topics.TASKS) == issued


@pytest.mark.parametrize("edits", [NEXT])
async def test_a_decline_goes_to_the_next_candidate_once(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    # hub/runtime.py builds the TaskService without the playbooks; wired here as it must be.
    hub.tasks = TaskService(
        hub.db, hub.backends.emitter, hub.clock, playbooks=hub.playbooks, region=hub.region
    )
    qingpu = token(QINGPU)
    await post(client, qingpu, orjson.dumps(cap("th-1")))
    (first,) = await _wait_tasks(client, qingpu, "th-1", 1)  # at_most 1: Wujiang, first by code
    assert first["target"] == WUJIANG
    await hub_idle(hub)

    async def decline(task: dict[str, object], code: str) -> None:
        who = auth(token(code))
        base = f"/api/v1/tasks/{task['id']}"
        assert (await client.post(f"{base}/acknowledge", headers=who)).status_code == 200
        for _ in range(2):  # a resent decline is answered the same and asks nobody more
            res = await client.post(
                f"{base}/decline", headers=who, json={"reason": "no boats free"}
            )
            assert res.status_code == 200, res.text

    await decline(first, WUJIANG)
    tasks = await _tasks(client, qingpu, "th-1")
    assert len(tasks) == 2
    (second,) = [t for t in tasks if t["id"] != first["id"]]
    assert second["target"] == KUNSHAN and second["state"] == "issued"
    why = Task.model_validate(second).why
    assert why.step == "protect-intakes"
    assert why.cause == derived_id(str(first["id"]), "task.declined")
    assert f"{WUJIANG} declined task {first['id']}" in " ".join(why.conditions)

    await decline(second, KUNSHAN)
    await decline(
        next(t for t in await _tasks(client, qingpu, "th-1") if t["target"] == JIASHAN), JIASHAN
    )
    final = await _tasks(client, qingpu, "th-1")
    assert sorted(str(t["target"]) for t in final) == [WUJIANG, KUNSHAN, JIASHAN]  # nobody left
    issued = [decode(v).envelope.subject for v in await events(hub, topics.TASKS)]
    assert sorted(issued) == sorted(str(t["id"]) for t in final)


NOW = 1_782_865_800_000


async def _report(bus: EmbeddedBus, message: dict[str, object], thread: str, version: int) -> None:
    incident = Incident.model_validate(message)
    payload = IncidentReported(
        incident=incident, thread=thread, version=version, received=format_time(NOW)
    )
    envelope = make_event(
        "incident.reported",
        payload,
        id=derived_id("incident.reported", incident.key),
        source="/test",
        time=format_time(NOW),
        jurisdiction=incident.sender,
        correlationid=thread,
    )
    await bus.publish([Outgoing(topics.INCIDENTS, thread, envelope.encode())])


async def test_a_cancel_releases_what_each_cancelled_task_holds(tmp_path: Path) -> None:
    db = Database(tmp_path / "hub.db", "NORMAL")
    db.open()
    try:
        clock = FixedClock(NOW)
        bus = EmbeddedBus(db, clock)
        released: list[tuple[str, str]] = []

        def release(tx: Tx, task: Task, reason: str) -> None:
            released.append((task.id, reason))

        planner = InProcessPlanner(load_playbooks(PLAYBOOKS), load_region())
        runner = EngineRunner(db, bus, clock, planner, Lane.ACTUAL, release=release)
        thread = f"{QINGPU},c-1"
        await _report(bus, cap("c-1"), thread, 1)
        cancel = cap("c-2", msg_type="Cancel", references=f"{QINGPU},c-1,{SENT}")
        await _report(bus, cancel, thread, 2)
        records = await bus.read(topics.INCIDENTS, 0, 10)
        await runner.handle(records)
        await runner.handle(records)  # redelivered: nothing is open, nothing released twice
        issued = [decode(r.value).envelope.subject for r in await bus.read(topics.TASKS, 0, 10)]
        assert len(issued) == 3
        assert sorted(t for t, _ in released) == sorted(issued)
        assert {r for _, r in released} == {f"incident cancelled by {QINGPU},c-2"}
    finally:
        db.close()
