"""EDXL-RM steps over HTTP against a real hub: each step only by the jurisdiction it belongs to
(anyone else: 403, and neither the line nor the stock changes), the whole life of a line moving
real stock, and the request exported as EDXL-RM XML.

Qingpu (310118) asks Jiashan's depot (330421) under the Qingpu–Suzhou–Jiaxing alliance (clause
8: floor 30 %, auto-commit 10 %, per request 50 % of lendable stock); Wujiang (320509) is a
third party, Jiaxing (330400) the city that speaks for Jiashan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hub.codecs import edxl_rm
from hub.registry import ledger
from hub.registry.depots import Depot, save_depot
from hub.registry.ledger import Entry, EntryKind
from hub.runtime import Hub

QINGPU, WUJIANG, JIASHAN, JIAXING = "310118", "320509", "330421", "330400"
DEPOT = Depot("jiashan-1", JIASHAN, "嘉善仓库", "Jiashan depot", 30.84, 120.92)
BASE = "/api/v1/resources"
ALLIANCE = "qingpu-suzhou-jiaxing-alliance-2021"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def stocked(hub: Hub) -> Hub:
    await hub.db.run(lambda tx: save_depot(tx.conn, DEPOT))
    await hub.registry.record(Entry(DEPOT.id, "sandbag", EntryKind.RECEIPT, 1000, JIASHAN, 0))
    return hub


async def _stock(hub: Hub) -> tuple[int, int]:
    b = await hub.db.run(lambda tx: ledger.get_balance(tx.conn, DEPOT.id, "sandbag"))
    return b.on_hand, b.held


def _line(quantity: int) -> dict[str, Any]:
    return {
        "depot": DEPOT.id, "item": "sandbag", "quantity": quantity, "agreement": ALLIANCE,
        "clause": "8", "needed_by": "2026-07-01T12:00:00+08:00", "deliver_to": "Jinze dyke",
    }  # fmt: skip


async def test_each_step_only_by_its_party(
    client: httpx.AsyncClient, token: Callable[[str], str], stocked: Hub
) -> None:
    qingpu, wujiang, jiashan, jiaxing = (token(c) for c in (QINGPU, WUJIANG, JIASHAN, JIAXING))
    body = {"request": "rm-1", "lines": [_line(300)]}
    assert (await client.post(f"{BASE}/rm-requests", json=body)).status_code == 401
    made = await client.post(f"{BASE}/rm-requests", json=body, headers=auth(qingpu))
    assert made.status_code == 200, made.text
    (line,) = made.json()["lines"]
    assert (line["state"], line["owner"], line["requester"]) == ("requested", JIASHAN, QINGPU)
    lid = line["id"]
    assert await _stock(stocked) == (1000, 300)

    async def step(name: str, tok: str, **body: Any) -> httpx.Response:
        return await client.post(f"{BASE}/rm-lines/{lid}/{name}", json=body, headers=auth(tok))

    # (step, body, the parties refused, the party allowed, state after, stock after)
    script: list[tuple[str, dict[str, Any], list[str], str, str, tuple[int, int]]] = [
        ("respond", {"answer": "Accept", "quantity": 250}, [qingpu, wujiang], jiaxing,
         "accepted", (1000, 250)),
        ("requisition", {}, [jiashan, wujiang], qingpu, "requisitioned", (1000, 250)),
        ("commit", {"quantity": 200}, [qingpu, wujiang], jiashan, "committed", (1000, 200)),
        ("dispatch", {}, [qingpu, wujiang], jiashan, "en_route", (800, 0)),
        ("arrive", {}, [wujiang], qingpu, "arrived", (800, 0)),
        ("release", {}, [jiashan, wujiang], qingpu, "released", (800, 0)),
        ("request-return", {}, [qingpu, wujiang], jiashan, "return_requested", (800, 0)),
        ("returned", {"quantity": 150}, [qingpu, wujiang], jiashan, "returned", (950, 0)),
    ]  # fmt: skip
    for name, args, refused, allowed, state, stock in script:
        before = (await client.get(
            f"{BASE}/rm-requests/{QINGPU}/rm-1", headers=auth(qingpu))).json()  # fmt: skip
        held_before = await _stock(stocked)
        for stranger in refused:
            denied = await step(name, stranger, **args)
            assert denied.status_code == 403, (name, denied.text)
            assert denied.headers["content-type"] == "application/problem+json"
        after_refusals = await client.get(f"{BASE}/rm-requests/{QINGPU}/rm-1", headers=auth(qingpu))
        assert after_refusals.json() == before, name
        assert await _stock(stocked) == held_before, name
        ok = await step(name, allowed, **args)
        assert ok.status_code == 200, (name, ok.text)
        assert ok.json()["state"] == state
        assert await _stock(stocked) == stock, name
    assert (await step("release", qingpu)).status_code == 409  # already returned


async def test_invariants_and_visibility_over_http(
    client: httpx.AsyncClient, token: Callable[[str], str], stocked: Hub
) -> None:
    qingpu, wujiang, jiashan = token(QINGPU), token(WUJIANG), token(JIASHAN)
    made = await client.post(
        f"{BASE}/rm-requests", json={"request": "rm-2", "lines": [_line(300)]},
        headers=auth(qingpu),
    )  # fmt: skip
    lid = made.json()["lines"][0]["id"]
    path = f"{BASE}/rm-lines/{lid}"
    over = await client.post(
        f"{path}/respond", json={"answer": "Accept", "quantity": 301}, headers=auth(jiashan)
    )
    assert over.status_code == 400 and "1 to 300" in over.json()["detail"]
    provisional = {"answer": "Provisional", "quantity": 100}
    assert (
        await client.post(f"{path}/respond", json=provisional, headers=auth(jiashan))
    ).is_success
    early = await client.post(f"{path}/requisition", headers=auth(qingpu))
    assert early.status_code == 409 and "provisional" in early.json()["detail"]
    assert await _stock(stocked) == (1000, 300)  # a provisional answer keeps the line held
    bad_step = await client.post(f"{path}/teleport", headers=auth(qingpu))
    assert bad_step.status_code == 422
    shown = await client.get(f"{BASE}/rm-requests/{QINGPU}/rm-2", headers=auth(wujiang))
    assert shown.status_code == 200 and shown.json()["lines"][0]["state"] == "provisional"
    assert (await client.get(f"{BASE}/rm-requests/{QINGPU}/rm-2")).status_code == 401
    missing = await client.get(f"{BASE}/rm-requests/{QINGPU}/nope", headers=auth(wujiang))
    assert missing.status_code == 404
    xml = await client.get(f"{BASE}/rm-requests/{QINGPU}/rm-2/edxl-rm", headers=auth(jiashan))
    assert xml.status_code == 200 and xml.headers["content-type"] == "application/xml"
    message = edxl_rm.decode(xml.content)
    assert (message.type, message.message_id, message.requester) == (
        edxl_rm.MessageType.REQUEST, "rm-2", QINGPU
    )  # fmt: skip
    (line,) = message.lines
    assert (line.depot, line.item, line.quantity, line.deliver_to) == (
        DEPOT.id, "sandbag", 300, "Jinze dyke"
    )  # fmt: skip
    answered = await client.get(
        f"{BASE}/rm-requests/{QINGPU}/rm-2/edxl-rm",
        params={"message": "ResponseToRequestResource"}, headers=auth(qingpu),
    )  # fmt: skip
    reply = edxl_rm.decode(answered.content)
    assert (reply.responder, reply.originating, reply.lines[0].response) == (
        JIASHAN, "rm-2", "Provisional"
    )  # fmt: skip
    settled = await client.post(
        f"{path}/respond", json={"answer": "Accept", "quantity": 250}, headers=auth(jiashan)
    )  # more than the provisional offer: the whole line was still held
    assert settled.status_code == 200 and settled.json()["answered"] == 250
    assert await _stock(stocked) == (1000, 250)
    none_yet = await client.get(
        f"{BASE}/rm-requests/{QINGPU}/rm-2/edxl-rm", params={"message": "CommitResource"},
        headers=auth(qingpu),
    )  # fmt: skip
    assert none_yet.status_code == 400 and "no line" in none_yet.json()["detail"]
