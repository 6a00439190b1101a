"""``liandong bench codecs --json --quick`` in a subprocess: the shape of its figures, never
timing thresholds (machines are noisy; the benchmark itself reports against its targets)."""

from __future__ import annotations

import math

from tests.integration.bench_run import positive, quick_bench

RATES = ("cap_msgs_per_s", "cap_baseline_msgs_per_s", "json_msgs_per_s",
         "json_baseline_msgs_per_s")  # fmt: skip


def test_quick_codecs_benchmark_prints_one_json_object_with_positive_figures() -> None:
    result = quick_bench("codecs", timeout_s=120)

    assert result["benchmark"] == "codecs"
    for key in (*RATES, "cap_ratio", "json_ratio"):
        value = result[key]
        assert positive(value), (key, value)
    runs = result["runs"]
    assert set(runs) == set(RATES)
    assert all(len(runs[key]) == result["runs_count"] >= 3 for key in RATES)
    assert all(v > 0 for key in RATES for v in runs[key])
    # the ratios are of the reported medians, not invented
    assert math.isclose(
        result["json_ratio"],
        result["json_msgs_per_s"] / result["json_baseline_msgs_per_s"],
        rel_tol=1e-3,
    )
    assert math.isclose(
        result["cap_ratio"],
        result["cap_msgs_per_s"] / result["cap_baseline_msgs_per_s"],
        rel_tol=1e-3,
    )
    assert result["targets"] == {"cap_msgs_per_s": 2000.0, "json_msgs_per_s": 20000.0}
    assert set(result["meets_targets"]) == set(result["targets"])
    # the messages are the realistic sizes the issue names
    assert 1500 <= result["cap_message_bytes"] <= 4000
    assert 700 <= result["json_message_bytes"] <= 2000
    assert result["quick"] is True
