"""The database schema, as numbered migrations recorded in ``PRAGMA user_version``."""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: the embedded log, consumer offsets, adapters, incidents, tasks
    """
    CREATE TABLE log (
        "offset"  INTEGER PRIMARY KEY AUTOINCREMENT,
        topic     TEXT NOT NULL,
        key       TEXT,
        ts_ms     INTEGER NOT NULL,
        value     BLOB NOT NULL
    );
    CREATE INDEX log_topic_offset ON log (topic, "offset");
    CREATE TABLE consumer_offsets (
        grp       TEXT NOT NULL,
        topic     TEXT NOT NULL,
        partition INTEGER NOT NULL,
        "offset"  INTEGER NOT NULL,
        PRIMARY KEY (grp, topic, partition)
    );
    CREATE TABLE adapters (
        name          TEXT PRIMARY KEY,
        jurisdiction  TEXT NOT NULL,
        token_sha256  TEXT NOT NULL UNIQUE,
        created       TEXT NOT NULL,
        revoked       INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE incidents (
        sender       TEXT NOT NULL,
        identifier   TEXT NOT NULL,
        thread       TEXT NOT NULL,
        version      INTEGER NOT NULL,
        msg_type     TEXT NOT NULL,
        status       TEXT NOT NULL,
        sent         TEXT NOT NULL,
        digest       TEXT NOT NULL,
        received_ms  INTEGER NOT NULL,
        event_id     TEXT NOT NULL,
        body         BLOB NOT NULL,
        PRIMARY KEY (sender, identifier)
    );
    CREATE INDEX incidents_thread ON incidents (thread, version);
    CREATE INDEX incidents_identifier ON incidents (identifier);
    CREATE TABLE tasks (
        id          TEXT PRIMARY KEY,
        incident    TEXT NOT NULL,
        target      TEXT NOT NULL,
        state       TEXT NOT NULL,
        due_ms      INTEGER NOT NULL,
        updated_ms  INTEGER NOT NULL,
        body        BLOB NOT NULL
    );
    CREATE INDEX tasks_incident ON tasks (incident);
    CREATE INDEX tasks_target_state ON tasks (target, state);
    """,
    # 2: ids of events emitted once per cause but not tied to a row of their own
    """
    CREATE TABLE emitted (
        event_id  TEXT PRIMARY KEY
    );
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version now in force.

    The version is read again after taking the write lock, so two processes opening a new data
    directory at once do not both apply the same migration.
    """
    if _version(conn) == len(MIGRATIONS):
        return len(MIGRATIONS)
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _version(conn)
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"database schema version {current} is newer than this hub ({len(MIGRATIONS)})"
            )
        for number in range(current, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT the open transaction first; split and run one by one instead.
    return [s.strip() for s in script.split(";") if s.strip()]
