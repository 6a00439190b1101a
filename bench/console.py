"""``liandong bench console``: the live stream fanned out to many consoles, against bare SSE.

What it runs, for each of several runs (one with ``quick``):

1. **a fresh hub** (``liandong run --no-demo``, fresh data directory): one adapter credential
   (Qingpu, the reporter) and one coordinator made with the CLI; the bench signs in once and
   ``clients`` consoles follow ``GET /api/v1/stream`` with that session (a coordinator sees every
   event: the most a console is sent).
2. **load**: incidents are POSTed to the intake at ``events_per_s`` for ``seconds`` (an open
   loop over a few keep-alive connections). Each is a minor "Other" incident that no playbook
   plans, so the hub's stream carries exactly one event per incident.
3. **latency**: for every (client, incident), the time from writing the POST to the client
   reading the incident's ``incident.reported`` frame; same process, same clock
   (``time.perf_counter``). ``missing`` counts pairs never received.
4. **baseline**, in the same run: the same clients and the same posts against a bare SSE server
   (FastAPI + uvicorn like the hub, no database, no log): each POST is turned into a frame and
   put on every client's queue. The difference is what the hub's intake, log and reader cost.

Figures are medians over the runs; ``runs`` keeps every run's own. Everything talks to
127.0.0.1; every loop has a count and a time limit; every process started is stopped by its pid.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import loadgen
from bench.embedded import _hub_env, _liandong_argv, add_adapter
from bench.loadgen import LOOPBACK, Server, median_of, percentile

QINGPU = "310118"
COORDINATOR = "bench.coordinator"
PASSWORD = "bench-console-pw-1"
_ID = re.compile(rb'"identifier":"cb-(\d+)-(\d+)"')


@dataclass(frozen=True)
class Plan:
    runs: int
    clients: int
    events_per_s: float
    seconds: float
    drain_s: float = 10.0


FULL = Plan(runs=3, clients=200, events_per_s=100.0, seconds=10.0)
QUICK = Plan(runs=1, clients=20, events_per_s=20.0, seconds=2.0)


def incident(run: int, n: int) -> bytes:
    """A minor incident no playbook plans: one event on the stream, no tasks."""
    return orjson.dumps(
        {
            "identifier": f"cb-{run}-{n}",
            "sender": QINGPU,
            "sent": "2026-07-01T08:30:00+08:00",
            "status": "Actual",
            "msgType": "Alert",
            "scope": "Public",
            "info": [
                {
                    "language": "zh-CN",
                    "category": ["Other"],
                    "event": "控制台压测 console bench",
                    "urgency": "Future",
                    "severity": "Minor",
                    "certainty": "Possible",
                    "area": [{"areaDesc": "青浦区", "circle": ["31.15,121.12 0.5"]}],
                }
            ],
        }
    )


# -- the consoles -----------------------------------------------------------------------------


class Consoles:
    """``clients`` SSE readers; ``seen[c][n]`` is when client ``c`` read incident ``n``."""

    def __init__(self, clients: int, events: int, run: int) -> None:
        self.run = str(run).encode()
        self.events = events
        self.seen = [[0.0] * events for _ in range(clients)]
        self.counts = [0] * clients
        self.ready = 0
        self.errors: list[str] = []
        self._all_ready = asyncio.Event()
        self._done = asyncio.Event()
        self._clients = clients
        self._finished = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, port: int, path: str, headers: dict[str, str], limit_s: float) -> None:
        self._tasks = [
            asyncio.create_task(self._client(i, port, path, headers)) for i in range(self._clients)
        ]
        await asyncio.wait_for(self._all_ready.wait(), limit_s)

    async def wait_all(self, limit_s: float) -> None:
        try:
            await asyncio.wait_for(self._done.wait(), limit_s)
        except TimeoutError:
            self.errors.append(f"not every event reached every client within {limit_s:.0f} s")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, i: int, port: int, path: str, headers: dict[str, str]) -> None:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            writer.write(loadgen.encode_get(port, path, headers))
            buffer = b""
            greeted = False
            seen, run, clock = self.seen[i], self.run, time.perf_counter
            while True:
                data = await reader.read(262_144)
                if not data:
                    self.errors.append(f"client {i}: the server closed the stream")
                    return
                now = clock()
                buffer += data
                cut = buffer.rfind(b"\n\n")
                if cut < 0:
                    continue
                frames, buffer = buffer[: cut + 2], buffer[cut + 2 :]
                if not greeted:
                    if not frames.startswith(b"HTTP/1.1 200"):
                        self.errors.append(f"client {i}: {frames[:80]!r}")
                        return
                    greeted = True
                    self.ready += 1
                    if self.ready == self._clients:
                        self._all_ready.set()
                for match in _ID.finditer(frames):
                    if match.group(1) == run:
                        n = int(match.group(2))
                        if n < self.events and not seen[n]:
                            seen[n] = now
                            self.counts[i] += 1
                if self.counts[i] == self.events:
                    self._finished += 1
                    if self._finished == self._clients:
                        self._done.set()
                    self.counts[i] += 1  # counted once
        finally:
            writer.close()

    def latencies_ms(self, sent: Sequence[float]) -> tuple[list[float], int]:
        out: list[float] = []
        missing = 0
        for row in self.seen:
            for n, at in enumerate(row):
                if at and sent[n]:
                    out.append((at - sent[n]) * 1000.0)
                else:
                    missing += 1
        return out, missing


async def post_all(
    port: int, bodies: Sequence[bytes], headers: dict[str, str], rate: float, limit_s: float
) -> tuple[list[float], list[int], list[str]]:
    """POST at ``rate`` per second (an open loop): each one's send time and status, errors."""
    n = len(bodies)
    requests = [loadgen.encode_post(port, "/api/v1/incidents", headers, b) for b in bodies]
    sent = [0.0] * n
    statuses = [0] * n
    errors: list[str] = []
    conns = await asyncio.gather(*(loadgen.connect(port) for _ in range(8)))
    idle: asyncio.Queue[Any] = asyncio.Queue()
    for conn in conns:
        idle.put_nowait(conn)
    loop = asyncio.get_running_loop()

    async def one(i: int, conn: Any) -> None:
        sent[i] = time.perf_counter()
        try:
            statuses[i], _ = await conn.request(requests[i])
        except Exception as exc:  # counted (not accepted), and the first few kept
            if len(errors) < 5:
                errors.append(f"POST {i}: {exc!r}")
        finally:
            idle.put_nowait(conn)

    async def schedule() -> None:
        start = loop.time()
        running = []
        for i in range(n):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            running.append(asyncio.create_task(one(i, await idle.get())))
        await asyncio.gather(*running, return_exceptions=True)

    try:
        await asyncio.wait_for(schedule(), limit_s)
    finally:
        for conn in conns:
            conn.close()
    return sent, statuses, errors


