"""``/api/v1/drills`` on a running hub: only a coordinator or an administrator starts, pauses,
resumes and stops drills; the report is JSON and a page with inline SVG charts; the live
database does not change while a drill runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub import accounts
from hub.region import load_region
from hub.runtime import Hub
from tests.factories import wait_for

PASSWORD = "correct horse battery"


@pytest.fixture
async def web(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    from hub.console.app import create_app

    transport = httpx.ASGITransport(app=create_app(hub=hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client


async def _signed_in(client: httpx.AsyncClient, hub: Hub, name: str, role: str) -> dict[str, str]:
    code = "320509" if role == "officer" else None
    user = accounts.new_user(load_region(), name, role, code, None, 0)
    await hub.db.run(lambda tx: accounts.add_user(tx.conn, user, PASSWORD))
    client.cookies.clear()
    res = await client.post("/api/v1/session", json={"username": name, "password": PASSWORD})
    assert res.status_code == 200, res.text
    cookie = res.cookies["liandong_session"]
    client.cookies.clear()
    return {"Cookie": f"liandong_session={cookie}", "X-CSRF-Token": res.json()["csrf_token"]}


async def _log_size(hub: Hub) -> int:
    count: int = await hub.db.run(
        lambda tx: tx.conn.execute("SELECT COUNT(*) FROM log").fetchone()[0]
    )
    return count


async def test_coordinators_run_drills_and_read_their_reports(
    web: httpx.AsyncClient, hub: Hub
) -> None:
    officer = await _signed_in(web, hub, "officer.wujiang", "officer")
    coordinator = await _signed_in(web, hub, "coord", "coordinator")
    start = {"source": "taipu-pollution-chain", "speed": "max", "registry": "demo"}
    refused = await web.post("/api/v1/drills", json=start, headers=officer)
    assert refused.status_code == 403 and "coordinator" in refused.text
    assert (await web.get("/api/v1/drills", headers=officer)).status_code == 403
    missing = await web.post("/api/v1/drills", json={**start, "source": "nothing-here"},
                             headers=coordinator)  # fmt: skip
    assert missing.status_code == 404 and "nothing-here" in missing.text
    sneaky = await web.post("/api/v1/drills", json={**start, "source": "../x"},
                            headers=coordinator)  # fmt: skip
    assert sneaky.status_code in (400, 422)
    before = await _log_size(hub)

    res = await web.post("/api/v1/drills", json=start, headers=coordinator)
    assert res.status_code == 202, res.text
    drill = res.json()["drill"]
    url = f"/api/v1/drills/{drill}"

    async def finished() -> bool:
        got = await web.get(url, headers=coordinator)
        return bool(got.json()["state"] == "finished")

    await wait_for(finished, timeout_s=60)
    report = (await web.get(f"{url}/report", headers=coordinator)).json()
    assert report["drill"] == drill and report["tasks"] > 0
    page = await web.get(f"{url}/report.html", headers=coordinator)
    assert page.status_code == 200 and page.text.count("<svg") >= 2 and "吴江区" in page.text
    assert (await web.get(f"{url}/report", headers=officer)).status_code == 403
    assert await _log_size(hub) == before  # the drill wrote to its own database only
    listed = (await web.get("/api/v1/drills", headers=coordinator)).json()
    assert [d["drill"] for d in listed] == [drill]


async def test_a_drill_at_speed_is_paused_resumed_and_stopped(
    web: httpx.AsyncClient, hub: Hub
) -> None:
    admin = await _signed_in(web, hub, "root", "admin")
    slow = {"source": "typhoon-zhoushan-ningbo", "speed": 60, "registry": "none"}
    res = await web.post("/api/v1/drills", json=slow, headers=admin)
    assert res.status_code == 202, res.text
    url = f"/api/v1/drills/{res.json()['drill']}"
    paused: dict[str, Any] = (await web.post(f"{url}/pause", headers=admin)).json()
    assert paused["state"] == "paused"
    await asyncio.sleep(0.2)
    still = (await web.get(url, headers=admin)).json()
    assert still["virtual_time"] == paused["virtual_time"]
    assert (await web.post(f"{url}/resume", headers=admin)).json()["state"] == "running"
    stopped = (await web.post(f"{url}/stop", headers=admin)).json()
    assert stopped["state"] == "stopped"
    assert (await web.post("/api/v1/drills/none-1/stop", headers=admin)).status_code == 404
