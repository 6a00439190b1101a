"""The engine's consumer against a real database: redelivery is harmless, failures are loud."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.bus import topics
from hub.bus.embedded import EmbeddedBus
from hub.bus.port import Outgoing
from hub.clock import FixedClock
from hub.engine.playbook import load_playbooks
from hub.engine.runner import EngineRunner
from hub.engine.workers import InProcessPlanner
from hub.model.envelope import Lane, derived_id, format_time
from hub.model.events import EvaluationFailed, IncidentReported, decode, make_event
from hub.model.incident import Incident
from hub.region import Region, load_region
from hub.store.db import Database
from tests.factories import cap

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
NOW = 1_782_865_800_000


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "hub.db", "NORMAL")
    database.open()
    try:
        yield database
    finally:
        database.close()


async def _report(bus: EmbeddedBus, identifier: str) -> None:
    incident = Incident.model_validate(cap(identifier))
    payload = IncidentReported(
        incident=incident, thread=incident.key, version=1, received=format_time(NOW)
    )
    envelope = make_event(
        "incident.reported",
        payload,
        id=derived_id("incident.reported", incident.key),
        source="/test",
        time=format_time(NOW),
        jurisdiction=incident.sender,
        correlationid=incident.key,
    )
    await bus.publish([Outgoing(topics.INCIDENTS, incident.key, envelope.encode())])


async def test_redelivered_incidents_issue_each_task_once(db: Database) -> None:
    clock = FixedClock(NOW)
    bus = EmbeddedBus(db, clock)
    runner = EngineRunner(
        db, bus, clock, InProcessPlanner(load_playbooks(PLAYBOOKS), load_region()), Lane.ACTUAL
    )
    await _report(bus, "r-1")
    records = await bus.read(topics.INCIDENTS, 0, 10)
    await runner.handle(records)
    first = await bus.read(topics.TASKS, 0, 100)
    await runner.handle(records)  # as after a crash before the offset commit
    again = await bus.read(topics.TASKS, 0, 100)
    assert len(first) >= 2
    assert [r.value for r in again] == [r.value for r in first]


class BrokenRegion:
    """A region whose spatial query fails: stands in for a playbook bug that only shows at run
    time (no real playbook can be made to fail on purpose). Everything else is the real region."""

    def __init__(self, real: Region) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def within_km(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("spatial index unavailable")

    within_km_of_circle = within_km


async def test_a_failing_playbook_is_reported_once_and_the_stream_goes_on(db: Database) -> None:
    clock = FixedClock(NOW)
    bus = EmbeddedBus(db, clock)
    region: Any = BrokenRegion(load_region())
    runner = EngineRunner(
        db, bus, clock, InProcessPlanner(load_playbooks(PLAYBOOKS), region), Lane.ACTUAL
    )
    await _report(bus, "f-1")
    records = await bus.read(topics.INCIDENTS, 0, 10)
    await runner.handle(records)
    await runner.handle(records)  # redelivered
    audit = await bus.read(topics.AUDIT, 0, 10)
    assert len(audit) == 1
    failure = decode(audit[0].value).payload_as(EvaluationFailed)
    assert failure.playbook == "cross-border-water-pollution"
    assert "spatial index unavailable" in failure.reason
    assert await bus.read(topics.TASKS, 0, 10) == []
