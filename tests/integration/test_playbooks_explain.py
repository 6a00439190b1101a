"""Explaining a stored incident: ``liandong playbooks explain IDENTIFIER --data DIR`` and
``GET /api/v1/incidents/{identifier}/explain`` against a real hub (SQLite in a temp dir)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from hub.console.app import create_app
from hub.console.routes import explain as explain_route
from hub.engine.cli_playbooks import app as playbooks_cli
from hub.runtime import Hub
from hub.settings import Settings
from tests.factories import cap, wait_for


@pytest.fixture
async def api(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    front = create_app(hub=hub)
    front.api.include_router(explain_route.router)  # hub/console/app.py includes it too
    transport = httpx.ASGITransport(app=front)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        yield c


async def _report(api: httpx.AsyncClient, token: str, identifier: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    res = await api.post(
        "/api/v1/incidents", content=orjson.dumps(cap(identifier)), headers=headers
    )
    assert res.status_code == 202, res.text

    async def planned() -> bool:
        found = await api.get("/api/v1/tasks", params={"incident": identifier}, headers=headers)
        return len(found.json()["tasks"]) >= 3

    await wait_for(planned)


async def test_the_api_and_the_cli_explain_a_stored_incident(
    api: httpx.AsyncClient, token: Callable[[str], str], settings: Settings
) -> None:
    qingpu = token("310118")
    await _report(api, qingpu, "why-1")
    res = await api.get(
        "/api/v1/incidents/why-1/explain", headers={"Authorization": f"Bearer {token('320509')}"}
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["incident"] == body["thread"] == "310118,why-1"
    verdicts = {p["id"]: p for p in body["playbooks"]}
    assert len(verdicts) == 9
    water = verdicts["cross-border-water-pollution"]
    assert water["matched"] and {t["target"] for t in water["tasks"]} == {
        "320509",
        "320583",
        "330421",
    }
    assert not verdicts["typhoon-storm-surge"]["matched"]
    assert any(
        "category Env not in Met/Geo" in line for line in verdicts["typhoon-storm-surge"]["reasons"]
    )
    assert verdicts["border-severe-fallback"]["reasons"] == [
        "fallback stands down: handled by cross-border-water-pollution"
    ]
    # The explanation plans exactly the tasks the hub issued (same cause, same ids).
    issued = await api.get(
        "/api/v1/tasks", params={"incident": "why-1"}, headers={"Authorization": f"Bearer {qingpu}"}
    )
    assert {t["id"] for t in body["tasks"]} == {t["id"] for t in issued.json()["tasks"]}

    missing = await api.get(
        "/api/v1/incidents/nope/explain", headers={"Authorization": f"Bearer {qingpu}"}
    )
    assert missing.status_code == 404

    runner = CliRunner()
    told = runner.invoke(
        playbooks_cli, ["explain", "why-1", "--data", str(settings.data), "--json"]
    )
    assert told.exit_code == 0, told.output
    assert orjson.loads(told.output)["tasks"] == body["tasks"]
    text = runner.invoke(playbooks_cli, ["explain", "why-1", "--data", str(settings.data)])
    assert "MATCHED: cross-border-water-pollution v2" in text.output
    assert "not matched: typhoon-storm-surge" in text.output
    absent = runner.invoke(playbooks_cli, ["explain", "nope", "--data", str(settings.data)])
    assert absent.exit_code == 2 and "no incident with identifier 'nope'" in absent.output
