"""``liandong bench registry --json --quick`` in a subprocess: the keys, figures that are
counted rather than invented, and no oversell; never timing thresholds (the benchmark itself
reports against its targets)."""

from __future__ import annotations

from tests.integration.bench_run import positive, quick_bench

RATES = ("sqlite_holds_per_s", "postgres_holds_per_s", "sqlite_baseline_per_s",
         "postgres_baseline_per_s")  # fmt: skip


def test_quick_registry_benchmark_reports_holds_and_no_oversell() -> None:
    result = quick_bench("registry", timeout_s=600)
    assert result["benchmark"] == "registry"
    for key in RATES:
        value = result[key]
        assert positive(value), (key, value)
    assert result["oversold"] == 0
    assert result["clients"] == 16
    (run,) = result["runs"]
    for db in ("sqlite", "postgres"):
        figures = run[db]
        assert figures["oversold"] == 0
        # Every depot is asked 5 % more than it holds: all its stock is granted, the rest refused.
        assert figures["granted"] + figures["refused"] == result["requests"]
        assert figures["refused"] == result["requests"] // 16 // 20 * 16
        assert figures["holds_per_s"] == result[f"{db}_holds_per_s"]
