"""``liandong bench console --quick``: it runs, prints its keys, and every event reached every
client (hub and baseline). Figures are printed, never asserted against a time."""

from __future__ import annotations

import subprocess
import sys

import orjson

KEYS = {"clients", "events_per_s", "p99_ms", "baseline_p99_ms", "delivered", "expected", "missing"}


def test_bench_console_quick() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from hub.cli import main; main()", "bench", "console", "--json",
         "--quick"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) >= KEYS
    assert result["clients"] == 20 and result["events_per_s"] == 20.0
    assert result["expected"] == 20 * 40
    assert result["delivered"] == result["expected"] and result["missing"] == 0
    assert result["baseline_missing"] == 0
    assert result["runs"]["hub"][0]["accepted"] == 40
    assert result["p99_ms"] > 0 and result["baseline_p99_ms"] > 0
