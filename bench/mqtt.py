"""``liandong bench mqtt``: a city's MQTT publish until the hub accepted the incident, at 500/s,
against a bare MQTT publish -> subscribe round trip measured in the same run.

Set up once: Debian's mosquitto with the deployment's configuration (``deploy/mosquitto/``,
``set_tcp_nodelay true``) on a free loopback port, a fresh hub (``liandong run --no-demo`` in a
subprocess, its own data directory), and the MQTT link as its own process (``python -m
adapters.links``), serving Qingpu (310118) with a hub adapter token.

Each run (three; one with ``quick``) has two phases, each an open loop at ``rate_per_s``:

1. **baseline**: a client publishes QoS 1 to a topic only a plain subscriber in this process
   reads (aiomqtt through ``adapters.transports.mqtt``: MQTT 5, TCP_NODELAY); latency = the
   subscriber's receipt - the message's scheduled send time.
2. **link**: Qingpu's city client publishes canonical incidents (QoS 1) to
   ``liandong/v1/310118/incidents``; the link posts each to ``POST /api/v1/incidents`` and
   writes a trace line when the hub answered; latency = that moment (wall clock, same machine)
   - the scheduled send time. The incidents are ``Met``/``Moderate``: they match no playbook, so
   the hub's engine issues no tasks and the figure is the path city -> broker -> link -> hub
   intake, not the planner.

Latencies are from the *scheduled* send time, so a publisher that falls behind shows up in the
figures (no coordinated omission). The first ``warmup`` messages of each phase are not counted.
``lost`` = incidents the broker acknowledged (PUBACK) that the hub never answered 202 within the
drain time, plus baseline messages never received; ``refused`` = hub answers other than 202.
Figures are medians over the runs; ``runs`` keeps each run's. Every process is started on
127.0.0.1 and stopped by its pid; every loop has a count and a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from adapters.transports.mqtt import MqttEndpoint, connect
from adapters.transports.mqtt_broker import LocalBroker
from bench.loadgen import free_port, median_of

HOST = "127.0.0.1"
CITY = "310118"
BASELINE_USER = "bench"  # the ACL's pattern lines give it liandong/v1/bench/...
LINK_USER = "liandong-link"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    runs: int
    rate_per_s: float
    seconds: float
    warmup: int
    drain_s: float = 30.0


FULL = Plan(runs=3, rate_per_s=500.0, seconds=10.0, warmup=250)
QUICK = Plan(runs=1, rate_per_s=500.0, seconds=2.0, warmup=100)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (pos - low), 3)


def incident(identifier: str) -> bytes:
    """A canonical incident that matches no playbook (the intake's work only)."""
    return orjson.dumps(
        {
            "identifier": identifier,
            "sender": CITY,
            "sent": "2026-07-01T08:30:00+08:00",
            "status": "Actual",
            "msgType": "Alert",
            "scope": "Public",
            "info": [
                {
                    "language": "zh-CN",
                    "category": ["Met"],
                    "event": "大风",
                    "urgency": "Expected",
                    "severity": "Moderate",
                    "certainty": "Likely",
                    "area": [{"areaDesc": "青浦区", "circle": ["31.15,121.12 5"]}],
                }
            ],
        }
    )


# -- processes -----------------------------------------------------------------------------------


class Process:
    """A subprocess writing to a log file, stopped by its pid (TERM, then KILL)."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def tail(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self, timeout_s: float = 15.0) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self._out.close()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANDONG_")}
    env["LIANDONG_LOG_LEVEL"] = "WARNING"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_hub(data: Path) -> tuple[Process, str]:
    port = free_port()
    argv = [sys.executable, "-c", "from hub.cli import main; main()", "run", "--no-demo"]
    argv += ["--data", str(data), "--host", HOST, "--port", str(port)]
    hub = Process(argv, data.parent / "hub.log", _env())
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if hub.proc.poll() is not None:
            raise RuntimeError(f"the hub exited: {hub.tail()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2.0) as res:
                if res.status == 200:
                    return hub, url
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    hub.stop()
    raise RuntimeError(f"the hub is not healthy after 60 s: {hub.tail()}")


def add_adapter(data: Path, jurisdiction: str) -> str:
    from hub.intake.credentials import create_adapter
    from hub.model.envelope import format_time
    from hub.store.db import connect_direct

    data.mkdir(parents=True, exist_ok=True)
    conn = connect_direct(data / "liandong.db")
    try:
        now = format_time(time.time_ns() // 1_000_000)
        return create_adapter(conn, f"bench-mqtt-{jurisdiction}", jurisdiction, now)
    finally:
        conn.close()


def start_link(
    workdir: Path, broker: LocalBroker, password: str, hub_url: str, token: str
) -> tuple[Process, Path]:
    config = {
        "broker": {
            "host": HOST,
            "port": broker.port,
            "username": LINK_USER,
            "password": password,
            "client_id": "bench-link",
            "session_expiry_s": 600,
        },
        "hub": hub_url,
        "tokens": {CITY: token},
        "resend_interval_s": 30,
        "poll_interval_s": 1,
    }
    path = workdir / "link.json"
    path.write_bytes(orjson.dumps(config))
    path.chmod(0o600)
    trace = workdir / "link-trace.jsonl"
    argv = [sys.executable, "-m", "adapters.links", "--config", str(path)]
    argv += ["--trace", str(trace), "--log-level", "WARNING"]
    env = _env()
    env["PYTHONPATH"] = str(REPO)
    return Process(argv, workdir / "link.log", env), trace


# -- the phases ----------------------------------------------------------------------------------


def _endpoint(broker: LocalBroker, user: str, client_id: str) -> MqttEndpoint:
    assert broker.port is not None
    return MqttEndpoint(
        host=HOST,
        port=broker.port,
        client_id=client_id,
        username=user,
        password=broker.users[user],
        session_expiry_s=60,
    )


async def _open_loop(
    publish: Any, count: int, rate: float, limit_s: float
) -> tuple[list[int], list[bool]]:
    """Call ``publish(i)`` at ``rate``; returns each message's scheduled wall time (ns) and
    whether the broker acknowledged it."""
    loop = asyncio.get_running_loop()
    start_mono = loop.time() + 0.05
    start_wall = time.time_ns() + 50_000_000
    scheduled = [start_wall + int(i * 1e9 / rate) for i in range(count)]
    acked = [False] * count
    running: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        try:
            await publish(i)
            acked[i] = True
        except Exception:  # counted as not acknowledged
            acked[i] = False

    for i in range(count):
        delay = start_mono + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(one(i))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.wait(running, timeout=limit_s)
    return scheduled, acked


async def baseline_phase(broker: LocalBroker, run: int, plan: Plan) -> dict[str, Any]:
    count = int(plan.rate_per_s * plan.seconds)
    name = f"liandong/v1/{BASELINE_USER}/incidents"
    received: dict[int, int] = {}
    sub_ep = _endpoint(broker, LINK_USER, f"bench-baseline-sub-{run}")
    pub_ep = _endpoint(broker, BASELINE_USER, f"bench-baseline-pub-{run}")
    async with connect(sub_ep) as sub, connect(pub_ep) as pub:
        await sub.subscribe([name])

        async def receive() -> None:
            async for delivery in sub.deliveries():
                received[int(delivery.payload[:10])] = time.time_ns()
                if len(received) >= count:
                    return

        receiver = asyncio.create_task(receive())
        body = b"x" * 600

        async def publish(i: int) -> None:
            await pub.publish(name, b"%010d" % i + body, qos=1)

        scheduled, acked = await _open_loop(publish, count, plan.rate_per_s, plan.drain_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver, plan.drain_s)
    latencies = [
        (received[i] - scheduled[i]) / 1e6 for i in range(plan.warmup, count) if i in received
    ]
    return {
        "baseline_p50_ms": percentile(latencies, 50),
        "baseline_p99_ms": percentile(latencies, 99),
        "baseline_lost": sum(1 for i in range(count) if acked[i] and i not in received),
        "baseline_count": count,
    }


def _read_trace(path: Path) -> dict[str, tuple[int | None, int, int]]:
    found: dict[str, tuple[int | None, int, int]] = {}
    if not path.exists():
        return found
    for line in path.read_bytes().splitlines():
        if line.strip():
            item = orjson.loads(line)
            found[item["key"]] = (item["status"], item["at_ns"], item["hub_ns"])
    return found


async def link_phase(broker: LocalBroker, trace: Path, run: int, plan: Plan) -> dict[str, Any]:
    count = int(plan.rate_per_s * plan.seconds)
    name = f"liandong/v1/{CITY}/incidents"
    keys = [f"bench-{run}-{i}" for i in range(count)]
    bodies = [incident(k) for k in keys]
    async with connect(_endpoint(broker, CITY, f"bench-city-{run}")) as city:
        nodelay = city.tcp_nodelay()

        async def publish(i: int) -> None:
            await city.publish(name, bodies[i], qos=1, content_type="application/json")

        scheduled, acked = await _open_loop(publish, count, plan.rate_per_s, plan.drain_s)
    deadline = time.monotonic() + plan.drain_s
    seen = _read_trace(trace)
    while time.monotonic() < deadline and not all(k in seen for k in keys):
        await asyncio.sleep(0.1)
        seen = _read_trace(trace)
    latencies, hub_ms = [], []
    for i in range(plan.warmup, count):
        answer = seen.get(keys[i])
        if answer is not None and answer[0] == 202:
            latencies.append((answer[1] - scheduled[i]) / 1e6)
            hub_ms.append(answer[2] / 1e6)
    return {
        "p50_ms_at_500": percentile(latencies, 50),
        "p99_ms_at_500": percentile(latencies, 99),
        "hub_http_p50_ms": percentile(hub_ms, 50),
        "hub_http_p99_ms": percentile(hub_ms, 99),
        "lost": sum(1 for i in range(count) if acked[i] and keys[i] not in seen),
        "refused": sum(1 for k in keys if k in seen and seen[k][0] != 202),
        "unacknowledged_by_broker": acked.count(False),
        "count": count,
        "client_tcp_nodelay": nodelay,
    }


# -- the benchmark -------------------------------------------------------------------------------

_MEDIANS = (
    "link_cpu_ms_per_message",
    "hub_cpu_ms_per_message",
    "broker_cpu_ms_per_message",
    "p50_ms_at_500",
    "p99_ms_at_500",
    "baseline_p50_ms",
    "baseline_p99_ms",
    "hub_http_p50_ms",
    "hub_http_p99_ms",
)


async def _wait_for_link(broker: LocalBroker, trace: Path, link: Process) -> None:
    """One incident through the whole path: the link is subscribed and the hub answers. (Sent
    again while the broker answers 16, no matching subscribers: the link is not subscribed.)"""
    deadline = time.monotonic() + 60.0
    async with connect(_endpoint(broker, CITY, "bench-probe")) as city:
        while "bench-probe" not in _read_trace(trace):
            if link.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the link did not forward a probe incident: {link.tail()}")
            probe = incident("bench-probe")
            if await city.publish(f"liandong/v1/{CITY}/incidents", probe, qos=1) == 0:
                await asyncio.sleep(0.5)  # routed: give it time before sending it again
            await asyncio.sleep(0.1)


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a running process (Linux /proc), 0.0 if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


async def _runs(
    broker: LocalBroker, trace: Path, link: Process, hub: Process, plan: Plan
) -> list[dict[str, Any]]:
    await _wait_for_link(broker, trace, link)
    runs = []
    pids = {"link": link.proc.pid, "hub": hub.proc.pid, "broker": broker.pid}
    for run in range(plan.runs):
        figures = await baseline_phase(broker, run, plan)
        before = {name: _cpu_s(pid) for name, pid in pids.items()}
        figures.update(await link_phase(broker, trace, run, plan))
        for name, pid in pids.items():
            used_ms = (_cpu_s(pid) - before[name]) * 1000.0
            figures[f"{name}_cpu_ms_per_message"] = round(used_ms / figures["count"], 3)
        runs.append(figures)
    return runs


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop, as the link uses (it comes with uvicorn[standard]); asyncio's own otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return None
    return uvloop.new_event_loop


def run(quick: bool = False) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    load_at_start = round(os.getloadavg()[0], 2)
    workdir = Path(tempfile.mkdtemp(prefix="liandong-bench-mqtt-"))
    users = {u: f"bench-{u}-{os.urandom(6).hex()}" for u in (CITY, BASELINE_USER, LINK_USER)}
    broker = LocalBroker(workdir / "mosquitto", users)
    hub: Process | None = None
    link: Process | None = None
    try:
        broker.start()
        token = add_adapter(workdir / "hub", CITY)
        hub, hub_url = start_hub(workdir / "hub")
        link, trace = start_link(workdir, broker, users[LINK_USER], hub_url, token)
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runs = runner.run(_runs(broker, trace, link, hub, plan))
    finally:
        if link is not None:
            link.stop()
        if hub is not None:
            hub.stop()
        broker.close()
        shutil.rmtree(workdir, ignore_errors=True)
    out: dict[str, Any] = {"benchmark": "mqtt"}
    for key in _MEDIANS:
        out[key] = median_of([r[key] for r in runs])
    out.update(
        {
            "lost": sum(r["lost"] for r in runs),
            "baseline_lost": sum(r["baseline_lost"] for r in runs),
            "refused": sum(r["refused"] for r in runs),
            "rate_per_s": plan.rate_per_s,
            "messages_per_phase": runs[0]["count"] if runs else 0,
            "warmup": plan.warmup,
            "runs_count": plan.runs,
            "quick": quick,
            "client_tcp_nodelay": all(r["client_tcp_nodelay"] for r in runs),
            "broker": "mosquitto 2.0 with deploy/mosquitto/mosquitto.conf (set_tcp_nodelay true)",
            "event_loop": "uvloop" if _loop_factory() else "asyncio",
            "hub_sqlite_synchronous": "FULL (the hub's default)",
            "latency_clock": (
                "wall clock, scheduled send -> link has the hub's 202 (baseline: -> subscriber)"
            ),
            "cpus": os.cpu_count(),
            "loadavg_1m_at_start": load_at_start,
            "elapsed_s": round(time.monotonic() - started, 1),
            "runs": {key: [r[key] for r in runs] for key in runs[0]} if runs else {},
        }
    )
    return out
