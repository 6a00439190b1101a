"""``liandong bench kafka --json --quick`` end to end: correctness only, never timings.

The benchmark starts its own Tansu broker, a hub in Kafka mode on a fresh PostgreSQL database,
a bare aiokafka pipeline and a reader process, all on 127.0.0.1. Machines are noisy, so this
test checks what must hold on any machine: one JSON object with the documented figures, every
accepted incident stored with all its tasks on the tasks topic, nothing stored twice.
"""

from __future__ import annotations

import os
import signal
import subprocess

import orjson
import pytest

from tests.brokers.postgres import postgres_admin_url  # noqa: F401 - a fixture
from tests.integration.bench_run import LIANDONG, positive

TIME_LIMIT_S = 240  # about 40 s on a quiet machine; a loaded one needs several times that

POSITIVE = (
    "incidents_per_s",
    "baseline_incidents_per_s",
    "p99_ms_at_1000",
    "baseline_p99_ms_at_1000",
    "p50_ms_at_1000",
    "baseline_p50_ms_at_1000",
    "tasks_per_s",
    "baseline_tasks_per_s",
    "ratio",
    "p99_ratio",
)


def test_quick_kafka_benchmark_prints_one_json_object_and_loses_nothing(
    postgres_admin_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANDONG_")}
    env["LIANDONG_BENCH_POSTGRES"] = postgres_admin_url
    # Its own process group: should it overrun, the hub and the peers it started go with it
    # (a hub left behind would retry its vanished broker for the rest of the test run).
    bench = subprocess.Popen(
        [*LIANDONG, "bench", "kafka", "--json", "--quick"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = bench.communicate(timeout=TIME_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(bench.pid, signal.SIGKILL)
        stdout, stderr = bench.communicate()
        pytest.fail(f"bench kafka --quick took over {TIME_LIMIT_S} s: {stderr[-3000:]}")
    done = subprocess.CompletedProcess(bench.args, bench.returncode, stdout, stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-3000:]
    result = orjson.loads(lines[0])

    for key in (*POSITIVE, "lost", "duplicates", "topic_duplicates", "baseline_lost", "runs"):
        assert key in result, key
    for key in POSITIVE:
        value = result[key]
        assert positive(value), (key, value)
    assert result["p99_ms_at_1000"] >= result["p50_ms_at_1000"]
    assert result["lost"] == 0
    assert result["unfinished"] == 0
    assert result["duplicates"] == 0
    assert result["baseline_lost"] == 0
    runs = result["runs"]
    assert all(runs["drained"]) and all(runs["baseline_drained"])
    # The mix really exercises the engine: the spill template needs several neighbours.
    assert result["expected_tasks"]["qingpu-taipu-spill"] >= 1
    assert all(n > 0 for n in runs["tasks"])
