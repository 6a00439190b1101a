"""Adapter tokens: random secrets shown once, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets

from hub.store.adapters import add_adapter
from hub.store.sql import Connection


def new_token() -> str:
    return "ld_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (passwords would need argon2).
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_adapter(conn: Connection, name: str, jurisdiction: str, created: str) -> str:
    """Store a new adapter credential for ``jurisdiction``; returns its token (shown once)."""
    token = new_token()
    add_adapter(conn, name, jurisdiction, token_digest(token), created)
    return token
