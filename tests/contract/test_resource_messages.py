"""The EDXL-RM lifecycle on real stock, on SQLite and PostgreSQL: every step moves the line and
its hold together, each invariant refuses the move with nothing changed, and free stock falling
under its minimum level is announced once.

Wujiang (320509) asks Jiashan's depot (330421) under the demonstration zone's agreement (clause
5: floor 30 %, auto-commit 10 %, per request 50 % of lendable stock).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.clock import FixedClock
from hub.errors import Conflict, InvalidInput, NotAllowed
from hub.model.events import decode
from hub.model.resources import STOCK_EVENT_TYPES, ResourceLineMoved, StockChanged, StockLow
from hub.region import load_region
from hub.registry import ledger
from hub.registry.depots import Depot, save_depot
from hub.registry.exchange import LineAsk, Move, ResourceExchange, Step
from hub.registry.holds import HoldState
from hub.registry.ledger import Entry, EntryKind
from hub.registry.rm_state import LineState, ResponseType
from hub.registry.service import DEFAULT_HOLD_MS, PlanNoLongerHolds, Registry
from hub.store.db import Runner, Tx
from hub.store.outbox import Outbox

T0 = 1_782_864_000_000  # 2026-07-01T00:00:00Z
AGREEMENT = "yrd-demo-zone-emergency-linkage"
WUJIANG, JIASHAN, QINGPU, JIAXING = "320509", "330421", "310118", "330400"
DEPOT = Depot("jiashan-1", JIASHAN, "嘉善县防汛物资仓库", "Jiashan flood depot", 30.84, 120.92)
WATER = Depot("jiashan-2", JIASHAN, "嘉善县第二仓库", "Jiashan second depot", 30.85, 120.93)
NEEDED = "2026-07-01T12:00:00+08:00"
STOCK_TYPES = set(STOCK_EVENT_TYPES.values())
ACCEPT, DECLINE, PROVISIONAL = ResponseType.ACCEPT, ResponseType.DECLINE, ResponseType.PROVISIONAL


@pytest.fixture
async def db(opener: Callable[[], Any]) -> Any:
    database = await opener()
    for depot in (DEPOT, WATER):
        await database.run(lambda tx, d=depot: save_depot(tx.conn, d))
    return database


async def _setup(db: Runner, stock: int = 1000) -> tuple[Registry, ResourceExchange, FixedClock]:
    clock = FixedClock(T0)
    reg = Registry(db, Outbox(clock), clock, load_region())
    await reg.record(Entry(DEPOT.id, "sandbag", EntryKind.RECEIPT, stock, "jiashan", T0))
    return reg, ResourceExchange(reg), clock


def _ask(quantity: int, depot: str = DEPOT.id, item: str = "sandbag") -> LineAsk:
    return LineAsk(depot, item, quantity, AGREEMENT, "5", NEEDED, "Lili town flood post")


async def _balance(db: Runner) -> tuple[int, int]:
    b = await db.run(lambda tx: ledger.get_balance(tx.conn, DEPOT.id, "sandbag"))
    return b.on_hand, b.held


async def _events(db: Runner, type_: str) -> list[Any]:
    def read(tx: Tx) -> list[bytes]:
        rows = tx.conn.execute("SELECT value FROM outbox ORDER BY id").fetchall()
        return [bytes(r[0]) for r in rows]

    found = [decode(v) for v in await db.run(read)]
    return [e.payload for e in found if e.envelope.type == type_]


async def test_the_whole_life_of_a_request_moves_its_stock(db: Runner) -> None:
    reg, rm, _ = await _setup(db)
    (line,) = await rm.request(WUJIANG, "r-1", [_ask(300)], "wujiang-duty")
    assert (line.line.state, line.line.owner, line.line_no) == (LineState.REQUESTED, JIASHAN, 1)
    assert await _balance(db) == (1000, 300)
    lid = line.line.id

    async def step(step: Step, who: str, **kw: Any) -> Any:
        return (await rm.move(lid, Move(step, **kw), who, f"{who}-duty")).line

    await step(Step.RESPOND, JIASHAN, answer=PROVISIONAL, quantity=250)
    assert await _balance(db) == (1000, 300)  # held whole until the answer is settled
    with pytest.raises(Conflict, match="provisional answer must become accept or decline"):
        await step(Step.REQUISITION, WUJIANG)
    await step(Step.RESPOND, JIAXING, answer=ACCEPT, quantity=200)  # the city speaks for Jiashan
    await step(Step.REQUISITION, WUJIANG)
    with pytest.raises(InvalidInput, match="300 requested and 200 accepted"):
        await step(Step.COMMIT, JIASHAN, quantity=250)
    committed = await step(Step.COMMIT, JIASHAN, quantity=150)
    assert (committed.state, committed.committed) == (LineState.COMMITTED, 150)
    assert (await reg.get_hold(lid)).state is HoldState.COMMITTED
    assert await _balance(db) == (1000, 150)
    with pytest.raises(Conflict, match="no release before arrival"):
        await step(Step.RELEASE, WUJIANG)
    await step(Step.DISPATCH, JIASHAN)
    assert await _balance(db) == (850, 0)
    await step(Step.ARRIVE, WUJIANG)
    with pytest.raises(NotAllowed, match="only 330421 may request a return"):
        await step(Step.REQUEST_RETURN, WUJIANG)
    await step(Step.RELEASE, WUJIANG)
    await step(Step.REQUEST_RETURN, JIASHAN)
    done = await step(Step.RETURNED, JIASHAN, quantity=120)  # 30 bags were used up
    assert done.state is LineState.RETURNED
    assert await _balance(db) == (970, 0)
    assert await db.run(lambda tx: ledger.derive(tx.conn)) == await db.run(
        lambda tx: ledger.balances(tx.conn)
    )
    moved: list[ResourceLineMoved] = await _events(db, "resource.line_moved")
    assert [(m.previous, m.state, m.message) for m in moved] == [
        (None, "requested", "RequestResource"),
        ("requested", "provisional", "ResponseToRequestResource"),
        ("provisional", "accepted", "ResponseToRequestResource"),
        ("accepted", "requisitioned", "RequisitionResource"),
        ("requisitioned", "committed", "CommitResource"),
        ("committed", "en_route", "ReportResourceDeploymentStatus"),
        ("en_route", "arrived", "ReportResourceDeploymentStatus"),
        ("arrived", "released", "ReleaseResource"),
        ("released", "return_requested", "RequestReturn"),
        ("return_requested", "returned", "ReportResourceDeploymentStatus"),
    ]
    assert moved[0].request == "r-1" and moved[-1].committed == 150

    # The registry builds stock.* payloads without the model: exactly what the model gives.
    def raw(tx: Tx) -> list[bytes]:
        return [bytes(r[0]) for r in tx.conn.execute("SELECT value FROM outbox").fetchall()]

    stock = [e for e in map(orjson.loads, await db.run(raw)) if e["type"] in STOCK_TYPES]
    assert len(stock) == 7
    for event in stock:
        model = StockChanged.model_validate(event["data"])
        assert model.model_dump(mode="json", exclude_none=True) == event["data"]
    trail = await db.run(lambda tx: ledger.entries(tx.conn, DEPOT.id))
    assert [r.entry.kind.value for r in trail] == [
        "receipt", "hold", "hold_released", "hold_released", "commit", "dispatch", "return",
    ]  # fmt: skip


async def test_another_jurisdiction_changes_nothing(db: Runner) -> None:
    _, rm, _ = await _setup(db)
    (line,) = await rm.request(WUJIANG, "r-2", [_ask(300)], "wujiang-duty")
    for move, who in [
        (Move(Step.RESPOND, ACCEPT, 300), QINGPU),
        (Move(Step.RESPOND, ACCEPT, 300), WUJIANG),  # the requester cannot answer itself
        (Move(Step.REQUISITION), JIASHAN),
    ]:
        with pytest.raises(NotAllowed):
            await rm.move(line.line.id, move, who, "x")
    assert (await rm.line(line.line.id)) == line
    assert await _balance(db) == (1000, 300)
    assert len(await _events(db, "resource.line_moved")) == 1


async def test_decline_gives_the_stock_back_and_auto_commit_starts_accepted(db: Runner) -> None:
    reg, rm, _ = await _setup(db)
    await reg.record(Entry(WATER.id, "water-pump", EntryKind.RECEIPT, 100, "jiashan", T0))
    lines = await rm.request(
        WUJIANG, "r-3", [_ask(50), _ask(10, WATER.id, "water-pump")], "wujiang-duty"
    )
    assert [(s.line.state, s.line.answered) for s in lines] == [
        (LineState.ACCEPTED, 50), (LineState.REQUESTED, 0)
    ]  # fmt: skip  # 50 ≤ 10 % of 700 lendable sandbags: committed by the policy
    assert (await reg.get_hold(lines[0].line.id)).state is HoldState.COMMITTED
    declined = await rm.move(lines[1].line.id, Move(Step.RESPOND, DECLINE, 0), JIASHAN, "j")
    assert declined.line.state is LineState.DECLINED
    assert (await reg.get_hold(lines[1].line.id)).state is HoldState.RELEASED
    pumps = await db.run(lambda tx: ledger.get_balance(tx.conn, WATER.id, "water-pump"))
    assert (pumps.on_hand, pumps.held) == (100, 0)
    with pytest.raises(Conflict, match="declined"):
        await rm.move(lines[1].line.id, Move(Step.REQUISITION), WUJIANG, "w")
    # The same request again gets the same lines; other lines under the same id are refused.
    assert await rm.request(WUJIANG, "r-3", [_ask(50), _ask(10, WATER.id, "water-pump")], "w") == [
        lines[0],
        declined,
    ]
    with pytest.raises(Conflict, match="other lines"):
        await rm.request(WUJIANG, "r-3", [_ask(40)], "w")


async def test_a_request_is_held_whole_or_not_at_all(db: Runner) -> None:
    _, rm, _ = await _setup(db)
    with pytest.raises(PlanNoLongerHolds, match=r"line 2 \(jiashan-2\): .*clause 5"):
        await rm.request(WUJIANG, "r-4", [_ask(100), _ask(5, WATER.id)], "w")
    assert await _balance(db) == (1000, 0)
    assert await rm.lines(WUJIANG, "r-4") == []
    with pytest.raises(InvalidInput, match="not an ISO 8601"):
        await rm.request(WUJIANG, "r-5", [LineAsk(DEPOT.id, "sandbag", 5, AGREEMENT, "5",
                                                   "tomorrow", "x")], "w")  # fmt: skip
    with pytest.raises(InvalidInput, match="own, not a partner's"):
        await rm.request(JIASHAN, "r-6", [_ask(5)], "j")


async def test_a_line_whose_hold_expired_cannot_go_on(db: Runner) -> None:
    reg, rm, clock = await _setup(db)
    (line,) = await rm.request(WUJIANG, "r-7", [_ask(300)], "w")
    await rm.move(line.line.id, Move(Step.RESPOND, ACCEPT, 300), JIASHAN, "j")
    clock.advance(DEFAULT_HOLD_MS)
    assert len(await reg.expire_due()) == 1
    with pytest.raises(Conflict, match="hold is expired"):
        await rm.move(line.line.id, Move(Step.REQUISITION), WUJIANG, "w")
    assert (await rm.line(line.line.id)).line.state is LineState.ACCEPTED
    assert await _balance(db) == (1000, 0)


async def test_low_stock_is_announced_once_when_free_stock_falls_under_the_minimum(
    db: Runner,
) -> None:
    reg, rm, _ = await _setup(db)
    await db.run(lambda tx: ledger.set_minimum(tx.conn, DEPOT.id, "sandbag", 900))
    await reg.record(Entry(DEPOT.id, "sandbag", EntryKind.CONSUMPTION, 50, "jiashan", T0))
    assert await _events(db, "stock.low") == []  # 950 free
    await rm.request(WUJIANG, "r-8", [_ask(60)], "w")  # held: 890 free
    (low,) = await _events(db, "stock.low")
    assert isinstance(low, StockLow)
    assert (low.depot, low.item, low.free, low.minimum) == (DEPOT.id, "sandbag", 890, 900)
    await reg.record(Entry(DEPOT.id, "sandbag", EntryKind.CONSUMPTION, 10, "jiashan", T0))
    assert len(await _events(db, "stock.low")) == 1  # already under: not announced again
    await reg.record(Entry(DEPOT.id, "sandbag", EntryKind.RECEIPT, 100, "jiashan", T0))
    await reg.record(Entry(DEPOT.id, "sandbag", EntryKind.CONSUMPTION, 100, "jiashan", T0))
    assert len(await _events(db, "stock.low")) == 2  # it rose above and fell again
    raw = orjson.loads(orjson.dumps(low.model_dump(mode="json")))
    assert raw["jurisdiction"] == JIASHAN


async def test_the_stock_file_sets_minimum_levels(db: Runner, tmp_path: Path) -> None:
    from hub.registry.csv_import import ImportFailed, import_files

    (tmp_path / "depots.csv").write_text("id,jurisdiction,name_zh,name_en,lat,lon,address,demo\n")
    stock = tmp_path / "stock.csv"
    stock.write_text("depot,item,on_hand,floor,minimum\njiashan-1,sandbag,500,100,400\n")
    region = load_region()
    await db.run(lambda tx: import_files(tx.conn, tmp_path / "depots.csv", stock, region, "t", T0))

    def minimum(tx: Tx) -> int:
        row = tx.conn.execute("SELECT minimum FROM balances WHERE depot = 'jiashan-1'").fetchone()
        return int(row[0])

    assert await db.run(minimum) == 400
    stock.write_text("depot,item,on_hand,floor,minimum\njiashan-1,sandbag,500,100,-1\n")
    with pytest.raises(ImportFailed, match="minimum -1 is negative"):
        await db.run(
            lambda tx: import_files(tx.conn, tmp_path / "depots.csv", stock, region, "t", T0)
        )
