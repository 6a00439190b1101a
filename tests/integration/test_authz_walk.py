"""Every route of the app, for every kind of actor, on objects of one jurisdiction (A): allowed
where ``authz_table.py`` says so, otherwise 401/403/404 with nothing changed in the database.

Broken object-level authorisation is the first risk of any API; this walk is the guard. It
runs a real hub (SQLite in a temp dir) with the app in process.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from starlette.routing import Mount

from hub import accounts
from hub.region import load_region
from hub.registry.allocation import PlanLine
from hub.registry.depots import Depot, save_depot
from hub.registry.ledger import Entry, EntryKind
from hub.runtime import Hub
from tests.factories import cap, wait_for
from tests.integration.authz_table import ACTORS, FRESH, RULES, USERS, Rule

QINGPU, WUJIANG, JIASHAN = "310118", "320509", "330421"
PASSWORD = "walk the routes, all of them"
ALLIANCE = "qingpu-suzhou-jiaxing-alliance-2021"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
UNTRACKED = ("sessions", "signin_attempts")  # signing in is the one change any caller makes
DEPOTS = (
    Depot("wujiang-1", WUJIANG, "吴江仓库", "Wujiang depot", 31.05, 120.65),
    Depot("jiashan-1", JIASHAN, "嘉善仓库", "Jiashan depot", 30.84, 120.92),
    Depot("qingpu-1", QINGPU, "青浦仓库", "Qingpu depot", 31.15, 121.10),
)


def _walk(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "effective_candidates"):  # FastAPI's included routers
            yield from _walk(route.effective_candidates())
        else:
            yield route


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, and the front door's intake."""
    found = {("POST", "/api/v1/incidents")}
    for route in _walk(app.api.routes):
        if isinstance(route, Mount):
            found.add(("GET", f"{route.path}/{{path:path}}"))
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def snapshot(conn: Any) -> dict[str, tuple[int, str]]:
    """Row count and digest of every table but the sessions' (the log included)."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        ).fetchall()
        if r[0] not in UNTRACKED
    ]
    found = {}
    for name in names:
        rows = sorted(repr(tuple(r)) for r in conn.execute(f'SELECT * FROM "{name}"').fetchall())
        found[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return found


@dataclass
class World:
    hub: Hub
    app: Any
    client: httpx.AsyncClient
    values: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    holds: int = 0

    async def state(self) -> dict[str, tuple[int, str]]:
        return await self.hub.db.run(lambda tx: snapshot(tx.conn))

    async def settle(self) -> None:
        """Wait until the engine has done what the last change set off (nothing moves)."""
        last = await self.state()
        calm = 0

        async def still() -> bool:
            nonlocal last, calm
            await asyncio.sleep(0.05)
            now = await self.state()
            calm = calm + 1 if now == last else 0
            last = now
            return calm >= 3

        await wait_for(still, timeout_s=20)

    async def sign_in(self, actor: str, username: str) -> None:
        self.client.cookies.clear()
        res = await self.client.post(
            "/api/v1/session", json={"username": username, "password": PASSWORD}
        )
        assert res.status_code == 200, res.text
        cookie = res.cookies["liandong_session"]
        self.headers[actor] = {
            "Cookie": f"liandong_session={cookie}",
            "X-CSRF-Token": res.json()["csrf_token"],
        }

    async def new_hold(self) -> str:
        """A hold awaiting Wujiang's approval, requested by Qingpu."""
        self.holds += 1
        line = PlanLine("wujiang-1", "", 100_000, 0.0, ALLIANCE, "8", False)
        (hold,) = await self.hub.registry.commit_plan(
            QINGPU, f"walk-hold-{self.holds}", "sandbag", [line], "walk-setup"
        )
        assert hold.state.value == "held", hold
        return hold.id


async def _add_user(hub: Hub, username: str, role: str, jurisdiction: str | None) -> None:
    user = accounts.new_user(load_region(), username, role, jurisdiction, None, 0)
    await hub.db.run(lambda tx: accounts.add_user(tx.conn, user, PASSWORD))


