"""Console users, sessions and sign-in attempts: the same answers on SQLite and PostgreSQL
(migration 0005 and ``hub.store.users``, portable SQL), and one count of failures however many
hub instances share the database."""

from __future__ import annotations

from typing import Any

import pytest

from hub import accounts
from hub.errors import Conflict, NotFound
from hub.region import load_region
from hub.store import users as store
from hub.store.postgres import PostgresDatabase

WUJIANG = "320509"


def _user(username: str, role: str = "officer", code: str | None = WUJIANG) -> store.User:
    return accounts.new_user(load_region(), username, role, code, None, 1000)


async def test_users_and_sessions(db: Any) -> None:
    officer = _user("officer.wujiang")
    await db.run(lambda tx: store.add_user(tx.conn, officer, "hash-1"))
    with pytest.raises(Conflict, match="already exists"):
        await db.run(lambda tx: store.add_user(tx.conn, officer, "hash-2"))
    await db.run(lambda tx: store.add_user(tx.conn, _user("coord", "coordinator", None), "h"))
    assert [u.username for u in await db.run(lambda tx: store.list_users(tx.conn))] == [
        "coord",
        "officer.wujiang",
    ]
    found = await db.run(lambda tx: store.get_user(tx.conn, "officer.wujiang"))
    assert found == (officer, "hash-1")

    # The database itself refuses an officer without a jurisdiction.
    with pytest.raises(Exception, match="users_role_jurisdiction"):
        await db.run(
            lambda tx: tx.conn.execute(
                "INSERT INTO users (username, name, role, password_hash, created_ms) "
                "VALUES ('x', 'x', 'officer', 'h', 0)"
            )
        )

    await db.run(lambda tx: store.create_session(tx.conn, "s1", officer.username, "c1", 0, 100))
    live = await db.run(lambda tx: store.session_user(tx.conn, "s1", 50))
    assert live is not None and live == (officer, "c1")
    assert await db.run(lambda tx: store.session_user(tx.conn, "s1", 100)) is None  # expired
    assert await db.run(lambda tx: store.session_user(tx.conn, "nope", 50)) is None

    await db.run(
        lambda tx: store.create_session(tx.conn, "s2", officer.username, "c2", 0, 9_000_000_000)
    )
    await db.run(lambda tx: accounts.disable(tx.conn, officer.username))
    assert await db.run(lambda tx: store.session_user(tx.conn, "s2", 50)) is None
    with pytest.raises(NotFound, match="no user named 'ghost'"):
        await db.run(lambda tx: accounts.disable(tx.conn, "ghost"))


async def test_failed_sign_ins_are_counted_by_username_and_address(db: Any) -> None:
    def limited(username: str, address: str, now: int) -> Any:
        return db.run(
            lambda tx: accounts.rate_limited(
                tx.conn, username, address, max_failures=2, window_s=60, now_ms=now
            )
        )

    def attempt(username: str, address: str, outcome: str, at: int) -> Any:
        return db.run(lambda tx: store.record_attempt(tx.conn, username, address, outcome, at))

    await attempt("a", "10.0.0.1", "failed", 1_000)
    assert await limited("a", "10.0.0.1", 2_000) is None
    await attempt("a", "10.0.0.2", "failed", 2_000)  # another address, the same username
    found = await limited("a", "10.0.0.3", 3_000)
    assert found == accounts.Limited(retry_after_s=58, by="username")
    assert await limited("a", "10.0.0.3", 61_001) is None  # the first failure left the window
    # A success wipes the username's slate (not the address's).
    await attempt("a", "10.0.0.1", "ok", 4_000)
    assert await limited("a", "10.0.0.9", 5_000) is None
    for n in range(8):  # the address: four times the per-username limit
        await attempt(f"u{n}", "10.0.0.7", "failed", 10_000 + n)
    by_address = await limited("fresh", "10.0.0.7", 20_000)
    assert by_address is not None and by_address.by == "address"
    # Refusals (429) are recorded but do not count as failures.
    await attempt("b", "10.0.0.8", "limited", 20_000)
    await attempt("b", "10.0.0.8", "limited", 20_001)
    assert await limited("b", "10.0.0.8", 21_000) is None
    with pytest.raises(ValueError, match="no sign-in attempts are counted by"):
        await db.run(lambda tx: store.limited_until(tx.conn, "password", "x", 1, 0))


async def test_every_instance_counts_the_same_failures(
    postgres_url: str,
) -> None:
    first, second = PostgresDatabase(postgres_url), PostgresDatabase(postgres_url)
    await first.start()
    await second.start()
    try:
        for at, db in ((1_000, first), (2_000, second)):
            await db.run(
                lambda tx, at=at: store.record_attempt(tx.conn, "a", "10.0.0.1", "failed", at)
            )
        for db in (first, second):
            found = await db.run(
                lambda tx: accounts.rate_limited(
                    tx.conn, "a", "10.0.0.5", max_failures=2, window_s=60, now_ms=3_000
                )
            )
            assert found is not None and found.by == "username"
    finally:
        await first.stop()
        await second.stop()
