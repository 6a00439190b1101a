"""Who is calling: an adapter (a bearer token bound to one jurisdiction) or a console user (a
session cookie, with a CSRF token on every state change).

``CurrentActor`` accepts either and yields an ``Actor``; ``CurrentAdapter`` accepts adapters
only (the intake and the transports' reports). Roles:

- ``adapter``: a city system; acts for its jurisdiction and what that ``speaks_for``.
- ``officer``: a duty officer of exactly one jurisdiction; acts like that jurisdiction's adapter.
- ``coordinator``: sees the whole region and approves; answers no jurisdiction's tasks.
- ``admin``: manages users; sees the whole region; acts for no jurisdiction.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.errors import InvalidInput, NotAllowed, Unauthenticated
from hub.intake.credentials import token_digest
from hub.model.region import speaks_for
from hub.runtime import Hub
from hub.store import users as user_store
from hub.store.adapters import AdapterCredential, adapter_by_token

_bearer = HTTPBearer(auto_error=False)
_CACHE_TTL_S = 30.0
COOKIE = "liandong_session"
CSRF_HEADER = "X-CSRF-Token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Role = Literal["adapter", "officer", "coordinator", "admin"]


async def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


CurrentHub = Annotated[Hub, Depends(get_hub)]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Sign-in settings, read once from ``LIANDONG_*`` when the app is built."""

    cookie_secure: bool = False
    session_hours: float = 12.0
    signin_max_failures: int = 5
    signin_window_s: int = 300

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AuthSettings:
        env = dict(os.environ) if env is None else env

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = env.get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise InvalidInput(f"{name}={raw}: expected a number") from None
            if not low <= value <= high:
                raise InvalidInput(f"{name}={raw}: expected {low:g} to {high:g}")
            return value

        secure = env.get("LIANDONG_COOKIE_SECURE", "0")
        if secure not in ("0", "1"):
            raise InvalidInput(f"LIANDONG_COOKIE_SECURE={secure}: expected 0 or 1")
        return cls(
            cookie_secure=secure == "1",
            session_hours=number("LIANDONG_SESSION_HOURS", 12.0, 0.01, 24 * 30),
            signin_max_failures=int(number("LIANDONG_SIGNIN_MAX_FAILURES", 5, 1, 1000)),
            signin_window_s=int(number("LIANDONG_SIGNIN_WINDOW_S", 300, 1, 86_400)),
        )


@dataclass(frozen=True, slots=True)
class Actor:
    """Whoever makes a request: ``id`` is the adapter's name or the user's name."""

    kind: Literal["adapter", "user"]
    id: str
    role: Role
    jurisdiction: str | None
    csrf_token: str | None = None

    @property
    def by(self) -> str:
        """How the actor is named in ledgers and events (users are prefixed ``user:``)."""
        return self.id if self.kind == "adapter" else f"user:{self.id}"

    def may_act_for(self, code: str) -> bool:
        """Whether this actor may change what belongs to ``code`` (tasks, stock)."""
        return self.jurisdiction is not None and speaks_for(self.jurisdiction, code)

    def require_jurisdiction(self, doing: str) -> str:
        """The actor's jurisdiction, or 403 for roles that act for none."""
        if self.jurisdiction is None:
            raise NotAllowed(f"a {self.role} acts for no jurisdiction and cannot {doing}")
        return self.jurisdiction


class TokenCache:
    """Known tokens for a short while, so the intake does not query per request."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, AdapterCredential]] = {}

    def get(self, digest: str) -> AdapterCredential | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, credential: AdapterCredential) -> None:
        self._entries[digest] = (time.monotonic() + _CACHE_TTL_S, credential)


async def authenticate(hub: Hub, cache: TokenCache, authorization: str | None) -> AdapterCredential:
    """The adapter behind ``Authorization: Bearer <token>``; a plain call for hot routes."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("an adapter token is required: 'Authorization: Bearer <token>'")
    digest = token_digest(token.strip())
    credential = cache.get(digest)
    if credential is None:
        credential = await hub.db.run(lambda tx: adapter_by_token(tx.conn, digest))
        if credential is None:
            raise Unauthenticated("unknown or revoked adapter token")
        cache.put(digest, credential)
    return credential


async def current_adapter(
    request: Request,
    auth: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AdapterCredential:
    header = f"{auth.scheme} {auth.credentials}" if auth is not None else None
    return await authenticate(request.app.state.hub, request.app.state.tokens, header)


CurrentAdapter = Annotated[AdapterCredential, Depends(current_adapter)]


def session_id(token: str) -> str:
    """What the database keeps of a session cookie: its SHA-256 (the cookie has 256 bits)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def session_actor(request: Request) -> Actor | None:
    """The signed-in user behind the session cookie, or None without a (live) session."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    hub: Hub = request.app.state.hub
    sid, at = session_id(token), now_ms()
    found = await hub.db.run(lambda tx: user_store.session_user(tx.conn, sid, at))
    if found is None:
        return None
    user, csrf = found
    return Actor("user", user.username, user.role, user.jurisdiction, csrf)


def check_csrf(request: Request, actor: Actor) -> None:
    """A state change by a signed-in user must carry the session's CSRF token."""
    if request.method not in STATE_CHANGING or actor.kind != "user":
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        raise NotAllowed(
            f"missing {CSRF_HEADER} header: a state change needs the session's CSRF token "
            "(from POST or GET /api/v1/session)"
        )
    if not secrets.compare_digest(sent.encode(), (actor.csrf_token or "").encode()):
        raise NotAllowed(f"wrong {CSRF_HEADER}: it is not this session's CSRF token")


async def current_actor(
    request: Request,
    auth: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """An adapter (bearer token: no CSRF, browsers never add it by themselves) or a signed-in
    user (session cookie; CSRF token required on POST/PUT/PATCH/DELETE)."""
    if auth is not None:
        header = f"{auth.scheme} {auth.credentials}"
        adapter = await authenticate(request.app.state.hub, request.app.state.tokens, header)
        return Actor("adapter", adapter.name, "adapter", adapter.jurisdiction)
    actor = await session_actor(request)
    if actor is None:
        raise Unauthenticated(
            "sign in (POST /api/v1/session) or send an adapter token: 'Authorization: Bearer "
            "<token>'"
        )
    check_csrf(request, actor)
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_role(*roles: Role) -> Callable[..., Coroutine[Any, Any, Actor]]:
    """A dependency admitting only ``roles`` (403 naming them otherwise), e.g.
    ``Annotated[Actor, Depends(require_role("coordinator"))]``."""
    allowed = frozenset(roles)

    async def dependency(actor: CurrentActor) -> Actor:
        if actor.role not in allowed:
            raise NotAllowed(
                f"this needs the role {' or '.join(sorted(allowed))}; {actor.kind} "
                f"'{actor.id}' is {actor.role}"
            )
        return actor

    return dependency


def auth_settings(request: Request) -> AuthSettings:
    found: AuthSettings | None = getattr(request.app.state, "auth", None)
    if found is None:
        found = request.app.state.auth = AuthSettings.from_env()
    return found
