"""ReportResourceDeploymentStatus on real stock, on SQLite and PostgreSQL: a request's dispatched
lines export as EnRoute and its arrived lines as Arrived; an imported report takes the dispatch
step (the stock leaves the depot) or the arrival step, as the party it names, on every line it
names or on none.

Wujiang (320509) asks Jiashan's depots (330421) under the demonstration zone's agreement
(clause 5); Qingpu (310118) is a third party.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.clock import FixedClock
from hub.codecs import edxl_rm
from hub.codecs.edxl_rm import MessageType, RmLine, RmMessage
from hub.errors import Conflict, InvalidInput, NotAllowed
from hub.region import load_region
from hub.registry import ledger
from hub.registry.depots import Depot, save_depot
from hub.registry.exchange import LineAsk, Move, ResourceExchange, Step
from hub.registry.ledger import Entry, EntryKind
from hub.registry.lines import StoredLine
from hub.registry.rm_messages import apply, message_of
from hub.registry.rm_state import LineState, ResponseType
from hub.registry.service import Registry
from hub.runtime import Hub
from hub.store.db import Database, Runner, Tx
from hub.store.outbox import Outbox
from hub.store.postgres import PostgresDatabase

T0 = 1_782_864_000_000  # 2026-07-01T00:00:00Z
AGREEMENT = "yrd-demo-zone-emergency-linkage"
WUJIANG, JIASHAN, QINGPU = "320509", "330421", "310118"
DEPOT = Depot("jiashan-1", JIASHAN, "嘉善县防汛物资仓库", "Jiashan flood depot", 30.84, 120.92)
PUMPS = Depot("jiashan-2", JIASHAN, "嘉善县第二仓库", "Jiashan second depot", 30.85, 120.93)
NEEDED = "2026-07-01T12:00:00+08:00"
SENT = "2026-07-01T14:00:00+08:00"
REPORT = MessageType.REPORT_STATUS


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    database: Any = (
        Database(tmp_path / "hub.db", "NORMAL") if url is None else PostgresDatabase(url)
    )
    await database.start()
    try:
        for depot in (DEPOT, PUMPS):
            await database.run(lambda tx, d=depot: save_depot(tx.conn, d))
        yield database
    finally:
        await database.stop()


async def _committed(db: Runner, client_id: str, *asks: LineAsk) -> ResourceExchange:
    """A request whose lines Jiashan accepted, Wujiang requisitioned and Jiashan committed
    (five sixths of each)."""
    reg = Registry(db, Outbox(FixedClock(T0)), FixedClock(T0), load_region())
    await reg.record(Entry(DEPOT.id, "sandbag", EntryKind.RECEIPT, 1000, "jiashan", T0))
    await reg.record(Entry(PUMPS.id, "water-pump", EntryKind.RECEIPT, 100, "jiashan", T0))
    rm = ResourceExchange(reg)
    for s in await rm.request(WUJIANG, client_id, list(asks), "wujiang-duty"):
        lid, quantity = s.line.id, s.line.quantity
        if s.line.state is LineState.REQUESTED:
            await rm.move(lid, Move(Step.RESPOND, ResponseType.ACCEPT, quantity), JIASHAN, "j")
        await rm.move(lid, Move(Step.REQUISITION), WUJIANG, "w")
        await rm.move(lid, Move(Step.COMMIT, quantity=quantity * 5 // 6), JIASHAN, "j")
    return rm


def _ask(quantity: int, depot: str = DEPOT.id, item: str = "sandbag") -> LineAsk:
    return LineAsk(depot, item, quantity, AGREEMENT, "5", NEEDED, "Lili town flood post")


def _report(*lines: RmLine, responder: str | None = JIASHAN, request: str = "r-1") -> RmMessage:
    """A status report as it arrives: written as XML and read back."""
    message = RmMessage(REPORT, f"{request}:status", SENT, WUJIANG, lines, responder, request)
    return edxl_rm.decode(edxl_rm.encode(message))


async def _stock(db: Runner, depot: str = DEPOT.id, item: str = "sandbag") -> tuple[int, int]:
    b = await db.run(lambda tx: ledger.get_balance(tx.conn, depot, item))
    return b.on_hand, b.held


async def _trail(db: Runner, depot: str = DEPOT.id) -> list[str]:
    return [r.entry.kind.value for r in await db.run(lambda tx: ledger.entries(tx.conn, depot))]


async def _events(db: Runner) -> int:
    def count(tx: Tx) -> int:
        return int(tx.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    return await db.run(count)


async def test_dispatched_lines_export_as_en_route_and_arrived_lines_as_arrived(
    db: Runner,
) -> None:
    rm = await _committed(db, "r-1", _ask(300))
    with pytest.raises(InvalidInput, match="no line of request 'r-1' is ready for a Report"):
        message_of(REPORT, await rm.lines(WUJIANG, "r-1"), T0)
    (line,) = await rm.lines(WUJIANG, "r-1")
    await rm.move(line.line.id, Move(Step.DISPATCH), JIASHAN, "jiashan-duty")
    sent = message_of(REPORT, await rm.lines(WUJIANG, "r-1"), T0)
    assert (sent.type, sent.requester, sent.responder, sent.originating) == (
        REPORT, WUJIANG, JIASHAN, "r-1"
    )  # fmt: skip
    assert sent.message_id == f"r-1:{REPORT.value}:{JIASHAN}:EnRoute"
    assert sent.lines == (RmLine(1, "sandbag", 250, DEPOT.id, status="EnRoute"),)
    assert edxl_rm.decode(edxl_rm.encode(sent)) == sent
    await rm.move(line.line.id, Move(Step.ARRIVE), WUJIANG, "wujiang-duty")
    await rm.move(line.line.id, Move(Step.RELEASE), WUJIANG, "wujiang-duty")
    later = message_of(REPORT, await rm.lines(WUJIANG, "r-1"), T0)
    assert later.lines == (RmLine(1, "sandbag", 250, DEPOT.id, status="Arrived"),)
    assert later.message_id.endswith(":Arrived")


async def test_an_imported_report_dispatches_then_arrives(db: Runner) -> None:
    rm = await _committed(db, "r-1", _ask(300))
    assert await _stock(db) == (1000, 250)
    (done,) = await apply(rm, _report(RmLine(1, "sandbag", 250, status="EnRoute")), "edxl-rm:a")
    assert done.line.state is LineState.EN_ROUTE
    assert await _stock(db) == (750, 0)  # the stock left the depot
    assert (await _trail(db))[-1] == "dispatch"
    # The requester reports the arrival (no RespondingOrg: the report is the requester's).
    arrival = _report(RmLine(1, "sandbag", 250, status="Arrived"), responder=None)
    (done,) = await apply(rm, arrival, "edxl-rm:b")
    assert done.line.state is LineState.ARRIVED
    assert await _stock(db) == (750, 0)  # arrival does not touch the ledger
    assert (await _trail(db))[-1] == "dispatch"
    with pytest.raises(Conflict, match="arrived: arrival needs it en_route"):
        await apply(rm, arrival, "edxl-rm:b")  # the same report again changes nothing


async def test_the_owner_may_report_the_arrival_too(db: Runner) -> None:
    rm = await _committed(db, "r-1", _ask(300))
    await apply(rm, _report(RmLine(1, "sandbag", 250, status="EnRoute")), "x")
    (done,) = await apply(rm, _report(RmLine(1, "sandbag", 250, status="Arrived")), "x")
    assert done.line.state is LineState.ARRIVED


async def test_a_report_from_the_wrong_party_changes_nothing(db: Runner) -> None:
    rm = await _committed(db, "r-1", _ask(300))
    before, stock, events = await rm.lines(WUJIANG, "r-1"), await _stock(db), await _events(db)

    async def unchanged() -> None:
        assert await rm.lines(WUJIANG, "r-1") == before
        assert await _stock(db) == stock
        assert await _events(db) == events

    en_route = RmLine(1, "sandbag", 250, status="EnRoute")
    with pytest.raises(NotAllowed, match="only 330421 may report it en route, not 310118"):
        await apply(rm, _report(en_route, responder=QINGPU), "edxl-rm:forged")
    await unchanged()
    with pytest.raises(NotAllowed, match="only 330421 may report it en route, not 320509"):
        await apply(rm, _report(en_route, responder=None), "edxl-rm:requester")
    await unchanged()
    await apply(rm, _report(en_route), "edxl-rm:owner")  # the owner: dispatched
    before, stock, events = await rm.lines(WUJIANG, "r-1"), await _stock(db), await _events(db)
    assert [s.line.state for s in before] == [LineState.EN_ROUTE]
    with pytest.raises(NotAllowed, match="only its parties report arrival, not 310118"):
        await apply(rm, _report(RmLine(1, "sandbag", 250, status="Arrived"), responder=QINGPU), "f")
    await unchanged()


async def test_a_report_moves_every_line_it_names_or_none(db: Runner) -> None:
    rm = await _committed(db, "r-2", _ask(300), _ask(30, PUMPS.id, "water-pump"))
    before = await rm.lines(WUJIANG, "r-2")
    assert [s.line.state for s in before] == [LineState.COMMITTED, LineState.COMMITTED]
    stock, pumps = await _stock(db), await _stock(db, PUMPS.id, "water-pump")
    events = await _events(db)
    # Line 2 is committed, not en route: it cannot arrive, so line 1 is not dispatched either.
    mixed = _report(
        RmLine(1, "sandbag", 250, status="EnRoute"), RmLine(2, "water-pump", 25, status="Arrived"),
        request="r-2",
    )  # fmt: skip
    with pytest.raises(Conflict, match="committed: arrival needs it en_route"):
        await apply(rm, mixed, "edxl-rm:mixed")
    assert await rm.lines(WUJIANG, "r-2") == before
    assert (await _stock(db), await _stock(db, PUMPS.id, "water-pump")) == (stock, pumps)
    assert await _events(db) == events
    assert "dispatch" not in await _trail(db)
    both = _report(
        RmLine(1, "sandbag", 250, status="EnRoute"), RmLine(2, "water-pump", 25, status="EnRoute"),
        request="r-2",
    )  # fmt: skip
    done = await apply(rm, both, "edxl-rm:both")
    assert [s.line.state for s in done] == [LineState.EN_ROUTE, LineState.EN_ROUTE]
    assert await _stock(db) == (750, 0)
    assert await _stock(db, PUMPS.id, "water-pump") == (75, 0)
    out = message_of(REPORT, await rm.lines(WUJIANG, "r-2"), T0)
    assert [(x.element, x.status) for x in out.lines] == [(1, "EnRoute"), (2, "EnRoute")]


async def test_a_report_naming_no_such_line_or_another_item_is_refused(db: Runner) -> None:
    rm = await _committed(db, "r-1", _ask(300))
    with pytest.raises(InvalidInput, match="has no line 2"):
        await apply(rm, _report(RmLine(2, "sandbag", 250, status="EnRoute")), "x")
    with pytest.raises(InvalidInput, match="is for sandbag, the message says water-pump"):
        await apply(rm, _report(RmLine(1, "water-pump", 250, status="EnRoute")), "x")
    assert [s.line.state for s in await rm.lines(WUJIANG, "r-1")] == [LineState.COMMITTED]


def _stored(lines: list[StoredLine]) -> list[tuple[int, str]]:
    return [(s.line_no, s.line.state.value) for s in lines]


async def test_the_status_report_is_exported_over_http(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    await hub.db.run(lambda tx: save_depot(tx.conn, DEPOT))
    await hub.registry.record(Entry(DEPOT.id, "sandbag", EntryKind.RECEIPT, 1000, JIASHAN, 0))
    headers = {"Authorization": f"Bearer {token(WUJIANG)}"}
    ask = {
        "depot": DEPOT.id, "item": "sandbag", "quantity": 300, "agreement": AGREEMENT,
        "clause": "5", "needed_by": NEEDED, "deliver_to": "Lili town flood post",
    }  # fmt: skip
    made = await client.post(
        "/api/v1/resources/rm-requests", json={"request": "r-9", "lines": [ask]}, headers=headers
    )
    assert made.status_code == 200, made.text
    rm = ResourceExchange(hub.registry)
    (line,) = await rm.lines(WUJIANG, "r-9")
    for move, who in [
        (Move(Step.RESPOND, ResponseType.ACCEPT, 300), JIASHAN), (Move(Step.REQUISITION), WUJIANG),
        (Move(Step.COMMIT, quantity=200), JIASHAN), (Move(Step.DISPATCH), JIASHAN),
    ]:  # fmt: skip
        await rm.move(line.line.id, move, who, "duty")
    assert _stored(await rm.lines(WUJIANG, "r-9")) == [(1, "en_route")]
    got = await client.get(
        f"/api/v1/resources/rm-requests/{WUJIANG}/r-9/edxl-rm",
        params={"message": REPORT.value}, headers=headers,
    )  # fmt: skip
    assert got.status_code == 200 and got.headers["content-type"] == "application/xml"
    report = edxl_rm.decode(got.content)
    assert (report.type, report.responder, report.lines) == (
        REPORT, JIASHAN, (RmLine(1, "sandbag", 200, DEPOT.id, status="EnRoute"),)
    )  # fmt: skip