async def measure(
    port: int, stream_headers: dict[str, str], post_headers: dict[str, str], run: int, plan: Plan
) -> dict[str, Any]:
    events = round(plan.events_per_s * plan.seconds)
    consoles = Consoles(plan.clients, events, run)
    try:
        await consoles.start(port, "/api/v1/stream", stream_headers, limit_s=60.0)
        bodies = [incident(run, n) for n in range(events)]
        sent, statuses, post_errors = await post_all(
            port, bodies, post_headers, plan.events_per_s, plan.seconds * 3 + 30
        )
        await consoles.wait_all(plan.drain_s)
    finally:
        await consoles.close()
    latencies, missing = consoles.latencies_ms(sent)
    return {
        "p50_ms": round(percentile(latencies, 0.50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "delivered": len(latencies),
        "expected": plan.clients * events,
        "missing": missing,
        "accepted": sum(1 for s in statuses if s == 202),
        "errors": (post_errors + consoles.errors)[:5],
    }


# -- the hub and the baseline -------------------------------------------------------------------


def add_coordinator(data: Path) -> None:
    secret = data.parent / f"{data.name}-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    argv = [*_liandong_argv(), "users", "add", COORDINATOR, "--role", "coordinator"]
    argv += ["--password-file", str(secret), "--data", str(data)]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=_hub_env(), timeout=60, check=False
    )
    secret.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"liandong users add failed: {done.stderr.strip()}")


