"""Drills on real drill hubs (SQLite in temp dirs): the golden replay, replays at speed with
pause, resume and stop, and isolation: every crossing tried in the real paths is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from hub.bus import topics
from hub.bus.port import Outgoing
from hub.clock import VirtualClock
from hub.drills import recording
from hub.drills.drillhub import DrillHub
from hub.drills.isolation import IsolationError
from hub.drills.player import Player, State
from hub.drills.scenario_file import load_scenario
from hub.drills.timeline import Report, Timeline, from_recording, from_scenario
from hub.intake.service import parse_incident
from hub.model.envelope import Lane, OutgoingEvent, parse_time
from hub.region import load_region
from hub.registry import csv_import
from hub.registry.service import StockRequest
from hub.runtime import Hub
from hub.store.db import connect_direct
from tests.factories import cap, wait_for

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
GOLDEN = REPO / "tests" / "fixtures" / "recordings"
TAIPU = REPO / "drills" / "taipu-pollution-chain.yaml"
ALLIANCE = "qingpu-suzhou-jiaxing-alliance-2021"
DEMO = REPO / "hub" / "registry" / "data"


def _log(data: Path) -> list[recording.Record]:
    conn = connect_direct(data / "liandong.db")
    try:
        return list(recording.export(conn, 0, 2**62))
    finally:
        conn.close()


async def _play(timeline: Timeline, data: Path, drill: str = "golden-day", **kw: object) -> Player:
    player = Player(drill, timeline, data, PLAYBOOKS, **kw)  # type: ignore[arg-type]
    await player.run()
    return player


async def test_the_golden_recording_replays_byte_for_byte(tmp_path: Path) -> None:
    """Replaying the committed recording writes exactly the log of its original run, twice."""
    expected = orjson.loads((GOLDEN / "day-small.expected.json").read_bytes())
    original = recording.read(GOLDEN / "day-small.jsonl")
    timeline = from_recording("day-small.jsonl", original)
    first = await _play(timeline, tmp_path / "one", registry_demo=True)
    second = await _play(timeline, tmp_path / "two", registry_demo=True)
    assert first.state is State.FINISHED and first.progress.error is None
    assert first.digest == second.digest == expected["sha256"], (
        "the replay is no longer byte-identical; if playbooks or event formats changed on "
        "purpose, regenerate: .venv/bin/python tests/fixtures/recordings/make_golden.py"
    )
    assert first.records == expected["records"] == len(original)
    assert [r.to_json() for r in _log(tmp_path / "one")] == [r.to_json() for r in original]


async def test_everything_a_drill_writes_is_exercise_with_its_id(tmp_path: Path) -> None:
    timeline = from_recording("day-small.jsonl", recording.read(GOLDEN / "day-small.jsonl"))
    player = await _play(timeline, tmp_path / "d", drill="iso-1", registry_demo=True)
    log = _log(tmp_path / "d")
    assert {r.envelope["type"] for r in log} >= {"task.issued", "task.escalated", "stock.held"}
    for r in log:
        assert r.topic.startswith(topics.EXERCISE_PREFIX), r.topic
        assert r.envelope["status"] == "exercise" and r.envelope["drill"] == "iso-1"
    assert player.report is not None and player.report["drill"] == "iso-1"
    assert player.report["resources"]["fill_rate"] is not None


async def test_a_scenario_at_speed_pauses_resumes_and_ends_as_it_would_at_max(
    tmp_path: Path,
) -> None:
    timeline = from_scenario(load_scenario(TAIPU, load_region()))
    fastest = await _play(timeline, tmp_path / "max", drill="taipu", tail_ms=3_600_000)
    # 3.5 hours of scenario at 6,000 times real time: about two seconds.
    player = Player("taipu", timeline, tmp_path / "speed", PLAYBOOKS, speed=6000,
                    tail_ms=3_600_000)  # fmt: skip
    running = asyncio.create_task(player.run())
    await wait_for(lambda: _done(player, 2), timeout_s=30)
    player.pause()
    assert player.state is State.PAUSED
    await asyncio.sleep(0.1)  # a step already queued still completes
    held_at, done = player.clock.now_ms(), player.progress.actions_done
    await asyncio.sleep(0.4)  # 40 virtual minutes if the clock still ran
    assert player.clock.now_ms() == held_at and player.progress.actions_done == done
    player.resume()
    status = await asyncio.wait_for(running, 60)
    assert status["state"] == "finished" and status["speed"] == 6000
    assert player.digest == fastest.digest  # the speed does not change a byte
    assert player.clock.now_ms() >= timeline.end_ms


async def test_stopping_a_drill_ends_it_early(tmp_path: Path) -> None:
    timeline = from_scenario(load_scenario(TAIPU, load_region()))
    player = Player("stop-1", timeline, tmp_path / "d", PLAYBOOKS, speed=60)
    running = asyncio.create_task(player.run())
    await wait_for(lambda: _done(player, 1), timeout_s=30)
    player.stop()
    status = await asyncio.wait_for(running, 30)
    assert status["state"] == "stopped"
    assert 1 <= status["actions_done"] < len(timeline.actions)


def _exercise_event() -> bytes:
    return OutgoingEvent(
        id="x-1", source="/t", type="task.issued", time="2026-07-01T00:00:00.000Z", data={},
        jurisdiction="320509", status=Lane.EXERCISE, correlationid="c",
    ).encode()  # fmt: skip


async def _done(player: Player, actions: int) -> bool:
    return player.progress.actions_done >= actions


async def _log_size(hub: Hub) -> int:
    count: int = await hub.db.run(
        lambda tx: tx.conn.execute("SELECT COUNT(*) FROM log").fetchone()[0]
    )
    return count


async def _demo_registry(hub: Hub) -> None:
    depots, stock = DEMO / "demo-depots.csv", DEMO / "demo-stock.csv"
    await hub.db.run(lambda tx: csv_import.import_files(tx.conn, depots, stock, hub.region, "t", 0))


def _ask(request: str, drill: str | None = None) -> StockRequest:
    return StockRequest(
        request, "320509-main", "sandbag", 10, "310118", ALLIANCE, "t", "8", drill=drill
    )


async def test_the_live_hub_refuses_exercise_on_live_topics_and_live_depots(hub: Hub) -> None:
    before = await _log_size(hub)
    with pytest.raises(IsolationError, match="live topic"):
        await hub.bus.publish([Outgoing(topics.TASKS, "320509", _exercise_event())])
    assert await _log_size(hub) == before
    await hub.bus.publish([Outgoing("exercise." + topics.TASKS, "320509", _exercise_event())])
    assert await _log_size(hub) == before + 1
    await _demo_registry(hub)
    ask = _ask("310118/x", drill="d-1")
    balances = await hub.registry.balances(item="sandbag")
    with pytest.raises(IsolationError, match="live depot 320509-main"):
        await hub.registry.request(ask)
    assert await hub.registry.balances(item="sandbag") == balances
    live = await hub.registry.request(_ask("310118/y"))
    assert live.hold is not None  # the live path itself still works


async def test_a_drill_hub_refuses_live_traffic_and_copies_the_live_registry(
    hub: Hub, tmp_path: Path
) -> None:
    await _demo_registry(hub)
    live_balances = await hub.registry.balances()
    live_log = await _log_size(hub)
    start = parse_time("2026-07-01T08:00:00+08:00")
    actual = cap("live-report", circle="31.03,120.90 2", category="Env")
    incident = Report(start, parse_incident(orjson.dumps(actual)))
    timeline = Timeline("crossing", start, (incident,))
    player = Player("cross-1", timeline, tmp_path / "d", PLAYBOOKS,
                    registry_from=hub.settings.database_path)  # fmt: skip
    await player.run()
    assert player.progress.counts["reports_failed"] == 1
    assert "live topic" in (player.progress.error or "")
    drill = DrillHub("cross-2", tmp_path / "e", PLAYBOOKS, VirtualClock(start, None))
    await drill.open()
    try:
        copied = await drill.seed_registry(hub.settings.database_path, False, start)
        assert copied == len([b for _, b in live_balances if b.on_hand > b.held])
        with pytest.raises(IsolationError, match="a live request"):
            await drill.hub.registry.request(_ask("310118/z"))
        answer = await drill.hub.registry.request(_ask("310118/z", drill="cross-2"))
        assert answer.hold is not None
    finally:
        await drill.close()
    assert await hub.registry.balances() == live_balances
    assert await _log_size(hub) == live_log
