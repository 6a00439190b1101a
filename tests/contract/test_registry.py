"""The resource registry on SQLite and PostgreSQL: the ledger and its balances, holds that
expire, sharing refusals naming the clause, and no oversell under 1,000 concurrent holds.

The clock is a ``FixedClock`` the tests move; the agreement is the demonstration zone's
(Qingpu, Wujiang, Jiashan; resources clause 5; floor 30 %, auto-commit 10 %, per request 50 %).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from hub.clock import FixedClock
from hub.errors import InvalidInput
from hub.model.resources import StockChanged, StockRefused
from hub.region import load_region
from hub.registry import ledger
from hub.registry.depots import Depot, save_depot
from hub.registry.holds import HoldState
from hub.registry.ledger import Entry, EntryKind, Refused
from hub.registry.service import DEFAULT_HOLD_MS, Registry, StockRequest
from hub.store.db import Runner, Tx
from hub.store.outbox import Outbox

T0 = 1_782_864_000_000  # 2026-07-01T00:00:00Z
AGREEMENT = "yrd-demo-zone-emergency-linkage"
JIASHAN = Depot("jiashan-1", "330421", "嘉善县防汛物资仓库", "Jiashan flood depot", 30.84, 120.92)
REGION = load_region()


@pytest.fixture
async def db(opener: Callable[[], Any]) -> Any:
    database = await opener()
    await database.run(lambda tx: save_depot(tx.conn, JIASHAN))
    return database


def _registry(db: Runner, clock: FixedClock) -> Registry:
    return Registry(db, Outbox(clock), clock, REGION)


async def _stock(reg: Registry, quantity: int, item: str = "sandbag") -> None:
    await reg.record(Entry(JIASHAN.id, item, EntryKind.RECEIPT, quantity, "jiashan", T0))


async def _events(db: Runner) -> list[dict[str, Any]]:
    def read(tx: Tx) -> list[bytes]:
        rows = tx.conn.execute("SELECT value FROM outbox ORDER BY id").fetchall()
        return [bytes(r[0]) for r in rows]

    return [orjson.loads(v) for v in await db.run(read)]


def _args(quantity: int) -> tuple[str, str, int, str]:
    return JIASHAN.id, "sandbag", quantity, "320509"


def _ask(n: int | str, quantity: int, partner: str = "320509") -> StockRequest:
    return StockRequest(f"req-{n}", JIASHAN.id, "sandbag", quantity, partner, AGREEMENT, "wujiang")


async def test_ledger_balances_and_rebuild(db: Runner) -> None:
    reg = _registry(db, FixedClock(T0))
    await _stock(reg, 1000)
    await reg.record(Entry(JIASHAN.id, "sandbag", EntryKind.CONSUMPTION, 150, "jiashan", T0))
    await reg.record(
        Entry(JIASHAN.id, "sandbag", EntryKind.ADJUSTMENT, -20, "jiashan", T0, reason="count")
    )
    with pytest.raises(InvalidInput, match="reason"):
        await reg.record(Entry(JIASHAN.id, "sandbag", EntryKind.ADJUSTMENT, 5, "jiashan", T0))
    with pytest.raises(Refused):
        await reg.record(Entry(JIASHAN.id, "sandbag", EntryKind.CONSUMPTION, 831, "jiashan", T0))
    granted = await reg.request(_ask(1, 50))
    assert granted.hold is not None and granted.hold.state is HoldState.COMMITTED  # ≤ 10 %
    await reg.dispatch(granted.hold.id, "jiashan")
    pending = await reg.request(_ask(2, 200))
    assert pending.hold is not None and pending.hold.state is HoldState.HELD
    live = await db.run(lambda tx: ledger.balances(tx.conn))
    assert [(b.on_hand, b.held) for b in live] == [(780, 200)]
    derived = await db.run(lambda tx: ledger.derive(tx.conn))
    assert derived == live
    await db.run(lambda tx: tx.conn.execute("UPDATE balances SET on_hand = 5, held = 0"))
    assert await db.run(lambda tx: ledger.rebuild(tx.conn)) == live
    assert await db.run(lambda tx: ledger.balances(tx.conn)) == live
    trail = await db.run(lambda tx: ledger.entries(tx.conn, JIASHAN.id))
    assert [r.entry.kind for r in trail] == [
        EntryKind.RECEIPT, EntryKind.CONSUMPTION, EntryKind.ADJUSTMENT, EntryKind.HOLD,
        EntryKind.COMMIT, EntryKind.DISPATCH, EntryKind.HOLD,
    ]  # fmt: skip
    hold = trail[3].entry
    assert (hold.request, hold.partner, hold.agreement, hold.clause) == (
        "req-1", "320509", AGREEMENT, "5"
    )  # fmt: skip
    types = [e["type"] for e in await _events(db)]
    assert types == [
        "stock.received", "stock.consumed", "stock.adjusted", "stock.held", "stock.committed",
        "stock.dispatched", "stock.held",
    ]  # fmt: skip
    StockChanged.model_validate((await _events(db))[3]["data"])


async def test_hold_expiry_returns_stock(db: Runner) -> None:
    clock = FixedClock(T0)
    reg = _registry(db, clock)
    await _stock(reg, 1000)
    answer = await reg.request(_ask("e", 300))
    assert answer.hold is not None and answer.hold.state is HoldState.HELD
    assert await reg.expire_due() == []
    clock.advance(DEFAULT_HOLD_MS)
    expired = await reg.expire_due()
    assert [r.entry.kind for r in expired] == [EntryKind.HOLD_EXPIRED]
    (balance,) = await db.run(lambda tx: ledger.balances(tx.conn))
    assert (balance.on_hand, balance.held) == (1000, 0)
    assert await reg.expire_due() == []
    assert await db.run(lambda tx: ledger.derive(tx.conn)) == [balance]
    # The expired hold gave back its share of the day too: the same amount may be asked again.
    again = await reg.request(_ask("e2", 300))
    assert again.hold is not None


async def test_refusals_name_the_clause(db: Runner) -> None:
    reg = _registry(db, FixedClock(T0))
    await _stock(reg, 10_000)
    await db.run(lambda tx: ledger.set_floor(tx.conn, JIASHAN.id, "sandbag", 2_000))
    big = await reg.request(_ask(1, 7_500))
    assert big.hold is None
    assert big.refusal == (
        f"Jiashan County keeps a floor of 3,000 sandbags under clause 5 of {AGREEMENT}; "
        "7,000 shareable, 7,500 asked"
    )
    capped = await reg.request(_ask(2, 4_000))
    assert (
        capped.refusal is not None and "caps a single request at 3,500 sandbags" in capped.refusal
    )
    assert (await reg.request(_ask(3, 3_500))).hold is not None
    # Under the Taihu agreement (floor 40 %: lendable 6,000, 30 % a request, 60 % a day) Wujiang
    # has 100 left today: the 3,500 it took under the other agreement count.
    taihu = "taihu-basin-flood-control-coordination"
    over = StockRequest("req-5", JIASHAN.id, "sandbag", 101, "320509", taihu, "wujiang")
    day = await reg.request(over)
    assert day.refusal == (
        f"Wujiang District may take at most 3,600 sandbags a day from Jiashan County under "
        f"clause 4 of {taihu}; 3,500 taken today, 100 left, 101 asked"
    )
    assert (await reg.request(StockRequest("req-5b", *_args(100), taihu, "w"))).hold is not None
    # Jiashan's floor holds for everyone, whoever asks: 3,400 shareable under clause 5.
    qingpu = await reg.request(_ask(6, 3_401, partner="310118"))
    assert qingpu.refusal is not None and "3,400 shareable, 3,401 asked" in qingpu.refusal
    stranger = await reg.request(_ask(7, 1, partner="310112"))
    assert stranger.refusal is not None and "does not bind both" in stranger.refusal
    refused = [e for e in await _events(db) if e["type"] == "stock.refused"]
    assert len(refused) == 5
    first = StockRefused.model_validate(refused[0]["data"])
    assert (first.agreement, first.clause, first.request) == (AGREEMENT, "5", "req-1")
    assert (await reg.request(_ask(3, 3_500))).hold is not None  # a retry: the same hold back


async def test_no_oversell_under_1000_concurrent_holds(db: Runner) -> None:
    """1,000 holds of one unit each, all at once, against 100 lendable units: exactly 100 are
    granted, the balance shows 100 held, and the ledger agrees."""
    from hub.model.region import SafetyFloor, Sharing

    base = REGION.agreement(AGREEMENT)
    generous = base.model_copy(
        update={
            "sharing": Sharing(
                safety_floor=SafetyFloor(policy="keep_fraction", fraction=0.0),
                auto_commit_threshold=1.0,
                per_request_cap=1.0,
                per_day_cap=1.0,
            )
        }
    )
    clock = FixedClock(T0)
    reg = Registry(db, Outbox(clock), clock, REGION, agreements=[generous])
    await _stock(reg, 100)
    partners = ["320509", "310118"]
    answers = await asyncio.gather(
        *(reg.request(_ask(f"c{n}", 1, partners[n % 2])) for n in range(1000))
    )
    granted = [a for a in answers if a.hold is not None]
    assert len(granted) == 100
    assert all(a.refusal is not None and "0 shareable" in a.refusal for a in answers if not a.hold)
    (balance,) = await db.run(lambda tx: ledger.balances(tx.conn))
    assert (balance.on_hand, balance.held) == (100, 100)
    assert await db.run(lambda tx: ledger.derive(tx.conn)) == [balance]
