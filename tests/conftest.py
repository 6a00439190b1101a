"""Shared fixtures: a real hub (SQLite in a temp directory) and an HTTP client for its API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from hub.intake.credentials import create_adapter
from hub.runtime import Hub
from hub.settings import Settings
from hub.store.db import connect_direct

REPO = Path(__file__).resolve().parent.parent

# Real databases and brokers, started on demand by the tests that ask for them.
pytest_plugins = ["tests.brokers.postgres", "tests.brokers.kafka"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Planning in-process keeps each test's hub quick to start; the subprocess tests
    # (crash safety, CLI, benchmark) run the default worker process.
    return Settings(data=tmp_path / "data", playbooks=REPO / "playbooks", engine_workers=0)


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    the_hub = Hub(settings)
    await the_hub.start()
    try:
        yield the_hub
    finally:
        await the_hub.stop()


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    from hub.console.app import create_app

    app = create_app(hub=hub)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        yield c


@pytest.fixture
def token(settings: Settings) -> Callable[[str], str]:
    """Create an adapter credential for a jurisdiction; returns ``Authorization`` headers' token."""
    counter = iter(range(1_000_000))

    def make(jurisdiction: str) -> str:
        conn = connect_direct(settings.database_path)
        try:
            return create_adapter(conn, f"test-{jurisdiction}-{next(counter)}", jurisdiction, "now")
        finally:
            conn.close()

    return make
