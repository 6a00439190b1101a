"""The resources API against a real hub: balances, plans shown before they are committed,
commits that hold every line or none, and approvals only by the depot's owner.

Qingpu asks; Jiashan and Wujiang lend. Two agreements bind all three on the same terms (floor
30 %, per request 50 %, auto-commit 10 % of lendable stock): the Qingpu–Suzhou–Jiaxing alliance
(clause 8) and the demonstration zone's (clause 5); the tie goes to the first agreement id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hub.clock import FixedClock
from hub.registry import ledger
from hub.registry.depots import Depot, save_depot
from hub.registry.holds import HoldState
from hub.registry.ledger import Entry, EntryKind
from hub.runtime import Hub
from hub.settings import Settings
from tests.factories import wait_for

QINGPU, WUJIANG, JIASHAN, JIAXING = "310118", "320509", "330421", "330400"
D_JIASHAN = Depot("jiashan-1", JIASHAN, "嘉善仓库", "Jiashan depot", 30.84, 120.92)
D_WUJIANG = Depot("wujiang-1", WUJIANG, "吴江仓库", "Wujiang depot", 31.05, 120.65)
NEAR_JIASHAN = {"lat": 30.85, "lon": 120.90}
BASE = "/api/v1/resources"
ALLIANCE = "qingpu-suzhou-jiaxing-alliance-2021"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _stocked(hub: Hub) -> Hub:
    for depot in (D_JIASHAN, D_WUJIANG):
        await hub.db.run(lambda tx, d=depot: save_depot(tx.conn, d))
        await hub.registry.record(
            Entry(depot.id, "sandbag", EntryKind.RECEIPT, 1000, depot.jurisdiction, 0)
        )
    return hub


@pytest.fixture
async def stocked(hub: Hub) -> Hub:
    return await _stocked(hub)


async def _held(hub: Hub) -> dict[str, tuple[int, int]]:
    found = await hub.db.run(lambda tx: ledger.balances(tx.conn, item="sandbag"))
    return {b.depot: (b.on_hand, b.held) for b in found}


async def _plan(client: httpx.AsyncClient, token: str, quantity: int) -> dict[str, Any]:
    body = {"item": "sandbag", "quantity": quantity, **NEAR_JIASHAN}
    res = await client.post(f"{BASE}/plans", json=body, headers=auth(token))
    assert res.status_code == 200, res.text
    plan: dict[str, Any] = res.json()
    return plan


async def _commit(
    client: httpx.AsyncClient, token: str, request: str, lines: list[dict[str, Any]]
) -> httpx.Response:
    body = {"request": request, "item": "sandbag", "lines": lines}
    return await client.post(f"{BASE}/requests", json=body, headers=auth(token))


async def test_balances_for_anyone_authenticated(
    client: httpx.AsyncClient, token: Callable[[str], str], stocked: Hub
) -> None:
    assert (await client.get(f"{BASE}/balances")).status_code == 401
    res = await client.get(
        f"{BASE}/balances", params={"jurisdiction": JIAXING, "item": "sandbag"},
        headers=auth(token(WUJIANG)),
    )  # fmt: skip
    assert res.status_code == 200, res.text
    (row,) = res.json()["balances"]  # Jiaxing speaks for Jiashan, not for Wujiang
    assert (row["depot"], row["on_hand"], row["held"], row["available"]) == (
        "jiashan-1", 1000, 0, 1000
    )  # fmt: skip
    bad = await client.get(f"{BASE}/balances", params={"item": "sand"}, headers=auth(token(QINGPU)))
    assert bad.status_code == 400 and "unknown item" in bad.json()["detail"]


async def test_a_plan_changes_nothing_and_its_commit_holds_every_line_once(
    client: httpx.AsyncClient, token: Callable[[str], str], stocked: Hub
) -> None:
    qingpu = token(QINGPU)
    plan = await _plan(client, qingpu, 500)
    assert plan["requester"] == QINGPU and (plan["covered"], plan["uncovered"]) == (500, 0)
    assert [(x["depot"], x["quantity"], x["clause"]) for x in plan["lines"]] == [
        ("jiashan-1", 350, "8"), ("wujiang-1", 150, "8")
    ]  # fmt: skip
    assert {x["agreement"] for x in plan["lines"]} == {ALLIANCE}
    assert f"clause 8 of {ALLIANCE}" in plan["limits"][0]["reason"]
    assert await _held(stocked) == {"jiashan-1": (1000, 0), "wujiang-1": (1000, 0)}

    first = await _commit(client, qingpu, "r-1", plan["lines"])
    assert first.status_code == 200, first.text
    holds = first.json()["holds"]
    assert sorted((h["depot"], h["quantity"], h["state"], h["partner"]) for h in holds) == [
        ("jiashan-1", 350, "held", QINGPU), ("wujiang-1", 150, "held", QINGPU)
    ]  # fmt: skip
    again = await _commit(client, qingpu, "r-1", plan["lines"])
    assert again.status_code == 200 and again.json() == first.json()
    assert await _held(stocked) == {"jiashan-1": (1000, 350), "wujiang-1": (1000, 150)}
    other = await _commit(client, qingpu, "r-1", plan["lines"][:1])
    assert other.status_code == 409 and "other lines" in other.json()["detail"]


async def test_a_plan_overtaken_by_stock_movements_is_refused_whole(
    client: httpx.AsyncClient, token: Callable[[str], str], stocked: Hub
) -> None:
    qingpu = token(QINGPU)
    plan = await _plan(client, qingpu, 500)
    # Jiashan uses 600 sandbags itself after the plan was shown: 400 left, floor 120.
    await stocked.registry.record(
        Entry("jiashan-1", "sandbag", EntryKind.CONSUMPTION, 600, JIASHAN, 0)
    )
    res = await _commit(client, qingpu, "r-2", plan["lines"])
    assert res.status_code == 409, res.text
    detail = res.json()["detail"]
    assert "jiashan-1" in detail and "clause 8" in detail and "350 asked" in detail
    assert "wujiang-1" not in detail
    assert await _held(stocked) == {"jiashan-1": (400, 0), "wujiang-1": (1000, 0)}  # none held
    fresh = await _plan(client, qingpu, 500)
    assert [(x["depot"], x["quantity"]) for x in fresh["lines"]] == [
        ("jiashan-1", 140), ("wujiang-1", 350)
    ]  # fmt: skip


async def test_only_the_depot_owner_approves_and_only_the_parties_release(
    client: httpx.AsyncClient, token: Callable[[str], str], stocked: Hub
) -> None:
    qingpu, wujiang, jiashan, jiaxing = (token(c) for c in (QINGPU, WUJIANG, JIASHAN, JIAXING))
    plan = await _plan(client, qingpu, 500)
    res = await _commit(client, qingpu, "r-3", plan["lines"])
    by_depot = {h["depot"]: h for h in res.json()["holds"]}
    at_jiashan, at_wujiang = by_depot["jiashan-1"]["id"], by_depot["wujiang-1"]["id"]

    for stranger in (qingpu, wujiang):  # the requester and a third party may not approve
        denied = await client.post(f"{BASE}/holds/{at_jiashan}/approve", headers=auth(stranger))
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/problem+json"
    assert (await stocked.registry.get_hold(at_jiashan)).state.value == "held"

    ok = await client.post(f"{BASE}/holds/{at_jiashan}/approve", headers=auth(jiaxing))
    assert ok.status_code == 200 and ok.json()["state"] == "committed"  # the city speaks for it
    twice = await client.post(f"{BASE}/holds/{at_jiashan}/approve", headers=auth(jiashan))
    assert twice.status_code == 409  # already committed

    reason = {"reason": "no longer needed"}
    denied = await client.post(
        f"{BASE}/holds/{at_wujiang}/release", json=reason, headers=auth(jiashan)
    )
    assert denied.status_code == 403
    assert await _held(stocked) == {"jiashan-1": (1000, 350), "wujiang-1": (1000, 150)}
    released = await client.post(
        f"{BASE}/holds/{at_wujiang}/release", json=reason, headers=auth(qingpu)
    )
    assert released.status_code == 200 and released.json()["state"] == "released"
    assert await _held(stocked) == {"jiashan-1": (1000, 350), "wujiang-1": (1000, 0)}
    missing = await client.post(f"{BASE}/holds/nope/approve", headers=auth(jiashan))
    assert missing.status_code == 404


async def test_own_depots_cannot_be_requested_as_a_partners(
    client: httpx.AsyncClient, token: Callable[[str], str], stocked: Hub
) -> None:
    line = {"depot": "jiashan-1", "quantity": 10, "agreement": "yrd-demo-zone-emergency-linkage"}
    res = await _commit(client, token(JIASHAN), "r-4", [{**line, "clause": "5"}])
    assert res.status_code == 400 and "own" in res.json()["detail"]
    assert await _held(stocked) == {"jiashan-1": (1000, 0), "wujiang-1": (1000, 0)}


async def test_the_running_hub_expires_holds_awaiting_approval(settings: Settings) -> None:
    clock = FixedClock(1_782_864_000_000)  # 2026-07-01T00:00:00Z
    hub = Hub(settings, clock)
    hub.hold_expiry_s = 0.02
    await hub.start()
    try:
        stocked = await _stocked(hub)
        plan = await stocked.registry.plan(QINGPU, "sandbag", 300, **NEAR_JIASHAN)
        (hold,) = await stocked.registry.commit_plan(QINGPU, "r-5", "sandbag", plan.lines, "t")
        assert hold.state is HoldState.HELD and hold.expires_ms is not None
        await asyncio.sleep(0.1)
        assert (await stocked.registry.get_hold(hold.id)).state is HoldState.HELD
        clock.advance(hold.expires_ms - clock.now_ms())

        async def expired() -> bool:
            return (await stocked.registry.get_hold(hold.id)).state is HoldState.EXPIRED

        await wait_for(expired)
        assert await _held(stocked) == {"jiashan-1": (1000, 0), "wujiang-1": (1000, 0)}
    finally:
        await hub.stop()
