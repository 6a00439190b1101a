"""``liandong bench embedded``: the embedded hub end to end, against a do-nothing baseline.

What it runs, for each of several runs (one with ``quick``):

1. **baseline**: the same HTTP posts (same bodies, same headers, same client) against a FastAPI
   endpoint that only reads the body and answers 202, served by uvicorn with the hub's settings.
   Measured in the same run, so ``ratio`` = hub / baseline shows what the hub itself costs.
2. **a fresh hub** (``liandong run --no-demo`` in a subprocess, fresh data directory, adapter
   credentials made with ``liandong adapters add``). One incident of each template is posted
   first and its tasks listed through the API: that is how many tasks each template must produce.
3. **throughput**: a closed loop of ``concurrency`` connections posts ``incidents`` incidents;
   the clock runs from the first send until the last incident's tasks are in the log.
4. **latency**: an open loop posts at ``rate_per_s`` for a few seconds; the latency of an
   incident is measured in the hub's own log: ``ts_ms`` of its ``task.issued`` records (the
   latest) minus ``ts_ms`` of its ``incident.reported`` record.
5. **correctness**, read from the SQLite file after the hub stopped: ``lost`` = incidents that
   were answered 202 but are not stored, or whose expected tasks are missing from the log or the
   task table; ``duplicates`` = task ids issued more than once, plus incidents reported (logged or
   stored) more than once.

Figures are medians over the runs; ``runs`` keeps every run's own figures. Everything talks to
127.0.0.1 only, every loop has a count and a time limit, and every process started is stopped by
its pid.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from bench import loadgen
from bench.loadgen import LoadResult, Server, median_of, percentile

INCIDENTS_TOPIC = "liandong.incidents.v1"
TASKS_TOPIC = "liandong.tasks.v1"
ENGINE_GROUP = "engine"
INTAKE_PATH = "/api/v1/incidents"
CST = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Plan:
    """How big a benchmark is."""

    runs: int
    incidents: int  # per throughput phase
    concurrency: int  # closed-loop connections
    rate_per_s: float  # open-loop rate of the latency phase
    latency_s: float  # length of the latency phase
    warmup: int  # incidents posted (and discarded from the figures) before measuring
    pool: int = 32  # open-loop connections
    post_time_limit_s: float = 300.0
    drain_time_limit_s: float = 120.0


FULL = Plan(runs=3, incidents=10_000, concurrency=32, rate_per_s=200.0, latency_s=10.0, warmup=300)
QUICK = Plan(runs=1, incidents=1_000, concurrency=32, rate_per_s=200.0, latency_s=3.0, warmup=100)


# -- the incidents -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A kind of incident in the mix; ``weight`` of every ten incidents are of this kind."""

    name: str
    sender: str
    weight: int
    info: dict[str, Any]


# A realistic mix: most incidents need a neighbour's help, some need no one.
TEMPLATES: tuple[Template, ...] = (
    Template(
        "qingpu-taipu-spill",
        "310118",  # Qingpu: tasks for Wujiang, Kunshan, Jiashan
        7,
        {
            "language": "zh-CN",
            "category": ["Env"],
            "event": "太浦河金泽段化学品泄漏",
            "urgency": "Immediate",
            "severity": "Severe",
            "certainty": "Observed",
            "senderName": "青浦区应急管理局",
            "headline": "太浦河金泽水源地上游发现化学品泄漏，水体异味",
            "description": "金泽镇太浦河段水面出现油膜，下游取水口有污染风险。",
            "area": [{"areaDesc": "青浦区金泽镇太浦河段", "circle": ["31.03,120.90 2"]}],
        },
    ),
    Template(
        "jinshan-chemical-leak",
        "310116",  # Jinshan: a task for Pinghu
        2,
        {
            "language": "zh-CN",
            "category": ["Env", "CBRNE"],
            "event": "金山化工区储罐泄漏",
            "urgency": "Immediate",
            "severity": "Extreme",
            "certainty": "Observed",
            "senderName": "金山区应急管理局",
            "headline": "金山化工区储罐泄漏，污水可能经河道流入平湖",
            "area": [{"areaDesc": "金山区漕泾镇", "circle": ["30.80,121.20 3"]}],
        },
    ),
    Template(
        "qingpu-minor-fire",
        "310118",  # a minor fire: recorded, no task for anyone
        1,
        {
            "language": "zh-CN",
            "category": ["Fire"],
            "event": "朱家角镇民房火情",
            "urgency": "Expected",
            "severity": "Minor",
            "certainty": "Observed",
            "area": [{"areaDesc": "青浦区朱家角镇", "circle": ["31.11,121.05 0.5"]}],
        },
    ),
)
_MIX: tuple[Template, ...] = tuple(t for t in TEMPLATES for _ in range(t.weight))


