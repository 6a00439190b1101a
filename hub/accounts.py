"""Console accounts: argon2 password hashes, checked user records, sign-in with its rate limit,
and the demo's users. Used by the console's session routes and by ``liandong users``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hub.errors import InvalidInput, NotFound
from hub.region.region import Region
from hub.store import users as store
from hub.store.sql import Connection

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Checked when the username is unknown, so that the answer takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

DEMO_PASSWORD = "liandong-demo"
DEMO_COORDINATOR = "coordinator"
# The nine cities of the 1+8 Shanghai metropolitan area: one duty officer each.
DEMO_CITIES = {
    "310000": "shanghai",
    "320500": "suzhou",
    "320200": "wuxi",
    "320400": "changzhou",
    "320600": "nantong",
    "330400": "jiaxing",
    "330500": "huzhou",
    "330200": "ningbo",
    "330900": "zhoushan",
}


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def rehash(password: str) -> str:
    """A new hash of a password just verified (no length rule: it was set under older ones)."""
    return _hasher.hash(password)


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters (got {len(password)})"
        )


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_user(
    region: Region,
    username: str,
    role: str,
    jurisdiction: str | None,
    name: str | None,
    now_ms: int,
) -> store.User:
    """A user record, checked: the name's form, the role, and the jurisdiction it needs."""
    if not _USERNAME.match(username):
        raise InvalidInput(
            f"username '{username}': 2 to 64 characters, lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    if role not in store.ROLES:
        raise InvalidInput(f"role '{role}': expected one of {', '.join(store.ROLES)}")
    if role == "officer":
        if not jurisdiction:
            raise InvalidInput("an officer needs --jurisdiction CODE (GB/T 2260)")
        if not region.is_known(jurisdiction):
            raise InvalidInput(
                f"jurisdiction '{jurisdiction}' is not one of the region (GB/T 2260 code expected)"
            )
    elif jurisdiction:
        raise InvalidInput(f"a {role} acts for the whole region: leave out --jurisdiction")
    display = (name or "").strip() or username
    if len(display) > 200:
        raise InvalidInput("a display name has at most 200 characters")
    return store.User(username, display, role, jurisdiction or None, False, now_ms)


def add_user(conn: Connection, user: store.User, password: str) -> None:
    store.add_user(conn, user, hash_password(password))


def change_password(conn: Connection, username: str, password: str) -> None:
    """Set a new password; the user's open sessions end."""
    if not store.set_password(conn, username, hash_password(password), end_sessions=True):
        raise NotFound(f"no user named '{username}'")


def disable(conn: Connection, username: str, disabled: bool = True) -> None:
    if not store.set_disabled(conn, username, disabled):
        raise NotFound(f"no user named '{username}'")


@dataclass(frozen=True, slots=True)
class Limited:
    """Too many failed sign-ins: try again after ``retry_after_s`` seconds."""

    retry_after_s: int
    by: str


def rate_limited(
    conn: Connection,
    username: str,
    address: str,
    *,
    max_failures: int,
    window_s: int,
    now_ms: int,
) -> Limited | None:
    """Whether this username, or this client address, failed too often within the window.

    An address may fail four times as often as one username (several officers behind one
    office gateway)."""
    since = now_ms - window_s * 1000
    checks = (("username", username, max_failures), ("address", address, max_failures * 4))
    for column, value, limit in checks:
        at = store.limited_until(conn, column, value, limit, since)
        if at is not None:
            retry_ms = at + window_s * 1000 - now_ms
            return Limited(max(1, -(-retry_ms // 1000)), column)
    return None


def check_credentials(found: tuple[store.User, str] | None, password: str) -> store.User | None:
    """The user when ``password`` is theirs and they are enabled; the same work either way."""
    if found is None:
        verify_password(_DUMMY_HASH, password)
        return None
    user, password_hash = found
    if not verify_password(password_hash, password) or user.disabled:
        return None
    return user


def seed_demo_users(conn: Connection, region: Region, now_ms: int) -> list[store.User]:
    """One duty officer per city of the region and a coordinator, password ``DEMO_PASSWORD``;
    users already there are left as they are. Returns the users created."""
    wanted = [
        new_user(region, f"officer.{slug}", "officer", code,
                 f"{region.jurisdiction(code).name_zh}值班员", now_ms)
        for code, slug in DEMO_CITIES.items()
    ]  # fmt: skip
    wanted.append(new_user(region, DEMO_COORDINATOR, "coordinator", None, "区域协调员", now_ms))
    existing = {u.username for u in store.list_users(conn)}
    created = [u for u in wanted if u.username not in existing]
    if created:
        password_hash = hash_password(DEMO_PASSWORD)  # hashed once: the demo's, not a secret
        for user in created:
            store.add_user(conn, user, password_hash)
    return created
