"""``liandong bench drills``: replaying a recorded day as fast as possible.

1. A day is generated from a seed (``hub.drills.daygen``: the playbooks' own cases as
   incidents over 24 hours, follow-ups, targets answering after a few minutes, some duty rooms
   silent for hours so deadlines pass) and played once as a drill: that drill's log, written
   as a recording file (JSONL) and read back, is the **recorded day** (``events`` records).
2. The recording is replayed, as fast as possible, by the drill player on a fresh data
   directory (embedded mode: SQLite + the log; the intake's, the engine's, the task service's
   and the escalator's own transactions, many steps to a group commit; no HTTP). ``seconds``
   is the median over the runs (``cpu_seconds`` this process's CPU time, which other work on a
   shared machine does not stretch); ``identical`` says whether every replay's log is byte for byte
   the original run's (SHA-256 over every record: offset, topic, key, time, envelope).
3. ``speedup`` = the day's span of virtual time (first to last record) / ``seconds``: the
   baseline, real time, is the recorded day itself. ``events_per_s`` = events / seconds.

``quick`` plays a small day (about 2,000 events) twice: a smoke check of the keys.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.loadgen import median_of
from hub.drills import daygen, recording
from hub.drills.player import Player
from hub.drills.timeline import from_recording
from hub.settings import Settings
from hub.store.db import connect_direct

SEED = 20260701
EVENTS_PER_INCIDENT = 18.5  # what one generated incident makes in the log, measured
DRILL = "bench-day"


def _export(db_path: Path, out: Path) -> int:
    conn = connect_direct(db_path)
    try:
        with out.open("wb") as handle:
            return recording.write(recording.export(conn, 0, 2**62), handle)
    finally:
        conn.close()


async def _play(timeline: Any, data: Path, playbooks: Path) -> tuple[Player, float, float]:
    player = Player(DRILL, timeline, data, playbooks, speed=None)
    started, cpu = time.perf_counter(), time.process_time()
    await player.run()
    return player, time.perf_counter() - started, time.process_time() - cpu


def run(quick: bool = False) -> dict[str, Any]:
    target, runs = (2_000, 2) if quick else (100_000, 3)
    playbooks = Settings().playbooks
    incidents = math.ceil(target / EVENTS_PER_INCIDENT)
    with tempfile.TemporaryDirectory(prefix="liandong-bench-drills-") as work:
        root = Path(work)
        day = daygen.generate(playbooks, SEED, incidents)
        original, original_s, _ = asyncio.run(_play(day, root / "original", playbooks))
        path = root / "day.jsonl"
        events = _export(root / "original" / "liandong.db", path)
        records = recording.read(path)
        span_ms = records[-1].appended_ms - records[0].appended_ms
        replay = from_recording(path.name, records)
        seconds, cpu_seconds, identical = [], [], True
        for n in range(runs):
            player, took, cpu = asyncio.run(_play(replay, root / f"replay-{n}", playbooks))
            seconds.append(took)
            cpu_seconds.append(cpu)
            identical = identical and player.digest == original.digest
    median_s = median_of(seconds) or 0.0
    return {
        "benchmark": "drills",
        "quick": quick,
        "events": events,
        "incidents": incidents,
        "seconds": median_s,
        "identical": identical,
        "speedup": round(span_ms / 1000 / median_s, 1) if median_s else None,
        "events_per_s": round(events / median_s) if median_s else None,
        "virtual_hours": round(span_ms / 3_600_000, 2),
        "cpu_seconds": median_of(cpu_seconds),
        "original_run_s": round(original_s, 3),
        "runs": [round(s, 3) for s in seconds],
        "digest": original.digest,
    }