@dataclass(frozen=True)
class Post:
    """One incident the benchmark posts: who sends it, its thread, its template."""

    template: Template
    identifier: str
    body: bytes

    @property
    def sender(self) -> str:
        return self.template.sender

    @property
    def thread(self) -> str:
        return f"{self.sender},{self.identifier}"


def make_post(template: Template, identifier: str, sent: str) -> Post:
    incident = {
        "identifier": identifier,
        "sender": template.sender,
        "sent": sent,
        "status": "Actual",
        "msgType": "Alert",
        "scope": "Public",
        "info": [template.info],
    }
    return Post(template, identifier, orjson.dumps(incident))


def make_posts(prefix: str, count: int) -> list[Post]:
    """``count`` incidents in the mix's proportions, each with its own identifier."""
    sent = datetime.now(CST).replace(microsecond=0).isoformat()
    return [make_post(_MIX[i % len(_MIX)], f"{prefix}-{i:06d}", sent) for i in range(count)]


def encode(posts: Sequence[Post], port: int, tokens: dict[str, str]) -> list[bytes]:
    return [
        loadgen.encode_post(
            port,
            INTAKE_PATH,
            {"Authorization": f"Bearer {tokens[p.sender]}", "Content-Type": "application/json"},
            p.body,
        )
        for p in posts
    ]


# -- the hub under test --------------------------------------------------------------------------


def _liandong_argv() -> list[str]:
    """The ``liandong`` console script next to this interpreter, or its entry point by hand."""
    script = Path(sys.executable).with_name("liandong")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from hub.cli import main; main()"]


def _hub_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LIANDONG_LOG_LEVEL", "WARNING")
    for name in ("LIANDONG_DATA", "LIANDONG_PORT", "LIANDONG_HOST"):  # given as flags
        env.pop(name, None)
    return env


