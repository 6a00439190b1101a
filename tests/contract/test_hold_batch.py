"""Stock requests decided together (``hub/registry/hold_batch.py``), on SQLite and PostgreSQL.

Each request of a batch sees what the ones before it took (stock, the partner's daily total);
a retried request gets its first answer; one request's error spoils none of the others; and a
balance that moved between the batch's read and its write makes the whole batch retry, never
oversell. The PostgreSQL pipeline that sends a batch's statements together raises a failing
statement as SQLAlchemy would (the retry rules read its SQLSTATE).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy.exc import DBAPIError

from hub.clock import FixedClock
from hub.errors import ConcurrentUpdate, NotFound
from hub.registry import hold_batch, ledger
from hub.registry.depots import list_depots, save_depot
from hub.registry.holds import Hold, HoldState
from hub.registry.ledger import Entry, EntryKind
from hub.registry.service import Answer, Registry, StockRequest
from hub.store.db import Runner, Tx
from hub.store.outbox import Outbox
from hub.store.postgres import _wrapped, sqlstate
from hub.store.sql import pipeline
from tests.contract.test_registry import AGREEMENT, JIASHAN, REGION, T0


@pytest.fixture
async def db(opener: Callable[[], Any]) -> Any:
    """The contract database with the Jiashan depot saved."""
    database = await opener()
    await database.run(lambda tx: save_depot(tx.conn, JIASHAN))
    return database


def _registry(db: Runner) -> Registry:
    clock = FixedClock(T0)
    return Registry(db, Outbox(clock), clock, REGION)


def _ask(
    n: int | str, quantity: int, depot: str = JIASHAN.id, item: str = "sandbag"
) -> StockRequest:
    return StockRequest(f"req-{n}", depot, item, quantity, "320509", AGREEMENT, "wujiang")


async def _stock(reg: Registry, quantity: int) -> None:
    await reg.record(Entry(JIASHAN.id, "sandbag", EntryKind.RECEIPT, quantity, "jiashan", T0))


async def _batch(db: Runner, reg: Registry, reqs: list[StockRequest]) -> list[Any]:
    return list(await db.run(lambda tx: reg._requests_in(tx, reqs)))


async def _event_types(db: Runner) -> list[str]:
    rows = await db.run(
        lambda tx: tx.conn.execute("SELECT value FROM outbox ORDER BY id").fetchall()
    )
    return [orjson.loads(bytes(r[0]))["type"] for r in rows]


async def test_each_request_sees_those_before_it(db: Runner) -> None:
    reg = _registry(db)
    await _stock(reg, 100)  # floor 30 % → 70 shareable; one request at most 35
    answers = await _batch(db, reg, [_ask(1, 30), _ask(2, 30), _ask(3, 15)])
    assert [a.hold is not None for a in answers] == [True, True, False]
    assert "10 shareable, 15 asked" in answers[2].refusal
    (balance,) = await db.run(lambda tx: ledger.balances(tx.conn))
    assert (balance.on_hand, balance.held) == (100, 60)
    assert await db.run(lambda tx: ledger.derive(tx.conn)) == [balance]
    taken = await db.run(lambda tx: tx.conn.execute("SELECT quantity FROM daily_shared").fetchall())
    assert [int(r[0]) for r in taken] == [60]
    assert await _event_types(db) == [
        "stock.received", "stock.held", "stock.held", "stock.refused",
    ]  # fmt: skip


async def test_a_retried_request_gets_its_first_answer(db: Runner) -> None:
    reg = _registry(db)
    await _stock(reg, 1000)
    first, again = await _batch(db, reg, [_ask(1, 200), _ask(1, 200)])
    assert first.hold is not None and again.hold == first.hold
    (later,) = await _batch(db, reg, [_ask(1, 200)])
    assert later.hold == first.hold
    (balance,) = await db.run(lambda tx: ledger.balances(tx.conn))
    assert balance.held == 200


async def test_one_requests_error_spoils_no_other(db: Runner) -> None:
    reg = _registry(db)
    await _stock(reg, 1000)
    answers = await _batch(
        db, reg, [_ask(1, 10, depot="nowhere"), _ask(2, 10, item="unobtainium"), _ask(3, 10)]
    )
    assert isinstance(answers[0], NotFound) and "nowhere" in str(answers[0])
    assert isinstance(answers[1], ValueError) and "unknown item 'unobtainium'" in str(answers[1])
    assert isinstance(answers[2], Answer) and answers[2].hold is not None
    assert answers[2].hold.state is HoldState.COMMITTED  # 10 ≤ the auto-commit threshold
    with pytest.raises(NotFound):
        await reg.request(_ask(4, 10, depot="nowhere"))


async def test_stock_moved_meanwhile_makes_the_batch_retry(db: Runner) -> None:
    reg = _registry(db)
    await _stock(reg, 100)
    seen: list[Exception] = []

    def moved_between_read_and_write(tx: Tx) -> None:
        _, _, snap = hold_batch.Snapshot.read(
            tx.conn, "2026-07-01", {"h"}, {JIASHAN.id}, {"sandbag"}, {"320509"}
        )
        tx.conn.execute("UPDATE balances SET held = held + 1")  # another transaction's hold
        hold = Hold(
            "h", JIASHAN.id, "sandbag", 5, "330421", "320509", "r", AGREEMENT, "5",
            HoldState.HELD, "2026-07-01", T0, None, "wujiang",
        )  # fmt: skip
        snap.take(hold, [hold.entry(EntryKind.HOLD, "wujiang", T0)])
        try:
            snap.write(tx.conn)
        except ConcurrentUpdate as exc:  # what db.run retries; here: roll back, do not retry
            seen.append(exc)
            raise LookupError("rolled back") from exc

    with pytest.raises(LookupError):
        await db.run(moved_between_read_and_write)
    assert len(seen) == 1 and "stock moved" in str(seen[0])
    (balance,) = await db.run(lambda tx: ledger.balances(tx.conn))
    assert (balance.on_hand, balance.held) == (100, 0)
    assert await db.run(lambda tx: tx.conn.execute("SELECT id FROM holds").fetchall()) == []


async def test_concurrent_requests_share_batches_and_never_oversell(db: Runner) -> None:
    reg = _registry(db)
    await _stock(reg, 1000)  # 700 shareable; 200 asks of 5 = 1,000: 140 granted
    answers = await asyncio.gather(*(reg.request(_ask(n, 5)) for n in range(200)))
    assert sum(a.hold is not None for a in answers) == 140
    (balance,) = await db.run(lambda tx: ledger.balances(tx.conn))
    assert (balance.on_hand, balance.held) == (1000, 700)
    assert await db.run(lambda tx: ledger.derive(tx.conn)) == [balance]


async def test_a_failing_statement_in_a_pipeline_is_the_jobs_failure(db: Runner) -> None:
    def clash(tx: Tx) -> None:
        with pipeline(tx.conn):
            tx.conn.execute(
                "INSERT INTO depots (id, jurisdiction, name_zh, name_en, lat, lon, demo) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (JIASHAN.id, "330421", "x", "x", 30.0, 120.0, 0),
            )

    # SQLite: the driver's IntegrityError. PostgreSQL: a unique violation (23505) is retried as
    # a lost race would be and, as it persists, answered Unavailable naming the SQLSTATE.
    with pytest.raises(Exception, match=r"UNIQUE constraint failed|SQLSTATE 23505"):
        await db.run(clash)
    assert [d.id for d in await db.run(lambda tx: list_depots(tx.conn))] == [JIASHAN.id]


def test_sqlstate_of_a_wrapped_pipeline_error() -> None:
    import psycopg.errors

    wrapped = _wrapped(psycopg.errors.UniqueViolation("duplicate key"))
    assert isinstance(wrapped, DBAPIError)
    assert sqlstate(wrapped) == "23505"
