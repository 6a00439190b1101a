"""``liandong bench embedded --json --quick`` end to end: correctness only, never timings.

The benchmark starts a real hub and a baseline server in subprocesses and drives them over
loopback HTTP. Machines are noisy, so this test checks what must hold on any machine: one JSON
object with the documented figures, nothing lost, nothing duplicated, nothing refused.
"""

from __future__ import annotations

from tests.integration.bench_run import positive, quick_bench

POSITIVE = (
    "incidents_per_s",
    "tasks_per_s",
    "baseline_per_s",
    "ratio",
    "p50_ms",
    "p99_ms",
    "rate_per_s",
)


def test_quick_benchmark_prints_one_json_object_and_loses_nothing() -> None:
    result = quick_bench("embedded", timeout_s=110)

    for key in (*POSITIVE, "lost", "duplicates", "incidents", "runs", "sqlite_synchronous"):
        assert key in result, key
    for key in POSITIVE:
        value = result[key]
        assert positive(value), (key, value)
    assert result["p99_ms"] >= result["p50_ms"]
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert result["refused"] == 0
    assert all(result["runs"]["drained"])
    assert result["runs"]["client_errors"] == [[]] * len(result["runs"]["drained"])
    # The mix really exercises the engine: the spill template needs several neighbours.
    assert result["expected_tasks"]["qingpu-taipu-spill"] >= 1
    assert all(n > 0 for n in result["incidents"])
