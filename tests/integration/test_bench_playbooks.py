"""``liandong bench playbooks --json --quick`` in a subprocess: the shape of its one JSON object
and that every figure is a positive number; never a timing threshold (machines differ)."""

from __future__ import annotations

from tests.integration.bench_run import positive, quick_bench

RATES = (
    "incidents_per_s",
    "incidents_per_cpu_s",
    "baseline_per_s",
    "ratio",
    "prepare_per_s",
    "decode_per_s",
)


def test_quick_benchmark_prints_one_json_object_with_positive_figures() -> None:
    result = quick_bench("playbooks", timeout_s=300)
    assert result["benchmark"] == "playbooks" and result["quick"] is True
    for key in RATES:
        assert positive(result[key]), (key, result[key])
    assert result["playbooks"] == 50
    assert result["districts"] == 71 and result["agreements"] >= 4
    # The mix really exercises the playbooks, and the stress mix more so.
    assert 0 < result["matched_per_incident"] < result["stress"]["matched_per_incident"] <= 1
    assert positive(result["tasks_per_incident"])
    for key in (
        "incidents_per_s",
        "incidents_per_cpu_s",
        "matched_only_per_s",
        "tasks_per_incident",
    ):
        assert positive(result["stress"][key]), key
    assert all(len(v) == result["runs_count"] for v in result["runs"].values())
    assert all(positive(x) for v in result["runs"].values() for x in v)
