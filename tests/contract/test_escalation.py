"""Deadlines and escalation on SQLite and PostgreSQL: durable, once per rung, restart-proof.

The clock is a ``FixedClock`` moved by the test (the escalator never reads the system time), so
fifteen-minute rungs take no time. The ladder is the real one of the demonstration-zone
agreement (duty liaison 15 min → district command 15 min → city command 30 min → regional
coordinator).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from hub.clock import FixedClock
from hub.engine.deadlines import Escalator
from hub.engine.tasks import TaskService
from hub.model.envelope import Lane, derived_id, format_time
from hub.model.events import TaskUpdated, decode
from hub.model.task import Task, TaskState, Why
from hub.region import load_region
from hub.store import tasks as task_store
from hub.store.db import Runner, Tx
from hub.store.outbox import Outbox

T0 = 1_782_864_000_000  # 2026-07-01T00:00:00Z: the first task's acknowledgement deadline
MIN = 60_000
AGREEMENT = "yrd-demo-zone-emergency-linkage"
LADDER = ["duty_liaison", "district_command", "city_command", "regional_coordinator"]


def _task(n: int, target: str = "320509", due_ms: int = T0) -> Task:
    return Task(
        id=derived_id("escalation-test", str(n)),
        incident=f"310118,esc-{n}",
        sender="310118",
        target=target,
        action_zh="关闭取水口",
        action_en="Close the water intakes",
        response="acknowledge",
        issued=format_time(due_ms - 30 * MIN),
        due=format_time(due_ms),
        lane=Lane.ACTUAL,
        why=Why(
            playbook="pb",
            version=1,
            step="protect-intakes",
            conditions=[],
            agreement=AGREEMENT,
            clause="4",
            cause="e",
        ),
    )


async def _issue(db: Runner, *tasks: Task) -> None:
    def write(tx: Tx) -> None:
        for task in tasks:
            task_store.insert_task(tx.conn, task, _due_ms(task), T0 - 30 * MIN)

    await db.run(write)


def _due_ms(task: Task) -> int:
    from hub.model.envelope import parse_time

    return parse_time(task.due)


async def _escalations(db: Runner) -> list[tuple[str, TaskUpdated]]:
    def read(tx: Tx) -> list[bytes]:
        rows = tx.conn.execute("SELECT value FROM outbox ORDER BY id").fetchall()
        return [bytes(r[0]) for r in rows]

    rows = await db.run(read)
    events = [decode(v) for v in rows]
    return [
        (e.envelope.id, e.payload_as(TaskUpdated))
        for e in events
        if e.envelope.type == "task.escalated"
    ]


def _escalator(db: Runner, clock: FixedClock) -> Escalator:
    return Escalator(db, Outbox(clock), clock, load_region())


async def test_a_silent_target_climbs_the_ladder_once_per_rung(opener: Any) -> None:
    db = await opener()
    clock = FixedClock(T0 - 1)
    await _issue(db, _task(1))
    escalator = _escalator(db, clock)
    assert await escalator.run_once() == 0  # not due yet

    clock.advance(1)
    assert await escalator.run_once() == 1
    assert await escalator.run_once() == 0  # the same deadline is not acted on twice
    clock.advance(15 * MIN - 1)
    assert await escalator.run_once() == 0
    clock.advance(1)
    assert await escalator.run_once() == 1
    clock.advance(15 * MIN)
    assert await escalator.run_once() == 1
    clock.advance(30 * MIN)
    assert await escalator.run_once() == 1
    clock.advance(24 * 60 * MIN)
    assert await escalator.run_once() == 0  # the regional coordinator is the top

    found = await _escalations(db)
    assert [u.level for _, u in found] == LADDER
    assert [u.rung for _, u in found] == [1, 2, 3, 4]
    assert [u.at for _, u in found] == [format_time(T0 + m * MIN) for m in (0, 15, 30, 60)]
    assert found[0][1].contact == "duty.320509@liaison.invalid"
    assert found[0][1].previous is TaskState.ISSUED
    assert all(u.state is TaskState.ESCALATED and u.by == "hub" for _, u in found)
    assert AGREEMENT in found[0][1].reason and "clause 4" in found[0][1].reason
    assert len({event_id for event_id, _ in found}) == 4
    stored = await db.run(lambda tx: task_store.get_task(tx.conn, _task(1).id))
    assert stored is not None and stored.state is TaskState.ESCALATED


async def test_an_answer_stops_the_clock(opener: Any) -> None:
    db = await opener()
    clock = FixedClock(T0)
    await _issue(db, _task(2))
    escalator = _escalator(db, clock)
    assert await escalator.run_once() == 1  # duty liaison called
    service = TaskService(db, Outbox(clock), clock)
    await service.move(_task(2).id, TaskState.ACKNOWLEDGED, actor="320509", by="wujiang")
    clock.advance(3 * 60 * MIN)
    assert await escalator.run_once() == 0
    assert [u.rung for _, u in await _escalations(db)] == [1]


async def test_deadlines_that_pass_while_no_hub_runs_are_caught_up_after_restart(
    opener: Any,
) -> None:
    """The hub stops with a deadline pending and stays down for two hours: at the next start
    every rung that fell due is called, in order, once, each stamped with its own deadline."""
    db = await opener()
    clock = FixedClock(T0 - 10 * MIN)
    await _issue(db, _task(3), _task(4, target="330421", due_ms=T0 + 20 * MIN))
    assert await _escalator(db, clock).run_once() == 0
    await db.stop()

    clock.advance(2 * 60 * MIN)  # down until T0 + 110 min
    reopened = await opener()
    assert await _escalator(reopened, clock).run_once() == 8
    again = await opener()  # a second restart right after finds nothing left to do
    assert await _escalator(again, clock).run_once() == 0

    found = await _escalations(again)
    by_task: dict[str, list[TaskUpdated]] = {}
    for _, update in found:
        by_task.setdefault(update.task, []).append(update)
    assert [u.level for u in by_task[_task(3).id]] == LADDER
    assert [u.at for u in by_task[_task(4).id]] == [
        format_time(T0 + m * MIN) for m in (20, 35, 50, 80)
    ]


async def test_two_escalators_racing_call_each_rung_once(opener: Any) -> None:
    """Two hub instances share the database and both run an escalator."""
    db = await opener()
    clock = FixedClock(T0 + 3 * 60 * MIN)
    tasks = [_task(100 + n) for n in range(20)]
    await _issue(db, *tasks)
    first, second = _escalator(db, clock), _escalator(await opener(), clock)
    counts = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(counts) == 20 * 4
    found = await _escalations(db)
    assert len(found) == 80 and len({event_id for event_id, _ in found}) == 80
    payload = orjson.loads(orjson.dumps([u.model_dump(mode="json") for _, u in found]))
    assert {(p["task"], p["rung"]) for p in payload} == {
        (t.id, r) for t in tasks for r in (1, 2, 3, 4)
    }
