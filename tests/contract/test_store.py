"""The state store contract: the same services, the same answers, on SQLite and PostgreSQL.

PostgreSQL runs for real (the machine's server, or one the fixture starts); concurrency tests
show that constraints + compare-and-set + retry inside the service keep "once per id" and "one
winner per transition" under races (READ COMMITTED), and that no conflict reaches the caller.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from hub.clock import SystemClock
from hub.engine.tasks import TaskService
from hub.errors import Conflict, NotAllowed
from hub.intake.credentials import create_adapter
from hub.intake.service import IntakeService, parse_incident
from hub.model.envelope import Lane, derived_id
from hub.model.task import Task, TaskState, Why
from hub.region import load_region
from hub.store import incidents as incident_store
from hub.store import tasks as task_store
from hub.store.adapters import AdapterCredential, adapter_by_token
from hub.store.db import Runner, Tx
from hub.store.outbox import Outbox
from tests.factories import cap

QINGPU = AdapterCredential("qingpu", "310118")


def _intake(db: Runner) -> IntakeService:
    return IntakeService(db, Outbox(SystemClock()), SystemClock(), load_region())


async def _outbox(db: Runner) -> list[tuple[str, str | None, bytes]]:
    def read(tx: Tx) -> list[tuple[str, str | None, bytes]]:
        rows = tx.conn.execute("SELECT topic, key, value FROM outbox ORDER BY id").fetchall()
        return [(t, k, bytes(v)) for t, k, v in rows]

    return await db.run(read)


async def test_incident_accepted_once_with_its_event(db: Runner) -> None:
    intake = _intake(db)
    incident = parse_incident(orjson.dumps(cap("s-1")))
    first = await intake.report(incident, QINGPU)
    again = await intake.report(incident, QINGPU)
    assert not first.duplicate and again.duplicate
    assert (first.thread, first.version, first.event) == (again.thread, again.version, again.event)
    (row,) = await _outbox(db)
    assert row[0] == "liandong.incidents.v1" and row[1] == "310118,s-1"
    assert orjson.loads(row[2])["id"] == first.event
    with pytest.raises(Conflict):
        await intake.report(parse_incident(orjson.dumps(cap("s-1", severity="Extreme"))), QINGPU)


async def test_concurrent_resends_store_one_incident(db: Runner) -> None:
    intake = _intake(db)
    incident = parse_incident(orjson.dumps(cap("race-1")))
    receipts = await asyncio.gather(*(intake.report(incident, QINGPU) for _ in range(20)))
    assert sum(not r.duplicate for r in receipts) == 1
    assert len({(r.thread, r.version, r.event) for r in receipts}) == 1
    assert len(await _outbox(db)) == 1


async def test_concurrent_updates_get_distinct_versions(db: Runner) -> None:
    intake = _intake(db)
    sent = "2026-07-01T08:30:00+08:00"
    await intake.report(parse_incident(orjson.dumps(cap("v-0"))), QINGPU)
    updates = [
        parse_incident(
            orjson.dumps(cap(f"v-{i}", msg_type="Update", references=f"310118,v-0,{sent}"))
        )
        for i in range(1, 13)
    ]
    receipts = await asyncio.gather(*(intake.report(u, QINGPU) for u in updates))
    assert sorted(r.version for r in receipts) == list(range(2, 14))
    assert {r.thread for r in receipts} == {"310118,v-0"}
    versions = await db.run(lambda tx: incident_store.thread_versions(tx.conn, "310118,v-0"))
    assert [v.version for v in versions] == list(range(1, 14))


def _task(target: str = "320509", n: int = 0) -> Task:
    return Task(
        id=derived_id("pb", "1", "310118,s-1", "step", target, str(n)),
        incident="310118,s-1",
        sender="310118",
        target=target,
        action_zh="采样",
        action_en="Sample",
        response="acknowledge",
        issued="2026-07-01T00:30:00.000Z",
        due="2026-07-01T01:00:00.000Z",
        lane=Lane.ACTUAL,
        why=Why(
            playbook="pb",
            version=1,
            step="step",
            conditions=[],
            agreement="a",
            clause="1",
            cause="c",
        ),
    )


async def test_tasks_insert_once_and_move_only_for_their_target(db: Runner) -> None:
    task = _task()
    inserted = await asyncio.gather(
        *(db.run(lambda tx: task_store.insert_task(tx.conn, task, 1, 1)) for _ in range(10))
    )
    assert inserted.count(True) == 1
    service = TaskService(db, Outbox(SystemClock()), SystemClock())
    with pytest.raises(NotAllowed):
        await service.move(task.id, TaskState.ACKNOWLEDGED, actor="330421", by="jiashan")
    assert (await service.get(task.id)).state is TaskState.ISSUED
    moved = await service.move(task.id, TaskState.ACKNOWLEDGED, actor="320509", by="wujiang")
    assert moved.state is TaskState.ACKNOWLEDGED
    with pytest.raises(Conflict):
        await service.move(task.id, TaskState.DONE, actor="320509", by="wujiang")
    listed = await db.run(lambda tx: task_store.list_tasks(tx.conn, target="320509"))
    assert [t.state for t in listed] == [TaskState.ACKNOWLEDGED]
    assert len(await _outbox(db)) == 1  # one task.acknowledged


async def test_racing_answers_to_one_task_have_one_winner(db: Runner) -> None:
    """Accept and decline sent at the same moment, many times: one transition happens, one
    event is emitted, every other caller is told the task has moved on (409), none sees 5xx."""
    task = _task(n=7)
    await db.run(lambda tx: task_store.insert_task(tx.conn, task, 1, 1))
    service = TaskService(db, Outbox(SystemClock()), SystemClock())
    await service.move(task.id, TaskState.ACKNOWLEDGED, actor="320509", by="wujiang")
    answers = [TaskState.ACCEPTED, TaskState.DECLINED] * 10
    results = await asyncio.gather(
        *(service.move(task.id, s, actor="320509", by="wujiang") for s in answers),
        return_exceptions=True,
    )
    final = (await service.get(task.id)).state
    assert final in (TaskState.ACCEPTED, TaskState.DECLINED)
    for state, result in zip(answers, results, strict=True):
        if state is final:  # the winner, or a repeat of the winning answer: same task back
            assert isinstance(result, Task) and result.state is final, result
        else:
            assert isinstance(result, Conflict), result
    events = [orjson.loads(v)["type"] for _, _, v in await _outbox(db)]
    assert events == ["task.acknowledged", f"task.{final.value}"]


async def test_adapter_credentials(db: Runner) -> None:
    from hub.intake.credentials import token_digest

    token = await db.run(lambda tx: create_adapter(tx.conn, "wujiang", "320509", "now"))
    found = await db.run(lambda tx: adapter_by_token(tx.conn, token_digest(token)))
    assert found == AdapterCredential("wujiang", "320509")
    with pytest.raises(Conflict, match="already exists"):
        await db.run(lambda tx: create_adapter(tx.conn, "wujiang", "320509", "now"))
