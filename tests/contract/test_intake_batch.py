"""Reports written together (``IntakeService.accept_many_in``), on SQLite and PostgreSQL.

Each report of a batch sees those before it (a resend is a duplicate, a changed resend a
conflict, an Update finds the Alert's thread); one report's conflict spoils none of the others;
rows and events keep the reports' order however many statements carry them. Also the multi-row
statements underneath (``sql.insert_values``) and the ``Batcher`` that gathers the reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from hub.clock import SystemClock
from hub.errors import Conflict, Unavailable
from hub.intake.service import IntakeService, Receipt, _render, parse_incident
from hub.model.incident import Incident
from hub.region import load_region
from hub.store import incidents as incident_store
from hub.store import tasks as task_store
from hub.store.adapters import AdapterCredential
from hub.store.batching import Batcher
from hub.store.db import Runner, Tx
from hub.store.outbox import Outbox
from hub.store.sql import ROWS_PER_STATEMENT
from tests.factories import cap

QINGPU = AdapterCredential("qingpu", "310118")
SENT = "2026-07-01T08:30:00+08:00"


def _intake(db: Runner) -> IntakeService:
    return IntakeService(db, Outbox(SystemClock()), SystemClock(), load_region())


def _incident(identifier: str, **fields: Any) -> Incident:
    return parse_incident(orjson.dumps(cap(identifier, **fields)))


async def _many(db: Runner, intake: IntakeService, incidents: Sequence[Incident]) -> list[Any]:
    reports = [(i, QINGPU, _render(i)) for i in incidents]
    return list(await db.run(lambda tx: intake.accept_many_in(tx, reports)))


async def _events(db: Runner) -> list[tuple[str | None, str]]:
    def read(tx: Tx) -> list[tuple[str | None, str]]:
        rows = tx.conn.execute("SELECT key, value FROM outbox ORDER BY id").fetchall()
        return [(k, orjson.loads(bytes(v))["data"]["incident"]["identifier"]) for k, v in rows]

    return await db.run(read)


async def test_each_report_of_a_batch_sees_those_before_it(db: Runner) -> None:
    intake = _intake(db)
    answers = await _many(
        db,
        intake,
        [
            _incident("a"),
            _incident("a"),  # a resend
            _incident("a", severity="Extreme"),  # changed content, same identifier
            _incident("a-2", msg_type="Update", references=f"310118,a,{SENT}"),
            _incident("b"),
            _incident("b-2", msg_type="Update", references=f"310118,b,{SENT}"),
            _incident("c"),
        ],
    )
    first, again, changed, update_a, b, update_b, c = answers
    assert isinstance(first, Receipt) and not first.duplicate and first.version == 1
    assert isinstance(again, Receipt) and again.duplicate and again.event == first.event
    assert isinstance(changed, Conflict) and "'a'" in str(changed)
    assert (update_a.thread, update_a.version) == ("310118,a", 2)
    assert (b.thread, b.version, update_b.thread, update_b.version) == (
        "310118,b",
        1,
        "310118,b",
        2,
    )
    assert not c.duplicate
    assert await _events(db) == [
        ("310118,a", "a"),
        ("310118,a", "a-2"),
        ("310118,b", "b"),
        ("310118,b", "b-2"),
        ("310118,c", "c"),
    ]
    versions = await db.run(lambda tx: incident_store.thread_versions(tx.conn, "310118,a"))
    assert [(v.identifier, v.version) for v in versions] == [("a", 1), ("a-2", 2)]


async def test_a_batch_sees_earlier_batches_and_threads_named_before_their_alert(
    db: Runner,
) -> None:
    intake = _intake(db)
    # An Update whose Alert never arrived names the thread; the Alert, when it comes, is
    # the thread's next version, as one report alone would be.
    (early,) = await _many(
        db, intake, [_incident("late-2", msg_type="Update", references=f"310118,late,{SENT}")]
    )
    assert (early.thread, early.version) == ("310118,late", 1)
    stored, alert, conflict = await _many(
        db,
        intake,
        [
            _incident("late-2", msg_type="Update", references=f"310118,late,{SENT}"),
            _incident("late"),
            _incident("late-2", msg_type="Update", references=f"310118,x,{SENT}"),
        ],
    )
    assert stored.duplicate and stored.version == 1
    assert (alert.thread, alert.version, alert.duplicate) == ("310118,late", 2, False)
    assert isinstance(conflict, Conflict)


async def test_a_batch_larger_than_one_statement_keeps_its_order(db: Runner) -> None:
    intake = _intake(db)
    n = 2 * ROWS_PER_STATEMENT + 17
    answers = await _many(db, intake, [_incident(f"bulk-{i}") for i in range(n)])
    assert all(isinstance(a, Receipt) and not a.duplicate for a in answers)
    assert [ident for _, ident in await _events(db)] == [f"bulk-{i}" for i in range(n)]
    again = await _many(db, intake, [_incident(f"bulk-{i}") for i in range(n)])
    assert all(a.duplicate for a in again)
    assert len(await _events(db)) == n


async def test_concurrent_reports_are_answered_each_as_alone(db: Runner) -> None:
    intake = _intake(db)
    incidents = [_incident(f"gather-{i % 40}") for i in range(120)]
    incidents.append(_incident("gather-0", severity="Extreme"))
    results = await asyncio.gather(
        *(intake.report(i, QINGPU) for i in incidents), return_exceptions=True
    )
    receipts = [r for r in results if isinstance(r, Receipt)]
    assert len(receipts) == 120 and isinstance(results[-1], Conflict)
    assert sum(not r.duplicate for r in receipts) == 40
    assert len({r.event for r in receipts}) == 40
    assert len(await _events(db)) == 40


async def test_task_rows_given_twice_are_new_once(db: Runner) -> None:
    rows = [(f"t-{i % 3}", "310118,s-1", "320509", 1_000, 0, b'{"id": "t"}') for i in range(7)] + [
        (f"t-{i}", "310118,s-1", "320509", 1_000, 0, b"{}") for i in range(3, 3 + 450)
    ]
    new = await db.run(lambda tx: task_store.insert_rows(tx.conn, rows))
    assert new == [True, True, True, False, False, False, False] + [True] * 450
    again = await db.run(lambda tx: task_store.insert_rows(tx.conn, rows[:5]))
    assert again == [False] * 5
    assert await db.run(lambda tx: task_store.insert_rows(tx.conn, [])) == []


class _Failing:
    """A ``Runner`` whose every job fails as a database away would (no database needed)."""

    async def run(self, fn: Any) -> Any:
        raise Unavailable("database unreachable; try again")


@pytest.mark.parametrize("opener", ["sqlite"], indirect=True)
async def test_batcher_answers_each_request_and_gathers_those_that_wait(db: Runner) -> None:
    batches: list[list[int]] = []

    def write_in(tx: Tx, requests: Sequence[int]) -> list[int | Exception]:
        batches.append(list(requests))
        return [ValueError(f"odd {r}") if r % 2 else r * 10 for r in requests]

    batcher = Batcher[int, int](db, write_in, name="test", max_batch=4)
    results = await asyncio.gather(*(batcher.submit(r) for r in range(10)), return_exceptions=True)
    assert [r if isinstance(r, int) else str(r) for r in results] == [
        0, "odd 1", 20, "odd 3", 40, "odd 5", 60, "odd 7", 80, "odd 9",
    ]  # fmt: skip
    # All ten arrived before the first batch was taken: batches of at most four, in order.
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

    def wrong(tx: Tx, requests: Sequence[int]) -> list[int | Exception]:
        return [1]

    with pytest.raises(AssertionError, match="2 answers to 1"):
        await Batcher[int, int](db, lambda tx, r: [1, 2], name="count").submit(1)
    await Batcher[int, int](db, wrong, name="right").submit(1)

    failing = Batcher[int, int](_Failing(), write_in, name="away")
    results = await asyncio.gather(*(failing.submit(r) for r in range(3)), return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
