"""Incident messages, every version kept, grouped into threads (an Alert and its Updates/Cancel)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hub.store.sql import Connection


@dataclass(frozen=True, slots=True)
class StoredIncident:
    sender: str
    identifier: str
    thread: str
    version: int
    msg_type: str
    status: str
    sent: str
    digest: str
    received_ms: int
    event_id: str
    body: bytes


_COLUMNS = (
    "sender, identifier, thread, version, msg_type, status, sent, digest, "
    "received_ms, event_id, body"
)


def get_incident(conn: Connection, sender: str, identifier: str) -> StoredIncident | None:
    return read_incident(conn, sender, identifier)()


def read_incident(
    conn: Connection, sender: str, identifier: str
) -> Callable[[], StoredIncident | None]:
    """``get_incident`` in two halves, for a pipeline (``sql.pipeline``): the statement is sent
    now, the returned function reads its answer (after the pipeline block)."""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE sender = ? AND identifier = ?",
        (sender, identifier),
    )

    def answer() -> StoredIncident | None:
        row = cur.fetchone()
        return StoredIncident(*row) if row else None

    return answer


def find_by_identifier(conn: Connection, identifier: str) -> list[StoredIncident]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE identifier = ? ORDER BY sender", (identifier,)
    ).fetchall()
    return [StoredIncident(*r) for r in rows]


def thread_versions(conn: Connection, thread: str) -> list[StoredIncident]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE thread = ? ORDER BY version", (thread,)
    ).fetchall()
    return [StoredIncident(*r) for r in rows]


def next_version(conn: Connection, thread: str) -> int:
    return read_next_version(conn, thread)()


def read_next_version(conn: Connection, thread: str) -> Callable[[], int]:
    """``next_version`` in two halves, for a pipeline (see ``read_incident``)."""
    cur = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM incidents WHERE thread = ?", (thread,)
    )
    return lambda: int(cur.fetchone()[0]) + 1


def insert_incident(conn: Connection, row: StoredIncident) -> None:
    conn.execute(
        f"INSERT INTO incidents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.sender,
            row.identifier,
            row.thread,
            row.version,
            row.msg_type,
            row.status,
            row.sent,
            row.digest,
            row.received_ms,
            row.event_id,
            row.body,
        ),
    )


def recent_incidents(conn: Connection, limit: int) -> list[StoredIncident]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents ORDER BY received_ms DESC, rowid DESC LIMIT ?", (limit,)
    ).fetchall()
    return [StoredIncident(*r) for r in rows]
