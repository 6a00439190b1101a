"""Adapter credentials: each token is bound to exactly one jurisdiction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from hub.errors import Conflict


@dataclass(frozen=True, slots=True)
class AdapterCredential:
    name: str
    jurisdiction: str


def add_adapter(
    conn: sqlite3.Connection, name: str, jurisdiction: str, token_sha256: str, created: str
) -> None:
    try:
        conn.execute(
            "INSERT INTO adapters (name, jurisdiction, token_sha256, created) VALUES (?, ?, ?, ?)",
            (name, jurisdiction, token_sha256, created),
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"an adapter named '{name}' already exists") from None


def adapter_by_token(conn: sqlite3.Connection, token_sha256: str) -> AdapterCredential | None:
    row = conn.execute(
        "SELECT name, jurisdiction FROM adapters WHERE token_sha256 = ? AND revoked = 0",
        (token_sha256,),
    ).fetchone()
    return AdapterCredential(row[0], row[1]) if row else None


def list_adapters(conn: sqlite3.Connection) -> list[AdapterCredential]:
    rows = conn.execute("SELECT name, jurisdiction FROM adapters WHERE revoked = 0 ORDER BY name")
    return [AdapterCredential(n, j) for n, j in rows]
