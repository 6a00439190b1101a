"""``liandong bench drills --json --quick`` in a subprocess: one JSON object with the keys the
issue names, the replay identical to the original run, and positive figures; never a timing
threshold (machines differ)."""

from __future__ import annotations

from tests.integration.bench_run import positive, quick_bench


def test_quick_benchmark_replays_a_day_identically() -> None:
    result = quick_bench("drills", timeout_s=600)
    assert result["benchmark"] == "drills" and result["quick"] is True
    assert result["identical"] is True
    assert result["events"] >= 1_000 and isinstance(result["events"], int)
    for key in ("seconds", "speedup", "events_per_s", "cpu_seconds", "virtual_hours"):
        assert positive(result[key]), (key, result[key])
    assert len(result["runs"]) == 2 and len(result["digest"]) == 64
