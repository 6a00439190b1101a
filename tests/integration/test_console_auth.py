"""Console sign-in against a real hub (SQLite in a temp dir), in process: argon2 passwords,
session cookies, CSRF on state changes, the sign-in rate limit, sign-out, disabled users,
expired sessions, and ``liandong users``."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from hub import accounts
from hub.bus import topics
from hub.console.auth import AuthSettings
from hub.errors import InvalidInput
from hub.model.events import TaskUpdated, decode
from hub.region import load_region
from hub.runtime import Hub
from hub.settings import Settings
from tests.factories import cap, wait_for

QINGPU, WUJIANG, JIASHAN = "310118", "320509", "330421"
SESSION = "/api/v1/session"
PASSWORD = "correct horse battery"


async def add_user(
    hub: Hub, username: str, role: str = "officer", jurisdiction: str | None = WUJIANG
) -> None:
    user = accounts.new_user(load_region(), username, role, jurisdiction, None, 0)
    await hub.db.run(lambda tx: accounts.add_user(tx.conn, user, PASSWORD))


async def count(hub: Hub, sql: str, *args: Any) -> int:
    return int(await hub.db.run(lambda tx: tx.conn.execute(sql, args).fetchone()[0]))


@pytest.fixture
async def web(hub: Hub) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    from hub.console.app import create_app

    app = create_app(hub=hub)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        yield c, app


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(SESSION, json={"username": username, "password": password})


async def test_sign_in_sets_a_strict_httponly_cookie_and_returns_the_csrf_token(
    web: tuple[httpx.AsyncClient, Any], hub: Hub
) -> None:
    client, _ = web
    await add_user(hub, "officer.wujiang")
    res = await sign_in(client, "officer.wujiang")
    assert res.status_code == 200, res.text
    me = res.json()
    assert {k: me[k] for k in ("username", "name", "role", "jurisdiction")} == {
        "username": "officer.wujiang",
        "name": "officer.wujiang",
        "role": "officer",
        "jurisdiction": WUJIANG,
    }
    assert len(me["csrf_token"]) >= 32
    assert res.headers["cache-control"] == "no-store"  # it carries the CSRF token
    cookie = res.headers["set-cookie"]
    parts = {p.strip().split("=")[0].lower() for p in cookie.split(";")}
    assert cookie.startswith("liandong_session=")
    assert {"httponly", "path", "samesite"} <= parts and "secure" not in parts
    assert "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    token = client.cookies["liandong_session"]
    # Only the cookie's SHA-256 is stored, never the cookie itself.
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert await count(hub, "SELECT COUNT(*) FROM sessions WHERE id = ?", digest) == 1
    assert await count(hub, "SELECT COUNT(*) FROM sessions WHERE id = ?", token) == 0
    stored = await hub.db.run(
        lambda tx: tx.conn.execute("SELECT password_hash FROM users").fetchone()[0]
    )
    assert str(stored).startswith("$argon2id$") and PASSWORD not in str(stored)

    again = await client.get(SESSION)
    assert again.status_code == 200 and again.json() == me
    # A signed-in user reads the regional picture.
    assert (await client.get("/api/v1/overview")).status_code == 200


async def test_secure_cookies_when_configured(web: tuple[httpx.AsyncClient, Any], hub: Hub) -> None:
    client, app = web
    app.state.auth = AuthSettings.from_env({"LIANDONG_COOKIE_SECURE": "1"})
    await add_user(hub, "officer.secure")
    res = await sign_in(client, "officer.secure")
    assert res.status_code == 200
    assert "secure" in {p.strip().lower() for p in res.headers["set-cookie"].split(";")}
    with pytest.raises(InvalidInput, match="LIANDONG_COOKIE_SECURE=yes"):
        AuthSettings.from_env({"LIANDONG_COOKIE_SECURE": "yes"})
    with pytest.raises(InvalidInput, match="LIANDONG_SIGNIN_MAX_FAILURES=0"):
        AuthSettings.from_env({"LIANDONG_SIGNIN_MAX_FAILURES": "0"})


async def test_wrong_password_unknown_user_and_disabled_user_get_the_same_401(
    web: tuple[httpx.AsyncClient, Any], hub: Hub
) -> None:
    client, _ = web
    await add_user(hub, "officer.a")
    await add_user(hub, "officer.off")
    await hub.db.run(lambda tx: accounts.disable(tx.conn, "officer.off"))
    answers = [
        await sign_in(client, "officer.a", "wrong password!"),
        await sign_in(client, "nobody", PASSWORD),
        await sign_in(client, "officer.off", PASSWORD),
    ]
    assert [r.status_code for r in answers] == [401, 401, 401]
    assert answers[0].headers["content-type"] == "application/problem+json"
    assert len({r.json()["detail"] for r in answers}) == 1
    assert all("set-cookie" not in r.headers for r in answers)
    assert await count(hub, "SELECT COUNT(*) FROM sessions") == 0
    assert await count(hub, "SELECT COUNT(*) FROM signin_attempts WHERE outcome='failed'") == 3
    assert (await client.get(SESSION)).status_code == 401
    assert (await client.get("/api/v1/overview")).status_code == 401


async def test_sign_in_needs_json_so_a_form_cannot_sign_a_victim_in(
    web: tuple[httpx.AsyncClient, Any], hub: Hub
) -> None:
    client, _ = web
    await add_user(hub, "officer.form")
    form = await client.post(SESSION, data={"username": "officer.form", "password": PASSWORD})
    assert form.status_code == 415 and "application/json" in form.json()["detail"]
    missing = await client.post(SESSION, json={"username": "officer.form"})
    assert missing.status_code == 400 and "password" in missing.json()["detail"]
    assert await count(hub, "SELECT COUNT(*) FROM sessions") == 0


async def _task_for_wujiang(client: httpx.AsyncClient, qingpu: str) -> str:
    headers = {"Authorization": f"Bearer {qingpu}"}
    res = await client.post(
        "/api/v1/incidents", content=orjson.dumps(cap("csrf-1")), headers=headers
    )
    assert res.status_code == 202, res.text
    found: list[dict[str, Any]] = []

    async def planned() -> bool:
        got = await client.get("/api/v1/tasks", params={"incident": "csrf-1"}, headers=headers)
        found[:] = [t for t in got.json()["tasks"] if t["target"] == WUJIANG]
        return bool(found)

    await wait_for(planned)
    return str(found[0]["id"])


async def test_state_changes_need_the_sessions_csrf_token(
    web: tuple[httpx.AsyncClient, Any], hub: Hub, token: Callable[[str], str]
) -> None:
    client, _ = web
    task_id = await _task_for_wujiang(client, token(QINGPU))
    await add_user(hub, "officer.wujiang")
    csrf = (await sign_in(client, "officer.wujiang")).json()["csrf_token"]
    url = f"/api/v1/tasks/{task_id}/acknowledge"

    missing = await client.post(url)
    assert missing.status_code == 403
    assert "missing X-CSRF-Token" in missing.json()["detail"]
    wrong = await client.post(url, headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status_code == 403 and "wrong X-CSRF-Token" in wrong.json()["detail"]
    assert (await hub.tasks.get(task_id)).state.value == "issued"  # nothing changed

    ok = await client.post(url, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "acknowledged"
    # The officer is recorded as who acted.
    (update,) = await hub.bus.read(topics.TASK_UPDATES, 0, 10)
    assert decode(update.value).payload_as(TaskUpdated).by == "user:officer.wujiang"


async def test_rate_limit_per_username_and_per_address(
    web: tuple[httpx.AsyncClient, Any], hub: Hub
) -> None:
    client, app = web
    app.state.auth = AuthSettings(signin_max_failures=3, signin_window_s=300)
    await add_user(hub, "officer.target")
    await add_user(hub, "officer.other")
    for _ in range(3):
        assert (await sign_in(client, "officer.target", "guess guess")).status_code == 401
    limited = await sign_in(client, "officer.target", PASSWORD)  # even the right password
    assert limited.status_code == 429, limited.text
    assert 290 <= int(limited.headers["retry-after"]) <= 300
    assert "username" in limited.json()["detail"]
    assert "set-cookie" not in limited.headers
    assert (
        await count(
            hub, "SELECT COUNT(*) FROM signin_attempts WHERE outcome = 'limited' AND username = ?",
            "officer.target",
        )
    ) == 1  # fmt: skip
    # Another user from the same address is not locked out by someone else's failures...
    assert (await sign_in(client, "officer.other")).status_code == 200
    # ...until the address itself failed four times the per-user limit (12).
    for n in range(9):
        assert (await sign_in(client, f"guess{n}", "guess guess")).status_code == 401
    by_address = await sign_in(client, "officer.other")
    assert by_address.status_code == 429 and "address" in by_address.json()["detail"]
    # The window passes (the failures are moved back past it): signing in works again.
    await hub.db.run(
        lambda tx: tx.conn.execute("UPDATE signin_attempts SET at_ms = at_ms - 301000")
    )
    assert (await sign_in(client, "officer.target")).status_code == 200


async def test_sign_out_ends_the_session(web: tuple[httpx.AsyncClient, Any], hub: Hub) -> None:
    client, _ = web
    await add_user(hub, "coord", role="coordinator", jurisdiction=None)
    me = (await sign_in(client, "coord")).json()
    assert (me["role"], me["jurisdiction"]) == ("coordinator", None)
    cookie = client.cookies["liandong_session"]
    refused = await client.delete(SESSION)
    assert refused.status_code == 403 and (await client.get(SESSION)).status_code == 200
    out = await client.delete(SESSION, headers={"X-CSRF-Token": me["csrf_token"]})
    assert out.status_code == 204
    assert "liandong_session" not in client.cookies
    assert await count(hub, "SELECT COUNT(*) FROM sessions") == 0
    client.cookies.set("liandong_session", cookie)  # the old cookie, replayed
    assert (await client.get(SESSION)).status_code == 401


async def test_disabled_users_and_expired_sessions_are_signed_out(
    web: tuple[httpx.AsyncClient, Any], hub: Hub
) -> None:
    client, _ = web
    await add_user(hub, "officer.gone")
    await add_user(hub, "officer.late")
    assert (await sign_in(client, "officer.gone")).status_code == 200
    await hub.db.run(lambda tx: accounts.disable(tx.conn, "officer.gone"))
    assert (await client.get(SESSION)).status_code == 401
    assert (await client.get("/api/v1/overview")).status_code == 401

    assert (await sign_in(client, "officer.late")).status_code == 200
    assert (await client.get(SESSION)).status_code == 200
    past = time.time_ns() // 1_000_000 - 1
    await hub.db.run(lambda tx: tx.conn.execute("UPDATE sessions SET expires_ms = ?", (past,)))
    assert (await client.get(SESSION)).status_code == 401


def test_new_users_are_checked() -> None:
    region = load_region()
    cases = [
        (("Bad Name", "officer", WUJIANG), "username 'Bad Name'"),
        (("x.y", "chief", None), "role 'chief'"),
        (("x.y", "officer", None), "needs --jurisdiction"),
        (("x.y", "officer", "999999"), "'999999' is not one of the region"),
        (("x.y", "coordinator", WUJIANG), "leave out --jurisdiction"),
    ]
    for (username, role, jurisdiction), message in cases:
        with pytest.raises(InvalidInput, match=message):
            accounts.new_user(region, username, role, jurisdiction, None, 0)
    with pytest.raises(InvalidInput, match="10 to 1024 characters"):
        accounts.hash_password("short")


def _cli(data: Path, *args: str, input: str | None = None) -> Any:
    from hub.cli import app

    return CliRunner().invoke(app, ["users", *args, "--data", str(data)], input=input)


async def test_users_cli_adds_lists_disables_and_changes_passwords(
    web: tuple[httpx.AsyncClient, Any], hub: Hub, settings: Settings, tmp_path: Path
) -> None:
    client, _ = web
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    data = settings.data
    done = _cli(
        data, "add", "officer.jiashan", "--jurisdiction", JIASHAN, "--name", "嘉善县值班员",
        "--password-file", str(secret),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "officer" in done.output and JIASHAN in done.output and PASSWORD not in done.output
    again = _cli(data, "add", "officer.jiashan", "--jurisdiction", JIASHAN, "--password-file",
                 str(secret))  # fmt: skip
    assert again.exit_code == 2 and "already exists" in again.output
    no_file = _cli(data, "add", "officer.nofile", "--jurisdiction", JIASHAN)
    assert no_file.exit_code == 2 and "--password-file" in no_file.output
    bad_role = _cli(data, "add", "x.y", "--role", "chief", "--password-file", str(secret))
    assert bad_role.exit_code == 2 and "role 'chief'" in bad_role.output

    listed = _cli(data, "list")
    assert listed.exit_code == 0
    assert f"officer.jiashan\tofficer\t{JIASHAN}\tactive\t嘉善县值班员" in listed.output
    assert "argon2" not in listed.output

    me = await sign_in(client, "officer.jiashan")
    assert me.status_code == 200 and me.json()["name"] == "嘉善县值班员"

    new = tmp_path / "pw2"
    new.write_text("another long password\n", encoding="utf-8")
    assert _cli(data, "passwd", "officer.jiashan", "--password-file", str(new)).exit_code == 0
    assert (await client.get(SESSION)).status_code == 401  # sessions ended with the old password
    assert (await sign_in(client, "officer.jiashan")).status_code == 401
    assert (await sign_in(client, "officer.jiashan", "another long password")).status_code == 200

    assert _cli(data, "disable", "officer.jiashan").exit_code == 0
    assert (await client.get(SESSION)).status_code == 401
    assert "disabled" in _cli(data, "list").output
    assert (await sign_in(client, "officer.jiashan", "another long password")).status_code == 401
    missing = _cli(data, "disable", "nobody")
    assert missing.exit_code == 2 and "no user named 'nobody'" in missing.output


def test_demo_seeds_an_officer_per_city_and_a_coordinator(settings: Settings) -> None:
    from hub.store import users as store
    from hub.store.db import connect_direct
    from hub.users_cli import seed_demo

    lines = seed_demo(settings, "http://127.0.0.1:8000/")
    assert any(accounts.DEMO_PASSWORD in line and "officer.suzhou" in line for line in lines)
    seed_demo(settings, "http://127.0.0.1:8000/")  # a second run changes nothing
    conn = connect_direct(settings.database_path)
    try:
        found = {u.username: u for u in store.list_users(conn)}
        user, password_hash = store.get_user(conn, "officer.suzhou") or (None, "")
    finally:
        conn.close()
    assert len(found) == 10 and found["coordinator"].role == "coordinator"
    cities = {u.jurisdiction for u in found.values() if u.role == "officer"}
    assert cities == set(accounts.DEMO_CITIES)
    assert user is not None and accounts.verify_password(password_hash, accounts.DEMO_PASSWORD)


async def test_administrators_manage_users_over_http(
    web: tuple[httpx.AsyncClient, Any], hub: Hub
) -> None:
    client, app = web
    await add_user(hub, "root", role="admin", jurisdiction=None)
    csrf = {"X-CSRF-Token": (await sign_in(client, "root")).json()["csrf_token"]}
    new = {"username": "officer.kunshan", "role": "officer", "jurisdiction": "320583",
           "name": "昆山市值班员", "password": PASSWORD}  # fmt: skip
    made = await client.post("/api/v1/users", json=new, headers=csrf)
    assert made.status_code == 201, made.text
    assert made.json() == {
        "username": "officer.kunshan", "name": "昆山市值班员", "role": "officer",
        "jurisdiction": "320583", "disabled": False,
    }  # fmt: skip
    bad = await client.post("/api/v1/users", json={**new, "username": "x.y", "jurisdiction": None},
                            headers=csrf)  # fmt: skip
    assert bad.status_code == 400 and "needs --jurisdiction" in bad.json()["detail"]
    twice = await client.post("/api/v1/users", json=new, headers=csrf)
    assert twice.status_code == 409
    listed = await client.get("/api/v1/users")
    assert [u["username"] for u in listed.json()["users"]] == ["officer.kunshan", "root"]
    assert "argon2" not in listed.text
    own = await client.post("/api/v1/users/root/disable", headers=csrf)
    assert own.status_code == 400 and "their own account" in own.json()["detail"]

    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")
    async with other:
        assert (await sign_in(other, "officer.kunshan")).status_code == 200
        assert (await other.get("/api/v1/users")).status_code == 403  # officers do not
        off = await client.post("/api/v1/users/officer.kunshan/disable", headers=csrf)
        assert off.status_code == 200 and off.json()["disabled"] is True
        assert (await other.get(SESSION)).status_code == 401  # the session ended at once


def test_users_add_asks_twice_at_a_terminal_and_echoes_nothing(tmp_path: Path) -> None:
    """At a terminal the password is prompted for twice (hidden); the two must agree."""
    import os
    import pty
    import select
    import sys

    def run(*answers: str) -> tuple[int, str]:
        args = ["users", "add", "officer.tty", "--jurisdiction", WUJIANG]
        args += ["--data", str(tmp_path / "data")]
        pid, leader = pty.fork()  # the child's controlling terminal: what getpass opens
        if pid == 0:
            os.execv(sys.executable, [sys.executable, "-c", "from hub.cli import main; main()",
                                      *args])  # fmt: skip
        seen, pending = b"", list(answers)
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, f"the command stopped answering: {seen!r}"
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child exited and closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            # Answer once getpass wrote its prompt's last space: echo is off by then.
            if pending and seen.endswith(b": "):
                os.write(leader, pending.pop(0).encode() + b"\n")
        os.close(leader)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")

    code, output = run(PASSWORD, PASSWORD + "x")
    assert code == 2 and "the two passwords differ" in output
    code, output = run(PASSWORD, PASSWORD)
    assert code == 0, output
    assert "Password again" in output and "user 'officer.tty' added" in output
    assert PASSWORD not in output  # never echoed


async def test_a_hash_with_weaker_parameters_is_replaced_at_sign_in(
    web: tuple[httpx.AsyncClient, Any], hub: Hub
) -> None:
    from argon2 import PasswordHasher

    from hub.store import users as store

    client, _ = web
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("old pass")
    user = accounts.new_user(load_region(), "officer.old", "officer", WUJIANG, None, 0)
    await hub.db.run(lambda tx: store.add_user(tx.conn, user, weak))  # set under older rules
    assert (await sign_in(client, "officer.old", "old pass")).status_code == 200
    found = await hub.db.run(lambda tx: store.get_user(tx.conn, "officer.old"))
    assert found is not None and found[1] != weak and not accounts.needs_rehash(found[1])
    assert accounts.verify_password(found[1], "old pass")
