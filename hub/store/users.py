"""Console users, their sessions and sign-in attempts, in SQL both databases accept.

A user's password is kept only as an argon2 hash; a session only as the SHA-256 of its cookie.
Sign-in attempts are rows (not memory) so that every hub instance on one PostgreSQL counts the
same failures.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import Conflict
from hub.store.sql import Connection

ROLES = ("officer", "coordinator", "admin")
_USER_COLUMNS = "username, name, role, jurisdiction, disabled, created_ms"


@dataclass(frozen=True, slots=True)
class User:
    username: str
    name: str
    role: str
    jurisdiction: str | None
    disabled: bool
    created_ms: int


def _user(row: tuple[object, ...]) -> User:
    username, name, role, jurisdiction, disabled, created = row
    return User(
        str(username),
        str(name),
        str(role),
        None if jurisdiction is None else str(jurisdiction),
        bool(disabled),
        int(created),  # type: ignore[call-overload]
    )


def add_user(conn: Connection, user: User, password_hash: str) -> None:
    cur = conn.execute(
        "INSERT INTO users (username, name, role, jurisdiction, password_hash, disabled, "
        "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            user.username,
            user.name,
            user.role,
            user.jurisdiction,
            password_hash,
            1 if user.disabled else 0,
            user.created_ms,
        ),
    )
    if cur.rowcount != 1:
        raise Conflict(f"a user named '{user.username}' already exists")


def get_user(conn: Connection, username: str) -> tuple[User, str] | None:
    """The user and their password hash."""
    row = conn.execute(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = ?", (username,)
    ).fetchone()
    return (_user(tuple(row[:6])), str(row[6])) if row else None


def list_users(conn: Connection) -> list[User]:
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
    return [_user(tuple(r)) for r in rows]


def set_disabled(conn: Connection, username: str, disabled: bool) -> bool:
    """Disable (or enable) a user; a disabled user's sessions end at once."""
    cur = conn.execute(
        "UPDATE users SET disabled = ? WHERE username = ?", (1 if disabled else 0, username)
    )
    if disabled:
        conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
    return cur.rowcount == 1


def set_password(
    conn: Connection, username: str, password_hash: str, *, end_sessions: bool
) -> bool:
    cur = conn.execute(
        "UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)
    )
    if end_sessions:
        conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
    return cur.rowcount == 1


def create_session(
    conn: Connection, sid: str, username: str, csrf: str, now_ms: int, expires_ms: int
) -> None:
    conn.execute("DELETE FROM sessions WHERE expires_ms <= ?", (now_ms,))
    conn.execute(
        "INSERT INTO sessions (id, username, csrf_token, created_ms, expires_ms, last_seen_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (sid, username, csrf, now_ms, expires_ms, now_ms),
    )


_TOUCH_MS = 60_000  # last seen is written at most once a minute per session


def session_user(conn: Connection, sid: str, now_ms: int) -> tuple[User, str] | None:
    """The enabled user of a live session and the session's CSRF token."""
    row = conn.execute(
        "SELECT u.username, u.name, u.role, u.jurisdiction, u.disabled, u.created_ms, "
        "s.csrf_token, s.last_seen_ms FROM sessions s JOIN users u ON u.username = s.username "
        "WHERE s.id = ? AND s.expires_ms > ? AND u.disabled = 0",
        (sid, now_ms),
    ).fetchone()
    if row is None:
        return None
    if now_ms - int(row[7]) >= _TOUCH_MS:
        conn.execute("UPDATE sessions SET last_seen_ms = ? WHERE id = ?", (now_ms, sid))
    return _user(tuple(row[:6])), str(row[6])


def delete_session(conn: Connection, sid: str) -> None:
    conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))


def record_attempt(
    conn: Connection, username: str, address: str, outcome: str, now_ms: int
) -> None:
    """``outcome``: ``ok``, ``failed`` (unknown user or wrong password) or ``limited`` (429)."""
    conn.execute(
        "INSERT INTO signin_attempts (username, address, outcome, at_ms) VALUES (?, ?, ?, ?)",
        (username, address, outcome, now_ms),
    )


def limited_until(
    conn: Connection, column: str, value: str, limit: int, since_ms: int
) -> int | None:
    """When ``limit`` failures of this username (or address) since ``since_ms`` fall out of
    the window: the time of the ``limit``-th most recent failure, or None below the limit.
    For a username, failures before its last successful sign-in do not count."""
    if column not in ("username", "address"):
        raise ValueError(f"no sign-in attempts are counted by {column}")
    floor = since_ms
    if column == "username":
        row = conn.execute(
            "SELECT MAX(at_ms) FROM signin_attempts WHERE username = ? AND outcome = 'ok'",
            (value,),
        ).fetchone()
        if row is not None and row[0] is not None:
            floor = max(floor, int(row[0]))
    row = conn.execute(
        f"SELECT at_ms FROM signin_attempts WHERE {column} = ? AND outcome = 'failed' "
        "AND at_ms > ? ORDER BY at_ms DESC LIMIT 1 OFFSET ?",
        (value, floor, limit - 1),
    ).fetchone()
    return None if row is None else int(row[0])
