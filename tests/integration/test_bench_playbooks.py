"""``liandong bench playbooks --json --quick`` in a subprocess: the shape of its one JSON object
and that every figure is a positive number; never a timing threshold (machines differ)."""

from __future__ import annotations

import math
import subprocess
import sys

import orjson

LIANDONG = [sys.executable, "-c", "from hub.cli import main; main()"]
RATES = (
    "incidents_per_s",
    "incidents_per_cpu_s",
    "baseline_per_s",
    "ratio",
    "prepare_per_s",
    "decode_per_s",
)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_quick_benchmark_prints_one_json_object_with_positive_figures() -> None:
    done = subprocess.run(
        [*LIANDONG, "bench", "playbooks", "--json", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-3000:]
    result = orjson.loads(lines[0])
    assert result["benchmark"] == "playbooks" and result["quick"] is True
    for key in RATES:
        assert _positive(result[key]), (key, result[key])
    assert result["playbooks"] == 50
    assert result["districts"] == 71 and result["agreements"] >= 4
    # The mix really exercises the playbooks, and the stress mix more so.
    assert 0 < result["matched_per_incident"] < result["stress"]["matched_per_incident"] <= 1
    assert _positive(result["tasks_per_incident"])
    for key in (
        "incidents_per_s",
        "incidents_per_cpu_s",
        "matched_only_per_s",
        "tasks_per_incident",
    ):
        assert _positive(result["stress"][key]), key
    assert all(len(v) == result["runs_count"] for v in result["runs"].values())
    assert all(_positive(x) for v in result["runs"].values() for x in v)
