"""Adapter credentials: each token is bound to exactly one jurisdiction."""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import Conflict
from hub.store.sql import Connection


@dataclass(frozen=True, slots=True)
class AdapterCredential:
    name: str
    jurisdiction: str


def add_adapter(
    conn: Connection, name: str, jurisdiction: str, token_sha256: str, created: str
) -> None:
    cur = conn.execute(
        "INSERT INTO adapters (name, jurisdiction, token_sha256, created) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (name, jurisdiction, token_sha256, created),
    )
    if cur.rowcount != 1:
        raise Conflict(f"an adapter named '{name}' already exists")


def adapter_by_token(conn: Connection, token_sha256: str) -> AdapterCredential | None:
    row = conn.execute(
        "SELECT name, jurisdiction FROM adapters WHERE token_sha256 = ? AND revoked = 0",
        (token_sha256,),
    ).fetchone()
    return AdapterCredential(row[0], row[1]) if row else None


def list_adapters(conn: Connection) -> list[AdapterCredential]:
    rows = conn.execute(
        "SELECT name, jurisdiction FROM adapters WHERE revoked = 0 ORDER BY name"
    ).fetchall()
    return [AdapterCredential(n, j) for n, j in rows]
