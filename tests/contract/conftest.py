"""The contract suites' databases: every test runs on SQLite and on PostgreSQL.

Brokers and PostgreSQL itself come from the root conftest (tests.brokers.*).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.store.db import Database
from hub.store.postgres import PostgresDatabase


@pytest.fixture(params=["sqlite", "postgres"])
async def opener(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], Any]]:
    """Opens the same database again each time it is called (a restart); closes them all."""
    opened: list[Any] = []
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None

    async def open_db() -> Any:
        db: Any = Database(tmp_path / "hub.db", "NORMAL") if url is None else PostgresDatabase(url)
        await db.start()
        opened.append(db)
        return db

    try:
        yield open_db
    finally:
        for db in opened:
            await db.stop()


@pytest.fixture
async def db(opener: Callable[[], Any]) -> Any:
    """One open database of the test's kind (closed by ``opener``)."""
    return await opener()