@pytest.fixture
async def world(hub: Hub, token: Any) -> AsyncIterator[World]:
    from hub.console.app import create_app

    app = create_app(hub=hub)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        w = World(hub, app, client)
        for username, role, code in (
            ("officer.a", "officer", WUJIANG),
            ("officer.b", "officer", JIASHAN),
            ("coord", "coordinator", None),
            ("root", "admin", None),
            ("walker", "officer", WUJIANG),
            ("victim", "officer", WUJIANG),
        ):
            await _add_user(hub, username, role, code)
        for actor, username in zip(USERS, ("officer.a", "officer.b", "coord", "root"), strict=True):
            await w.sign_in(actor, username)
        w.headers["anonymous"] = {}
        w.headers["adapter_a"] = {"Authorization": f"Bearer {token(WUJIANG)}"}
        qingpu = {"Authorization": f"Bearer {token(QINGPU)}"}

        for depot in DEPOTS:
            await hub.db.run(lambda tx, d=depot: save_depot(tx.conn, d))
            await hub.registry.record(
                Entry(depot.id, "sandbag", EntryKind.RECEIPT, 1_000_000, depot.jurisdiction, 0)
            )
        res = await client.post(
            "/api/v1/incidents", content=orjson.dumps(cap("walk-1")), headers=qingpu
        )
        assert res.status_code == 202, res.text
        targets: dict[str, str] = {}

        async def planned() -> bool:
            got = await client.get("/api/v1/tasks", params={"incident": "walk-1"}, headers=qingpu)
            targets.update({t["target"]: t["id"] for t in got.json()["tasks"]})
            return WUJIANG in targets

        await wait_for(planned)
        try:
            from hub.console.routes.pages import ASSETS

            asset = sorted(ASSETS)[0]
        except ImportError:
            asset = "none"
        w.values = {
            "incident": "walk-1",
            "sender": QINGPU,
            "task": targets[WUJIANG],
            "hold": await w.new_hold(),
            "walker": "walker",
            "victim": "victim",
            "password": PASSWORD,
            "cap_of_a": orjson.dumps(cap("walk-a", sender=WUJIANG)).decode(),
            "console_asset": asset,
        }
        await w.settle()
        yield w


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], m[0]), template)