def sign_in(port: int) -> str:
    """The session cookie of the coordinator (``liandong_session=...``)."""
    body = orjson.dumps({"username": COORDINATOR, "password": PASSWORD})
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}/api/v1/session",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        for header in answer.headers.get_all("Set-Cookie") or []:
            text = str(header)
            if text.startswith("liandong_session="):
                return text.split(";", 1)[0]
    raise RuntimeError("the hub's sign-in set no liandong_session cookie")


def run_hub(number: int, plan: Plan, workdir: Path) -> dict[str, Any]:
    data = workdir / f"hub-{number}"
    token = add_adapter(data, QINGPU)
    add_coordinator(data)
    port = loadgen.free_port()
    argv = [*_liandong_argv(), "run", "--no-demo", "--data", str(data), "--port", str(port)]
    hub = Server(argv, port, workdir / f"hub-{number}.log", _hub_env())
    try:
        hub.wait_healthy("/healthz", timeout_s=60.0)
        cookie = sign_in(port)
        post = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return loadgen.run_async(lambda: measure(port, {"Cookie": cookie}, post, number, plan))
    finally:
        hub.stop()


def run_baseline(number: int, plan: Plan, workdir: Path) -> dict[str, Any]:
    port = loadgen.free_port()
    code = f"from bench.console_baseline import serve; serve({port})"
    server = Server(
        [sys.executable, "-c", code], port, workdir / f"baseline-{number}.log", _hub_env()
    )
    try:
        server.wait_healthy("/healthz", timeout_s=60.0)
        post = {"Content-Type": "application/json"}
        return loadgen.run_async(lambda: measure(port, {}, post, number, plan))
    finally:
        server.stop()


def run(quick: bool = False) -> dict[str, Any]:
    """Run the benchmark; returns its figures (medians over the runs, and every run's own)."""
    plan = QUICK if quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="liandong-bench-console-"))
    started = time.monotonic()
    load_at_start = round(os.getloadavg()[0], 2)
    hub_runs: list[dict[str, Any]] = []
    base_runs: list[dict[str, Any]] = []
    try:
        for number in range(plan.runs):
            base_runs.append(run_baseline(number, plan, workdir))
            hub_runs.append(run_hub(number, plan, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    p99 = median_of([r["p99_ms"] for r in hub_runs])
    base_p99 = median_of([r["p99_ms"] for r in base_runs])
    return {
        "benchmark": "console",
        "clients": plan.clients,
        "events_per_s": plan.events_per_s,
        "p99_ms": p99,
        "p50_ms": median_of([r["p50_ms"] for r in hub_runs]),
        "max_ms": median_of([r["max_ms"] for r in hub_runs]),
        "baseline_p99_ms": base_p99,
        "baseline_p50_ms": median_of([r["p50_ms"] for r in base_runs]),
        "ratio_p99": round(p99 / base_p99, 2) if p99 and base_p99 else None,
        "events_per_run": round(plan.events_per_s * plan.seconds),
        "delivered": sum(r["delivered"] for r in hub_runs),
        "expected": sum(r["expected"] for r in hub_runs),
        "missing": sum(r["missing"] for r in hub_runs),
        "baseline_missing": sum(r["missing"] for r in base_runs),
        "target_p99_ms": 500,
        "runs_count": plan.runs,
        "quick": quick,
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": load_at_start,
        "latency_clock": "bench process perf_counter: POST written -> frame read by each client",
        "elapsed_s": round(time.monotonic() - started, 1),
        "runs": {"hub": hub_runs, "baseline": base_runs},
    }
