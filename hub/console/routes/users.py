"""``/api/v1/users``: console users, for administrators only (as ``liandong users`` does).

Listing shows names, roles, jurisdictions and state, never password hashes. Adding a user
takes the initial password in the JSON body (over the session, with its CSRF token); disabling
ends the user's sessions at once. Anyone but an administrator: 403 (401 without sign-in), and
nothing changes. An administrator cannot disable their own account (another must).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hub import accounts
from hub.console.auth import Actor, CurrentHub, now_ms, require_role
from hub.errors import InvalidInput
from hub.store import users as store

router = APIRouter(prefix="/api/v1/users", tags=["users"])
Admin = Annotated[Actor, Depends(require_role("admin"))]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=2, max_length=64)
    role: str
    jurisdiction: str | None = None
    name: str | None = Field(default=None, max_length=200)
    password: str = Field(min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD)


def _user_json(user: store.User) -> dict[str, Any]:
    return {
        "username": user.username,
        "name": user.name,
        "role": user.role,
        "jurisdiction": user.jurisdiction,
        "disabled": user.disabled,
    }


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


@router.get("")
async def list_users(hub: CurrentHub, admin: Admin) -> Response:
    """Every console user (administrators only)."""
    found = await hub.db.run(lambda tx: store.list_users(tx.conn))
    return _json({"users": [_user_json(u) for u in found]})


@router.post("", status_code=201)
async def add_user(body: NewUser, hub: CurrentHub, admin: Admin) -> Response:
    """Add a user: an officer needs a jurisdiction of the region; others take none."""
    user = accounts.new_user(
        hub.region, body.username, body.role, body.jurisdiction, body.name, now_ms()
    )
    password_hash = await asyncio.to_thread(accounts.hash_password, body.password)
    await hub.db.run(lambda tx: store.add_user(tx.conn, user, password_hash))
    return _json(_user_json(user), 201)


@router.post("/{username}/disable")
async def disable_user(username: str, hub: CurrentHub, admin: Admin) -> Response:
    """Disable a user; their sessions end at once."""
    if username == admin.id:
        raise InvalidInput("an administrator cannot disable their own account")
    await hub.db.run(lambda tx: accounts.disable(tx.conn, username))
    found = await hub.db.run(lambda tx: store.get_user(tx.conn, username))
    assert found is not None
    return _json(_user_json(found[0]))
