"""Incident messages, every version kept, grouped into threads (an Alert and its Updates/Cancel)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.store.sql import UNPREPARED, Connection, chunks, insert_values, marks


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
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE sender = ? AND identifier = ?",
        (sender, identifier),
    ).fetchone()
    return StoredIncident(*row) if row else None


def read_incidents(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> Callable[[], dict[tuple[str, str], StoredIncident]]:
    """``get_incident`` for each of ``keys`` (sender, identifier), one statement per
    ``sql.ROWS_PER_STATEMENT`` identifiers, in two halves for ``sql.pipeline``: the statements
    are sent now; the returned function reads the answer (after the pipeline block), which maps
    each key found to its row."""
    wanted = set(keys)
    identifiers = sorted({identifier for _, identifier in wanted})
    cursors = [
        conn.execute(
            f"{UNPREPARED}SELECT {_COLUMNS} FROM incidents WHERE identifier IN ({marks(len(c))})",
            c,
        )
        for c in chunks(identifiers)
    ]

    def answer() -> dict[tuple[str, str], StoredIncident]:
        found = (StoredIncident(*row) for cur in cursors for row in cur.fetchall())
        return {(f.sender, f.identifier): f for f in found if (f.sender, f.identifier) in wanted}

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
    (latest,) = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM incidents WHERE thread = ?", (thread,)
    ).fetchone()
    return int(latest) + 1


def read_next_versions(conn: Connection, threads: Sequence[str]) -> Callable[[], dict[str, int]]:
    """``next_version`` of each of ``threads``, in two halves (see ``read_incidents``)."""
    distinct = sorted(set(threads))
    cursors = [
        conn.execute(
            f"{UNPREPARED}SELECT thread, MAX(version) FROM incidents "
            f"WHERE thread IN ({marks(len(c))}) GROUP BY thread",
            c,
        )
        for c in chunks(distinct)
    ]

    def answer() -> dict[str, int]:
        found = {str(t): int(v) + 1 for cur in cursors for t, v in cur.fetchall()}
        return {thread: found.get(thread, 1) for thread in distinct}

    return answer


def _values(row: StoredIncident) -> tuple[object, ...]:
    return (
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
    )


def insert_incident(conn: Connection, row: StoredIncident) -> None:
    conn.execute(f"INSERT INTO incidents ({_COLUMNS}) VALUES ({marks(11)})", _values(row))


def insert_incidents(conn: Connection, rows: Sequence[StoredIncident]) -> None:
    """``insert_incident`` for each of ``rows``, by multi-row statements."""
    insert_values(conn, f"INSERT INTO incidents ({_COLUMNS})", [_values(r) for r in rows])


def recent_incidents(conn: Connection, limit: int) -> list[StoredIncident]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents ORDER BY received_ms DESC, rowid DESC LIMIT ?", (limit,)
    ).fetchall()
    return [StoredIncident(*r) for r in rows]