def add_adapter(data: Path, jurisdiction: str) -> str:
    """``liandong adapters add``; the token is the last line it prints."""
    done = subprocess.run(
        [
            *_liandong_argv(),
            "adapters",
            "add",
            "--jurisdiction",
            jurisdiction,
            "--name",
            f"bench-{jurisdiction}",
            "--data",
            str(data),
        ],
        capture_output=True,
        text=True,
        env=_hub_env(),
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"liandong adapters add failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def start_hub(data: Path) -> Server:
    port = loadgen.free_port()
    argv = [*_liandong_argv(), "run", "--no-demo", "--data", str(data), "--port", str(port)]
    hub = Server(argv, port, data.parent / f"{data.name}-hub.log", _hub_env())
    try:
        hub.wait_healthy("/healthz", timeout_s=60.0)
    except BaseException:
        hub.stop()
        raise
    return hub


def start_baseline(workdir: Path) -> Server:
    port = loadgen.free_port()
    server = Server(loadgen.baseline_argv(port), port, workdir / "baseline.log", _hub_env())
    try:
        server.wait_healthy("/healthz", timeout_s=60.0)
    except BaseException:
        server.stop()
        raise
    return server


def read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def wait_processed(db: Path, time_limit_s: float) -> bool:
    """Wait until the engine has committed every incident in the log (bounded)."""
    deadline = time.monotonic() + time_limit_s
    conn = read_only(db)
    try:
        while time.monotonic() < deadline:
            (end,) = conn.execute(
                'SELECT COALESCE(MAX("offset"), 0) FROM log WHERE topic = ?', (INCIDENTS_TOPIC,)
            ).fetchone()
            row = conn.execute(
                'SELECT "offset" FROM consumer_offsets WHERE grp = ? AND topic = ?',
                (ENGINE_GROUP, INCIDENTS_TOPIC),
            ).fetchone()
            if row is not None and row[0] >= end:
                return True
            time.sleep(0.02)
        return False
    finally:
        conn.close()


def expected_tasks(hub: Server, data: Path, tokens: dict[str, str]) -> dict[str, int]:
    """Post one incident of each template and count its tasks through the API."""
    probes = [
        make_post(t, f"probe-{t.name}", datetime.now(CST).replace(microsecond=0).isoformat())
        for t in TEMPLATES
    ]
    result = loadgen.run_async(
        lambda: loadgen.closed_loop(hub.port, encode(probes, hub.port, tokens), 1, 60.0)
    )
    if result.count(202) != len(probes):
        raise RuntimeError(f"probe incidents refused: {result.statuses} {result.errors}")
    if not wait_processed(data / "liandong.db", 60.0):
        raise RuntimeError("the engine did not process the probe incidents within 60 s")
    counts: dict[str, int] = {}
    for probe in probes:
        request = loadgen.encode_get(
            hub.port,
            f"/api/v1/tasks?incident={probe.thread}&limit=5000",
            {"Authorization": f"Bearer {tokens[probe.sender]}"},
        )
        status, body = loadgen.run_async(partial(loadgen.request_once, hub.port, request))
        if status != 200:
            raise RuntimeError(f"GET tasks for {probe.thread}: {status} {body[:200]!r}")
        counts[probe.template.name] = len(orjson.loads(body)["tasks"])
    return counts


# -- what the log says ---------------------------------------------------------------------------


@dataclass
class LogView:
    """The hub's log and tables, read once after a run."""

    reported_ms: dict[str, int] = field(default_factory=dict)  # thread -> incident.reported ts
    reported_count: Counter[str] = field(default_factory=Counter)  # thread -> records
    task_ids: Counter[str] = field(default_factory=Counter)  # task id -> task.issued records
    tasks_by_thread: dict[str, set[str]] = field(default_factory=dict)  # from the log
    last_task_ms: dict[str, int] = field(default_factory=dict)  # thread -> latest task ts
    stored: Counter[tuple[str, str]] = field(default_factory=Counter)  # (sender, identifier)
    stored_tasks: Counter[str] = field(default_factory=Counter)  # thread -> rows in tasks


def read_log(db: Path) -> LogView:
    view = LogView()
    conn = read_only(db)
    try:
        rows = conn.execute("SELECT key, ts_ms FROM log WHERE topic = ?", (INCIDENTS_TOPIC,))
        for key, ts in rows:
            view.reported_count[key] += 1
            view.reported_ms.setdefault(key, ts)
        for ts, value in conn.execute(
            "SELECT ts_ms, value FROM log WHERE topic = ?", (TASKS_TOPIC,)
        ):
            event = orjson.loads(value)
            if event.get("type") != "task.issued":
                continue
            task_id = event["data"]["task"]["id"]
            thread = event["correlationid"]
            view.task_ids[task_id] += 1
            view.tasks_by_thread.setdefault(thread, set()).add(task_id)
            if ts > view.last_task_ms.get(thread, 0):
                view.last_task_ms[thread] = ts
        for sender, identifier in conn.execute("SELECT sender, identifier FROM incidents"):
            view.stored[(sender, identifier)] += 1
        for (thread,) in conn.execute("SELECT incident FROM tasks"):
            view.stored_tasks[thread] += 1
    finally:
        conn.close()
    return view


def lost_and_duplicates(
    view: LogView, accepted: Sequence[Post], expected: dict[str, int]
) -> tuple[int, int]:
    lost = 0
    for post in accepted:
        want = expected[post.template.name]
        if (
            view.stored[(post.sender, post.identifier)] == 0
            or len(view.tasks_by_thread.get(post.thread, ())) < want
            or view.stored_tasks[post.thread] < want
        ):
            lost += 1
    duplicates = sum(n - 1 for n in view.task_ids.values() if n > 1)
    duplicates += sum(n - 1 for n in view.reported_count.values() if n > 1)
    duplicates += sum(n - 1 for n in view.stored.values() if n > 1)
    return lost, duplicates


def latencies_ms(view: LogView, posts: Sequence[Post], expected: dict[str, int]) -> list[float]:
    """Incident accepted → its tasks published, from the hub's own timestamps."""
    out: list[float] = []
    for post in posts:
        if expected[post.template.name] == 0:
            continue
        start = view.reported_ms.get(post.thread)
        end = view.last_task_ms.get(post.thread)
        if start is not None and end is not None:
            out.append(float(end - start))
    return out


def completed_ms(view: LogView, posts: Sequence[Post]) -> int:
    """The hub time at which the last of ``posts`` was fully handled (tasks in the log)."""
    last = 0
    for post in posts:
        last = max(
            last, view.reported_ms.get(post.thread, 0), view.last_task_ms.get(post.thread, 0)
        )
    return last


# -- one run -------------------------------------------------------------------------------------


@dataclass
class Phase:
    posts: list[Post]
    result: LoadResult

    def accepted(self) -> list[Post]:
        return [p for p, s in zip(self.posts, self.result.statuses, strict=True) if s == 202]

    def refused(self) -> int:
        return len(self.posts) - len(self.accepted())


def _closed(port: int, requests: list[bytes], concurrency: int, limit_s: float) -> LoadResult:
    return loadgen.run_async(lambda: loadgen.closed_loop(port, requests, concurrency, limit_s))


def _open(port: int, requests: list[bytes], plan: Plan) -> LoadResult:
    limit = plan.latency_s * 3 + 60.0
    return loadgen.run_async(
        lambda: loadgen.open_loop(port, requests, plan.rate_per_s, plan.pool, limit)
    )


def one_run(number: int, plan: Plan, workdir: Path, baseline: Server) -> dict[str, Any]:
    throughput_posts = make_posts(f"r{number}-tp", plan.incidents)
    latency_posts = make_posts(f"r{number}-lat", round(plan.rate_per_s * plan.latency_s))
    warmup_posts = make_posts(f"r{number}-warm", plan.warmup)

    # The baseline first, while no hub is running: same bodies, same headers, same client.
    fake_tokens = {t.sender: "ld_" + "0" * 43 for t in TEMPLATES}
    _closed(baseline.port, encode(warmup_posts, baseline.port, fake_tokens), plan.concurrency, 60)
    base = _closed(
        baseline.port,
        encode(throughput_posts, baseline.port, fake_tokens),
        plan.concurrency,
        plan.post_time_limit_s,
    )
    baseline_per_s = base.count(202) / base.elapsed_s if base.elapsed_s > 0 else 0.0

    data = workdir / f"run{number}"
    tokens = {s: add_adapter(data, s) for s in sorted({t.sender for t in TEMPLATES})}
    hub = start_hub(data)
    phases: dict[str, Phase] = {}
    drained: dict[str, bool] = {}
    try:
        expected = expected_tasks(hub, data, tokens)
        db = data / "liandong.db"
        for name, posts in (
            ("warmup", warmup_posts),
            ("throughput", throughput_posts),
            ("latency", latency_posts),
        ):
            requests = encode(posts, hub.port, tokens)
            if name == "latency":
                result = _open(hub.port, requests, plan)
            else:
                result = _closed(hub.port, requests, plan.concurrency, plan.post_time_limit_s)
            phases[name] = Phase(posts, result)
            drained[name] = wait_processed(db, plan.drain_time_limit_s)
    finally:
        hub_exit = hub.stop()

    view = read_log(data / "liandong.db")
    all_accepted = [p for ph in phases.values() for p in ph.accepted()]
    lost, duplicates = lost_and_duplicates(view, all_accepted, expected)

    tp, lat = phases["throughput"], phases["latency"]
    tp_accepted = tp.accepted()
    tp_tasks = sum(len(view.tasks_by_thread.get(p.thread, ())) for p in tp_accepted)
    tp_end_ms = completed_ms(view, tp_accepted)
    tp_elapsed_s = max((tp_end_ms - tp.result.wall_started_ms) / 1000.0, tp.result.elapsed_s, 1e-9)
    tp_lat = latencies_ms(view, tp_accepted, expected)
    lat_ms = latencies_ms(view, lat.accepted(), expected)
    sent = [s for s in lat.result.sent_at if s]
    achieved = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 else 0.0
    incidents_per_s = len(tp_accepted) / tp_elapsed_s
    return {
        "incidents": len(tp.posts),
        "incidents_per_s": round(incidents_per_s, 1),
        "tasks_per_s": round(tp_tasks / tp_elapsed_s, 1),
        "accepted_per_s": round(tp.result.count(202) / tp.result.elapsed_s, 1),
        "baseline_per_s": round(baseline_per_s, 1),
        "ratio": round(incidents_per_s / baseline_per_s, 3) if baseline_per_s else None,
        "p50_ms": _pct(lat_ms, 50),
        "p99_ms": _pct(lat_ms, 99),
        "max_ms": max(lat_ms, default=None),
        "http_p50_ms": _pct(lat.result.http_ms(), 50),
        "http_p99_ms": _pct(lat.result.http_ms(), 99),
        "achieved_rate_per_s": round(achieved, 1),
        "p50_ms_throughput": _pct(tp_lat, 50),
        "p99_ms_throughput": _pct(tp_lat, 99),
        "lost": lost,
        "duplicates": duplicates,
        "refused": sum(ph.refused() for ph in phases.values()),
        "baseline_refused": len(base.statuses) - base.count(202),
        "client_errors": [e for ph in phases.values() for e in ph.result.errors][:5]
        + base.errors[:5],
        "drained": all(drained.values()),
        "expected_tasks": expected,
        "tasks": tp_tasks,
        "hub_exit": hub_exit,
    }


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(percentile(values, q), 2) if values else None


# -- the benchmark -------------------------------------------------------------------------------

_MEDIANS = (
    "incidents_per_s",
    "tasks_per_s",
    "accepted_per_s",
    "baseline_per_s",
    "ratio",
    "p50_ms",
    "p99_ms",
    "http_p50_ms",
    "http_p99_ms",
    "achieved_rate_per_s",
    "p50_ms_throughput",
    "p99_ms_throughput",
)


def run(quick: bool = False) -> dict[str, Any]:
    """Run the benchmark; returns its figures (medians over the runs, and every run's own)."""
    plan = QUICK if quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="liandong-bench-"))
    started = time.monotonic()
    load_at_start = round(os.getloadavg()[0], 2)
    runs: list[dict[str, Any]] = []
    try:
        baseline = start_baseline(workdir)
        try:
            for number in range(plan.runs):
                runs.append(one_run(number, plan, workdir, baseline))
        finally:
            baseline.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out: dict[str, Any] = {"benchmark": "embedded"}
    for key in _MEDIANS:
        out[key] = median_of([r[key] for r in runs])
    out.update(
        {
            "lost": sum(r["lost"] for r in runs),
            "duplicates": sum(r["duplicates"] for r in runs),
            "refused": sum(r["refused"] for r in runs),
            "rate_per_s": plan.rate_per_s,
            "incidents": [r["incidents"] for r in runs],
            "latency_incidents": round(plan.rate_per_s * plan.latency_s),
            "concurrency": plan.concurrency,
            "runs_count": plan.runs,
            "quick": quick,
            "expected_tasks": runs[0]["expected_tasks"] if runs else {},
            "mix": {t.name: t.weight for t in TEMPLATES},
            "sqlite_synchronous": os.environ.get("LIANDONG_SQLITE_SYNCHRONOUS", "FULL").upper(),
            "cpus": os.cpu_count(),
            "loadavg_1m_at_start": load_at_start,
            "client": "raw asyncio HTTP/1.1 keep-alive on " + _loop_name(),
            "latency_clock": (
                "hub log ts_ms (ms resolution, stamped when appended, before the commit): "
                "incident.reported -> the incident's last task.issued"
            ),
            "elapsed_s": round(time.monotonic() - started, 1),
            "runs": {key: [r[key] for r in runs] for key in runs[0]} if runs else {},
        }
    )
    return out


def _loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover
        return "asyncio"
    return "uvloop"
