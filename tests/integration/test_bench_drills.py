"""``liandong bench drills --json --quick`` in a subprocess: one JSON object with the keys the
issue names, the replay identical to the original run, and positive figures; never a timing
threshold (machines differ)."""

from __future__ import annotations

import math
import subprocess
import sys

import orjson

LIANDONG = [sys.executable, "-c", "from hub.cli import main; main()"]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_quick_benchmark_replays_a_day_identically() -> None:
    done = subprocess.run(
        [*LIANDONG, "bench", "drills", "--json", "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-3000:]
    result = orjson.loads(lines[0])
    assert result["benchmark"] == "drills" and result["quick"] is True
    assert result["identical"] is True
    assert result["events"] >= 1_000 and isinstance(result["events"], int)
    for key in ("seconds", "speedup", "events_per_s", "cpu_seconds", "virtual_hours"):
        assert _positive(result[key]), (key, result[key])
    assert len(result["runs"]) == 2 and len(result["digest"]) == 64
