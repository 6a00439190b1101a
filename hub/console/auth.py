"""Adapter authentication: a bearer token bound to one jurisdiction."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.errors import Unauthenticated
from hub.intake.credentials import token_digest
from hub.runtime import Hub
from hub.store.adapters import AdapterCredential, adapter_by_token

_bearer = HTTPBearer(auto_error=False)
_CACHE_TTL_S = 30.0


async def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


CurrentHub = Annotated[Hub, Depends(get_hub)]


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
