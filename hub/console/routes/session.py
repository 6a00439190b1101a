"""``/api/v1/session``: console sign-in, who is signed in, sign-out.

- ``POST`` (open, JSON only: a form cannot sign a victim in as someone else): 200 with the user
  and the session's CSRF token, and the ``liandong_session`` cookie (HttpOnly, SameSite=Strict,
  Path=/, Secure with ``LIANDONG_COOKIE_SECURE=1``). Wrong credentials: 401, the same answer for
  an unknown user, a wrong password and a disabled user. Too many failures for the username or
  from the client address within ``LIANDONG_SIGNIN_WINDOW_S``: 429 with ``Retry-After``; every
  attempt is recorded in ``signin_attempts``.
- ``GET``: the signed-in user (session cookie only), else 401.
- ``DELETE``: sign out (session cookie and CSRF token), 204.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub import accounts
from hub.console.auth import (
    COOKIE,
    Actor,
    auth_settings,
    check_csrf,
    now_ms,
    session_actor,
    session_id,
)
from hub.console.problems import problem
from hub.errors import InvalidInput, Unauthenticated
from hub.runtime import Hub
from hub.store import users as store

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/session", tags=["session"])
NO_STORE = {"Cache-Control": "no-store"}  # the answer carries the CSRF token


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=accounts.MAX_PASSWORD)


def _user_json(actor: Actor, name: str) -> dict[str, Any]:
    return {
        "username": actor.id,
        "name": name,
        "role": actor.role,
        "jurisdiction": actor.jurisdiction,
        "csrf_token": actor.csrf_token,
    }


async def _display_name(hub: Hub, username: str) -> str:
    found = await hub.db.run(lambda tx: store.get_user(tx.conn, username))
    return found[0].name if found else username


@router.post("")
async def sign_in(request: Request) -> Response:
    """Sign in with a username and password (``application/json``)."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != "application/json":
        return problem(
            415,
            "Unsupported media type",
            'sign in with a JSON body {"username": ..., "password": ...} '
            "(Content-Type: application/json)",
        )
    try:
        body = SignIn.model_validate_json(await request.body())
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"]) or "(body)" for e in exc.errors())
        raise InvalidInput(f"a sign-in needs username and password; wrong: {where}") from None
    hub: Hub = request.app.state.hub
    settings = auth_settings(request)
    username = body.username.strip().lower()
    address = request.client.host if request.client else "unknown"
    at = now_ms()

    def limited(tx: Any) -> accounts.Limited | None:
        found = accounts.rate_limited(
            tx.conn,
            username,
            address,
            max_failures=settings.signin_max_failures,
            window_s=settings.signin_window_s,
            now_ms=at,
        )
        if found is not None:
            store.record_attempt(tx.conn, username, address, "limited", at)
        return found

    refused = await hub.db.run(limited)
    if refused is not None:
        log.warning("sign-in of '%s' from %s refused: too many failures", username, address)
        return _too_many(refused)
    found = await hub.db.run(lambda tx: store.get_user(tx.conn, username))
    user = await asyncio.to_thread(accounts.check_credentials, found, body.password)
    if user is None:
        await hub.db.run(lambda tx: store.record_attempt(tx.conn, username, address, "failed", at))
        raise Unauthenticated("wrong username or password")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = at + int(settings.session_hours * 3_600_000)
    assert found is not None
    rehash = None
    if accounts.needs_rehash(found[1]):  # the hashing parameters were raised since
        rehash = await asyncio.to_thread(accounts.rehash, body.password)

    def open_session(tx: Any) -> None:
        store.record_attempt(tx.conn, username, address, "ok", at)
        store.create_session(tx.conn, session_id(token), username, csrf, at, expires)
        if rehash is not None:
            store.set_password(tx.conn, username, rehash, end_sessions=False)

    await hub.db.run(open_session)
    actor = Actor("user", user.username, user.role, user.jurisdiction, csrf)  # type: ignore[arg-type]
    response = Response(
        orjson.dumps(_user_json(actor, user.name)), media_type="application/json", headers=NO_STORE
    )
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


def _too_many(refused: accounts.Limited) -> Response:
    response = problem(
        429,
        "Too many sign-in attempts",
        f"too many failed sign-ins for this {refused.by}; try again in {refused.retry_after_s} s",
    )
    response.headers["Retry-After"] = str(refused.retry_after_s)
    return response


async def _signed_in(request: Request) -> Actor:
    actor = await session_actor(request)
    if actor is None:
        raise Unauthenticated("not signed in (POST /api/v1/session)")
    return actor


@router.get("")
async def who(request: Request) -> Response:
    """The signed-in user and the session's CSRF token (after a page reload)."""
    actor = await _signed_in(request)
    name = await _display_name(request.app.state.hub, actor.id)
    return Response(
        orjson.dumps(_user_json(actor, name)), media_type="application/json", headers=NO_STORE
    )


@router.delete("", status_code=204)
async def sign_out(request: Request) -> Response:
    """End the session (needs its CSRF token); the cookie is cleared."""
    actor = await _signed_in(request)
    check_csrf(request, actor)
    sid = session_id(request.cookies[COOKIE])
    hub: Hub = request.app.state.hub
    await hub.db.run(lambda tx: store.delete_session(tx.conn, sid))
    response = Response(status_code=204)
    response.delete_cookie(
        COOKIE, path="/", secure=auth_settings(request).cookie_secure, httponly=True,
        samesite="strict",
    )  # fmt: skip
    return response
