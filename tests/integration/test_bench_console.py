"""``liandong bench console --quick``: it runs, prints its keys, and every event reached every
client (hub and baseline). Figures are printed, never asserted against a time."""

from __future__ import annotations

from tests.integration.bench_run import quick_bench

KEYS = {"clients", "events_per_s", "p99_ms", "baseline_p99_ms", "delivered", "expected", "missing"}


def test_bench_console_quick() -> None:
    result = quick_bench("console", timeout_s=300)
    assert set(result) >= KEYS
    assert result["clients"] == 20 and result["events_per_s"] == 20.0
    assert result["expected"] == 20 * 40
    assert result["delivered"] == result["expected"] and result["missing"] == 0
    assert result["baseline_missing"] == 0
    assert result["runs"]["hub"][0]["accepted"] == 40
    assert result["p99_ms"] > 0 and result["baseline_p99_ms"] > 0
