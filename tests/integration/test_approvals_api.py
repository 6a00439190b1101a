"""``/api/v1/approvals`` on a running hub (SQLite in a temp dir): an outbreak reported through
the front door asks the coordinator; an officer cannot decide (403, nothing changes); the
coordinator's approval issues the held tasks, which the targets then see as tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from hub import accounts
from hub.region import load_region
from hub.runtime import Hub
from tests.factories import cap, wait_for

QINGPU, WUJIANG = "310118", "320509"
PASSWORD = "correct horse battery"


@pytest.fixture
async def web(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    from hub.console.app import create_app

    transport = httpx.ASGITransport(app=create_app(hub=hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client


async def _signed_in(client: httpx.AsyncClient, hub: Hub, name: str, role: str) -> dict[str, str]:
    code = WUJIANG if role == "officer" else None
    user = accounts.new_user(load_region(), name, role, code, None, 0)
    await hub.db.run(lambda tx: accounts.add_user(tx.conn, user, PASSWORD))
    client.cookies.clear()
    res = await client.post("/api/v1/session", json={"username": name, "password": PASSWORD})
    assert res.status_code == 200, res.text
    cookie = res.cookies["liandong_session"]
    client.cookies.clear()
    return {"Cookie": f"liandong_session={cookie}", "X-CSRF-Token": res.json()["csrf_token"]}


async def test_only_the_coordinator_approves_and_approving_issues_the_held_tasks(
    web: httpx.AsyncClient, hub: Hub, token: Callable[[str], str]
) -> None:
    qingpu = {"Authorization": f"Bearer {token(QINGPU)}"}
    message = cap("api-outbreak-1", category="Health", circle="31.05,120.95 3")
    message["info"][0]["event"] = "聚集性传染病疫情"
    res = await web.post("/api/v1/incidents", content=orjson.dumps(message), headers=qingpu)
    assert res.status_code == 202, res.text
    found: list[dict[str, Any]] = []

    async def asked() -> bool:
        got = await web.get("/api/v1/approvals", params={"state": "requested"}, headers=qingpu)
        found[:] = got.json()["approvals"]
        return bool(found)

    await wait_for(asked)
    (approval,) = found
    assert approval["playbook"] == "infectious-disease-joint-control"
    assert approval["state"] == "requested" and approval["on_expiry"] == "cancel"
    held = {t["id"] for t in approval["tasks"]}
    assert len(held) == 13
    url = f"/api/v1/approvals/{approval['id']}"

    async def task_ids() -> set[str]:
        got = await web.get("/api/v1/tasks", params={"incident": "api-outbreak-1"}, headers=qingpu)
        return {t["id"] for t in got.json()["tasks"]}

    assert not held & await task_ids()
    officer = await _signed_in(web, hub, "officer.wujiang", "officer")
    refused = await web.post(f"{url}/approve", headers=officer)
    assert refused.status_code == 403 and "coordinator" in refused.text
    assert (await web.post(f"{url}/approve", headers=qingpu)).status_code == 403  # an adapter
    assert (await web.get(url, headers=qingpu)).json()["state"] == "requested"

    coordinator = await _signed_in(web, hub, "coord", "coordinator")
    no_reason = await web.post(f"{url}/reject", json={}, headers=coordinator)
    assert no_reason.status_code == 400 and "reason" in no_reason.text
    done = await web.post(f"{url}/approve", json={"reason": "passes agreed"}, headers=coordinator)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "approved" and body["decided_by"] == "user:coord"
    assert held <= await task_ids()
    again = await web.post(f"{url}/reject", json={"reason": "too late"}, headers=coordinator)
    assert again.status_code == 409
    listed = await web.get("/api/v1/approvals", params={"state": "approved"}, headers=officer)
    assert [a["id"] for a in listed.json()["approvals"]] == [approval["id"]]
    missing = await web.get("/api/v1/approvals/nope", headers=officer)
    assert missing.status_code == 404