def _fill_body(body: Any, values: dict[str, str]) -> Any:
    if isinstance(body, str):
        return _fill(body, values)
    if isinstance(body, dict):
        return {k: _fill_body(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill_body(v, values) for v in body]
    return body


async def _stream_status(app: Any, method: str, url: str, headers: dict[str, str]) -> int:
    """The status of an endless response (server-sent events), then the client goes away."""
    path, _, query = url.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("192.0.2.9", 40000), "server": ("hub", 80),
        "headers": [(b"host", b"hub")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    status: list[int] = []
    started, gone = asyncio.Event(), asyncio.Event()
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            started.set()

    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait(
        {task, asyncio.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    gone.set()
    try:
        await asyncio.wait_for(task, 5)
    except TimeoutError:
        task.cancel()
    assert status, f"{method} {url} sent no response"
    return status[0]


async def _call(world: World, rule: Rule, actor: str, *, csrf: bool = True) -> tuple[int, str]:
    values = {**world.values, "actor": actor}
    url = _fill(rule.url, values)
    headers = dict(world.headers[actor])
    if not csrf:
        headers.pop("X-CSRF-Token", None)
    if rule.stream:
        return await _stream_status(world.app, rule.method, url, headers), ""
    world.client.cookies.clear()
    content: bytes | None = None
    if rule.raw is not None:
        content = _fill(rule.raw.decode(), values).encode()
    elif rule.body is not None:
        content = orjson.dumps(_fill_body(rule.body, values))
    if content is not None:
        headers["Content-Type"] = "application/json"
    res = await world.client.request(rule.method, url, content=content, headers=headers)
    return res.status_code, res.text[:300]


def _klass(status: int) -> str:
    return "2xx" if 200 <= status < 300 else str(status)


async def test_every_route_has_a_rule(world: World) -> None:
    served = app_routes(world.app)
    ruled = {(r.method, r.path) for r in RULES}
    missing = sorted(served - ruled)
    assert not missing, "routes without a rule in tests/integration/authz_table.py: " + ", ".join(
        f"{m} {p}" for m, p in missing
    )
    stale = sorted(ruled - served)
    assert not stale, "rules for routes the app does not serve: " + ", ".join(
        f"{m} {p}" for m, p in stale
    )
    for rule in RULES:
        assert set(rule.expect) == set(ACTORS), f"{rule.method} {rule.path}: every actor"
        assert set(rule.expect.values()) <= {"2xx", "401", "403", "404"}
        assert rule.fresh is None or rule.fresh in FRESH, f"{rule.fresh}: no such factory"


async def test_walk_every_route_for_every_actor(world: World) -> None:
    failures: list[str] = []
    served = app_routes(world.app)
    for rule in RULES:
        if (rule.method, rule.path) not in served:
            continue  # reported by test_every_route_has_a_rule
        denied = [a for a in ACTORS if rule.expect[a] != "2xx"]
        allowed = [a for a in ACTORS if rule.expect[a] == "2xx"]
        changes = rule.method in STATE_CHANGING
        for actor in denied:
            before = await world.state()
            status, text = await _call(world, rule, actor)
            if _klass(status) != rule.expect[actor]:
                failures.append(
                    f"{rule.method} {rule.path} as {actor}: {status}, expected "
                    f"{rule.expect[actor]} ({text})"
                )
            if await world.state() != before:
                failures.append(f"{rule.method} {rule.path} as {actor}: refused, yet changed")
        for actor in allowed:
            if changes and rule.csrf and actor in USERS:
                before = await world.state()
                status, text = await _call(world, rule, actor, csrf=False)
                if status != 403 or "X-CSRF-Token" not in text:
                    failures.append(
                        f"{rule.method} {rule.path} as {actor} without CSRF token: {status}"
                    )
                if await world.state() != before:
                    failures.append(f"{rule.method} {rule.path} as {actor}: no CSRF, changed")
            if rule.fresh is not None:
                world.values.update(await FRESH[rule.fresh](world))
            status, text = await _call(world, rule, actor)
            if _klass(status) != "2xx":
                failures.append(f"{rule.method} {rule.path} as {actor}: {status} ({text})")
            if rule.ends_session and actor in USERS:
                username = {"officer_a": "officer.a", "officer_b": "officer.b"}.get(
                    actor, {"coordinator": "coord", "admin": "root"}.get(actor, "")
                )
                await world.sign_in(actor, username)
            if changes:
                await world.settle()
    assert not failures, "\n".join(failures)


async def test_a_refused_task_answer_leaves_the_task_and_the_log_as_they_were(
    world: World,
) -> None:
    """The table's 403s, looked at closely for the riskiest route: the task's state and the
    log's last offset before and after."""
    task_id = world.values["task"]
    url = f"/api/v1/tasks/{task_id}/acknowledge"

    async def last_offset() -> int:
        row = await world.hub.db.run(
            lambda tx: tx.conn.execute('SELECT MAX("offset") FROM log').fetchone()
        )
        return int(row[0] or 0)

    offset = await last_offset()
    for actor in ("officer_b", "coordinator", "admin"):
        world.client.cookies.clear()
        res = await world.client.post(url, headers=world.headers[actor])
        assert res.status_code == 403, (actor, res.text)
        assert res.headers["content-type"] == "application/problem+json"
    assert (await world.hub.tasks.get(task_id)).state.value == "issued"
    assert await last_offset() == offset
    world.client.cookies.clear()
    ok = await world.client.post(url, headers=world.headers["officer_a"])
    assert ok.status_code == 200 and ok.json()["state"] == "acknowledged"
    await wait_for(lambda: _moved(last_offset, offset))


async def _moved(last_offset: Any, offset: int) -> bool:
    return bool(await last_offset() > offset)
