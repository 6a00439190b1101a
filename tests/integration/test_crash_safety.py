"""Crash safety: SIGKILL the hub while incidents stream in; nothing answered is lost or doubled.

The promises under test: the intake answers 202 only after COMMIT (group commit in
``hub/store/db.py``); the engine commits its consumer offset only once the tasks and their
``task.issued`` events are durable; a redelivered incident plans the same derived task ids, which
the store refuses to insert twice; a resent incident is stored once and answered 202 again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from hub.bus import topics
from hub.engine.evaluator import plan
from hub.engine.playbook import load_playbooks
from hub.model.envelope import Lane, derived_id
from hub.model.incident import Incident
from hub.region import load_region
from tests.factories import cap
from tests.integration.hubproc import HOST, HubProcess, HubProcesses, add_adapter, add_adapters

REPO = Path(__file__).resolve().parents[2]

INCIDENTS = 5_000
WORKERS = 16
KILL_AFTER = (1_200, 2_500, 3_800)  # incidents answered 202 when each SIGKILL lands
STREAM_TIMEOUT_S = 120.0
CATCH_UP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 15.0
MAX_ATTEMPTS = 50  # per incident; three crashes cost each in-flight request one or two
RESENT_SAMPLE_EVERY = 50


@dataclass(frozen=True)
class Template:
    """A kind of incident in the stream; the tasks it must give follow from the playbooks."""

    name: str
    sender: str
    category: str
    severity: str
    circle: str

    def message(self, identifier: str) -> dict[str, Any]:
        return cap(
            identifier,
            self.sender,
            category=self.category,
            severity=self.severity,
            circle=self.circle,
        )


TEMPLATES = (
    Template("qingpu-taipu-spill", "310118", "Env", "Severe", "31.03,120.90 2"),
    Template("jinshan-chemical-leak", "310116", "Env", "Extreme", "30.80,121.20 3"),
    Template("wujiang-spill", "320509", "Env", "Severe", "30.98,120.85 2"),
    Template("jiashan-spill", "330421", "Env", "Severe", "30.95,120.90 2"),
    Template("pinghu-spill", "330482", "Env", "Severe", "30.75,121.10 2"),
    Template("qingpu-minor-spill", "310118", "Env", "Minor", "31.03,120.90 2"),
    Template("wujiang-fire", "320509", "Fire", "Moderate", "30.98,120.85 2"),
)
QUIET = {"qingpu-minor-spill", "wujiang-fire"}  # below every playbook's threshold: no tasks
SENDERS = sorted({t.sender for t in TEMPLATES})

# (playbook, version, step, target) of each task a template gives, independent of the incident.
TaskShape = tuple[str, int, str, str]


def _task_shapes() -> dict[str, tuple[TaskShape, ...]]:
    """Plan each template once with the pure evaluator, away from the hub under test."""
    region = load_region()
    playbooks = load_playbooks(REPO / "playbooks")
    shapes = {}
    for template in TEMPLATES:
        incident = Incident.model_validate(template.message("probe"))
        result = plan(
            incident,
            thread=incident.key,
            cause="probe",
            reported_ms=0,
            lane=Lane.ACTUAL,
            playbooks=playbooks,
            region=region,
        )
        assert not result.failures, result.failures
        shapes[template.name] = tuple(
            sorted((t.why.playbook, t.why.version, t.why.step, t.target) for t in result.tasks)
        )
    return shapes


@pytest.fixture(scope="module")
def task_shapes() -> dict[str, tuple[TaskShape, ...]]:
    shapes = _task_shapes()
    for name, shape in shapes.items():  # the stream means something only if both kinds occur
        assert bool(shape) is (name not in QUIET), f"{name}: {shape}"
    return shapes


def expected_tasks(shape: tuple[TaskShape, ...], thread: str) -> dict[str, str]:
    """Task id → target for an incident thread, derived as the engine derives them."""
    return {derived_id(pb, str(v), thread, step, target): target for pb, v, step, target in shape}


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[HubProcesses]:
    with HubProcesses(tmp_path) as made:
        yield made


# -- reading the hub's database, read-only, beside (or after) the hub --------------------------
@contextlib.contextmanager
def read_only(database: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10.0)
    try:
        yield conn
    finally:
        conn.close()


def engine_lag(database: Path) -> int:
    """Incidents on the live topic that the engine has not committed yet."""
    with read_only(database) as conn:
        row = conn.execute(
            "SELECT \"offset\" FROM consumer_offsets WHERE grp = 'engine' AND topic = ?",
            (topics.INCIDENTS,),
        ).fetchone()
        (lag,) = conn.execute(
            'SELECT COUNT(*) FROM log WHERE topic = ? AND "offset" > ?',
            (topics.INCIDENTS, row[0] if row else 0),
        ).fetchone()
    return int(lag)


async def wait_caught_up(database: Path, timeout_s: float = CATCH_UP_TIMEOUT_S) -> float:
    """Wait until the engine has consumed every incident; returns the seconds it took."""
    started = time.monotonic()
    while (lag := engine_lag(database)) > 0:
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"engine still {lag} incidents behind after {timeout_s} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def hub_complaints(database: Path) -> list[str]:
    """Events on any topic besides incidents and tasks (``evaluation.failed`` when a playbook
    raised, ``event.deadlettered``...), as "type: data" lines: none are expected here."""
    with read_only(database) as conn:
        rows = conn.execute(
            "SELECT value FROM log WHERE topic NOT IN (?, ?)", (topics.INCIDENTS, topics.TASKS)
        ).fetchall()
    return [f"{e['type']}: {e['data']}" for e in (orjson.loads(v) for (v,) in rows)]


def stored_identifiers(database: Path) -> set[str]:
    with read_only(database) as conn:
        return {i for (i,) in conn.execute("SELECT identifier FROM incidents")}


# -- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------
class HubUnreachable(Exception):
    """No answer: connection refused, reset or closed before the response was complete."""


class KeepAliveConnection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the answer.

    On this 2-core machine httpx's per-request overhead made the client, not the hub, the
    bottleneck (about 140 against 300 requests a second), so the stream speaks HTTP itself.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, token: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
                self._writer.write(head + body)
                await self._writer.drain()
                return await self._response()
        except (OSError, EOFError, ValueError) as exc:  # TimeoutError is an OSError
            self.close()
            raise HubUnreachable(f"{type(exc).__name__}: {exc}") from exc

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        assert self._reader is not None
        status_line = await self._reader.readline()
        if not status_line:
            raise EOFError("connection closed before the status line")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ValueError("chunked answers are not expected from the intake")
        answer = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, answer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


# -- the stream --------------------------------------------------------------------------------
@dataclass
class Stream:
    """Incidents to deliver, and what the hub answered."""

    port: int
    work: list[tuple[str, str, bytes]]  # identifier, token, body
    up: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # set at every 202
    position: int = 0
    receipts: dict[str, bytes] = field(default_factory=dict)  # identifier → 202 body
    answered_duplicate: set[str] = field(default_factory=set)
    unreachable: int = 0
    server_errors: list[tuple[str, int, bytes]] = field(default_factory=list)
    refused: list[tuple[str, int, bytes]] = field(default_factory=list)

    def take(self) -> tuple[str, str, bytes] | None:
        if self.position >= len(self.work):
            return None
        self.position += 1
        return self.work[self.position - 1]

    async def answered_at_least(self, count: int) -> None:
        while len(self.receipts) < count:
            self.answered.clear()
            await self.answered.wait()


async def deliver(stream: Stream, conn: KeepAliveConnection, item: tuple[str, str, bytes]) -> None:
    """POST one incident until it is answered, resending the same bytes after a failure."""
    identifier, token, body = item
    for _ in range(MAX_ATTEMPTS):
        await stream.up.wait()
        try:
            status, headers, answer = await conn.post("/api/v1/incidents", token, body)
        except HubUnreachable:
            stream.unreachable += 1
            await asyncio.sleep(0.02)
            continue
        if status == 202:
            stream.receipts[identifier] = answer
            stream.answered.set()
            if headers.get("liandong-duplicate") == "true":
                stream.answered_duplicate.add(identifier)
            return
        if status >= 500:
            stream.server_errors.append((identifier, status, answer[:500]))
            await asyncio.sleep(0.1)
            continue
        stream.refused.append((identifier, status, answer[:500]))
        return
    stream.refused.append((identifier, 0, b"no 202 after the maximum number of attempts"))


async def worker(stream: Stream) -> None:
    conn = KeepAliveConnection(stream.port)
    try:
        while (item := stream.take()) is not None:
            await deliver(stream, conn, item)
    finally:
        conn.close()


@dataclass(frozen=True)
class Crash:
    answered_before: int
    engine_behind: int  # incidents stored but not yet committed by the engine at the kill
    stored_after_restart: int
    lost: frozenset[str]
    restart_s: float


async def crash_three_times(stream: Stream, hub: HubProcess, crashes: list[Crash]) -> None:
    """SIGKILL the hub at each threshold, restart it, and check nothing answered was lost."""
    for threshold in KILL_AFTER:
        await stream.answered_at_least(threshold)
        stream.up.clear()
        answered = frozenset(stream.receipts)
        hub.kill()
        try:
            behind = engine_lag(hub.database_path)  # for the report only
        except sqlite3.Error:
            behind = -1
        started = time.monotonic()
        await asyncio.to_thread(hub.start)
        restart_s = time.monotonic() - started
        stored = stored_identifiers(hub.database_path)
        crashes.append(Crash(len(answered), behind, len(stored), answered - stored, restart_s))
        stream.up.set()


async def resend_sample(stream: Stream, identifiers: list[str]) -> list[str]:
    """Resend accepted incidents: each must be answered 202, marked duplicate, same receipt."""
    by_id = {identifier: (token, body) for identifier, token, body in stream.work}
    wrong = []
    conn = KeepAliveConnection(stream.port)
    try:
        for identifier in identifiers:
            token, body = by_id[identifier]
            status, headers, answer = await conn.post("/api/v1/incidents", token, body)
            duplicate = headers.get("liandong-duplicate") == "true"
            if status != 202 or not duplicate or answer != stream.receipts[identifier]:
                wrong.append(f"{identifier}: {status} duplicate={duplicate} {answer[:200]!r}")
    finally:
        conn.close()
    return wrong


# -- what the database must hold ---------------------------------------------------------------
def check_database(
    database: Path,
    sent: dict[str, Template],
    answered: set[str],
    shapes: dict[str, tuple[TaskShape, ...]],
) -> dict[str, int]:
    """Assert the four crash-safety properties on the stored state; returns counts."""
    with read_only(database) as conn:
        incidents = conn.execute("SELECT sender, identifier, thread FROM incidents").fetchall()
        tasks = conn.execute("SELECT id, incident, target FROM tasks").fetchall()
        issued = [
            orjson.loads(v)
            for (v,) in conn.execute("SELECT value FROM log WHERE topic = ?", (topics.TASKS,))
        ]
        reported = [
            orjson.loads(v)
            for (v,) in conn.execute("SELECT value FROM log WHERE topic = ?", (topics.INCIDENTS,))
        ]
        by_topic = dict(conn.execute("SELECT topic, COUNT(*) FROM log GROUP BY topic"))

    complaints = hub_complaints(database)
    assert not complaints, f"{len(complaints)} complaints from the hub, e.g. {complaints[:3]}"

    # 1. every incident answered 202 is stored, once, and nothing else is.
    stored = {identifier for _, identifier, _ in incidents}
    assert not answered - stored, f"answered 202 but not stored: {sorted(answered - stored)[:20]}"
    assert len(incidents) == len(stored) == len(sent), "stored incidents are not the ones sent"
    assert stored == set(sent)

    # 2. every stored incident has exactly its expected tasks.
    actual: dict[str, dict[str, str]] = defaultdict(dict)
    for task_id, thread, target in tasks:
        actual[thread][task_id] = target
    wrong = []
    for sender, identifier, thread in incidents:
        template = sent[identifier]
        assert sender == template.sender and thread == f"{sender},{identifier}"
        want = expected_tasks(shapes[template.name], thread)
        got = actual.pop(thread, {})
        if got != want:
            wrong.append(f"{thread} ({template.name}): want {want}, got {got}")
    assert not wrong, f"{len(wrong)} incidents with wrong tasks, e.g. {wrong[:5]}"
    assert not actual, f"tasks for incidents never stored: {list(actual)[:5]}"

    # 3. no task issued twice; one task.issued per stored task.
    assert {e["type"] for e in issued} <= {"task.issued"}
    issued_ids = Counter(e["data"]["task"]["id"] for e in issued)
    doubled = {task_id: n for task_id, n in issued_ids.items() if n > 1}
    assert not doubled, f"task.issued more than once: {list(doubled.items())[:10]}"
    assert len(issued) == len(tasks) and set(issued_ids) == {t for t, _, _ in tasks}

    # 4. one incident.reported per (sender, identifier).
    assert {e["type"] for e in reported} == {"incident.reported"}
    keys = Counter(e["subject"] for e in reported)
    doubled = {key: n for key, n in keys.items() if n > 1}
    assert not doubled, f"incident.reported more than once: {list(doubled.items())[:10]}"
    assert set(keys) == {f"{s},{i}" for s, i, _ in incidents}
    return {"incidents": len(incidents), "tasks": len(tasks), "log": sum(by_topic.values())}


def check_stderr(hub: HubProcess) -> list[str]:
    """The hub's standard error lines over all its runs; a traceback or an ERROR line fails."""
    text = hub.stderr()
    assert "Traceback" not in text and " ERROR " not in text, text[-6000:]
    return [line for line in text.splitlines() if line and not line.startswith("--- run ")]


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_sigkill_three_times_during_a_stream_of_5000_incidents(
    hubs: HubProcesses, task_shapes: dict[str, tuple[TaskShape, ...]]
) -> None:
    began = time.monotonic()
    hub = hubs.new("crash")
    tokens = add_adapters(hub.data_dir, [(s, f"crash-{s}") for s in SENDERS], via_cli=False)
    sent: dict[str, Template] = {}
    work = []
    for n in range(INCIDENTS):
        template = TEMPLATES[n % len(TEMPLATES)]
        identifier = f"crash-{n:05d}-{template.name}"
        sent[identifier] = template
        body = orjson.dumps(template.message(identifier))
        work.append((identifier, tokens[f"crash-{template.sender}"], body))
    await asyncio.to_thread(hub.start)
    assert hub.port is not None
    stream = Stream(hub.port, work)
    stream.up.set()
    crashes: list[Crash] = []

    streaming = time.monotonic()
    async with asyncio.timeout(STREAM_TIMEOUT_S), asyncio.TaskGroup() as group:
        group.create_task(crash_three_times(stream, hub, crashes))
        for _ in range(WORKERS):
            group.create_task(worker(stream))
    stream_s = time.monotonic() - streaming

    assert not stream.refused, f"{len(stream.refused)} refused, e.g. {stream.refused[:5]}"
    assert len(stream.receipts) == INCIDENTS
    assert len(crashes) == len(KILL_AFTER) and hub.runs == 1 + len(KILL_AFTER)
    for crash in crashes:
        assert not crash.lost, f"answered 202 and lost by a SIGKILL: {sorted(crash.lost)[:20]}"

    sample = sorted(stream.answered_duplicate | set(list(sent)[::RESENT_SAMPLE_EVERY]))
    wrong = await resend_sample(stream, sample)
    assert not wrong, f"{len(wrong)} resends answered differently, e.g. {wrong[:5]}"
    catch_up_s = await wait_caught_up(hub.database_path)
    hub.stop()
    counts = check_database(hub.database_path, sent, set(stream.receipts), task_shapes)
    stderr = check_stderr(hub)

    print(
        f"\ncrash safety: {INCIDENTS} incidents by {WORKERS} workers in {stream_s:.1f} s "
        f"({INCIDENTS / stream_s:.0f}/s) with {len(crashes)} SIGKILLs; "
        f"total {time.monotonic() - began:.1f} s"
    )
    for n, crash in enumerate(crashes, 1):
        print(
            f"  kill {n}: {crash.answered_before} answered, engine {crash.engine_behind} behind; "
            f"{crash.stored_after_restart} stored after restart ({crash.restart_s:.1f} s), "
            f"lost {len(crash.lost)}"
        )
    print(
        f"  requests without an answer (resent): {stream.unreachable}; "
        f"resends answered as duplicates: {len(stream.answered_duplicate)}; "
        f"5xx answers: {len(stream.server_errors)}; resent sample: {len(sample)} ok; "
        f"engine caught up {catch_up_s:.1f} s after the stream"
    )
    print(f"  stored: {counts}; hub stderr: {len(stderr)} lines {stderr[:5]}")
    assert not stream.server_errors, stream.server_errors[:5]


def test_incident_answered_202_survives_an_immediate_sigkill(
    hubs: HubProcesses, task_shapes: dict[str, tuple[TaskShape, ...]]
) -> None:
    by_name = {t.name: t for t in TEMPLATES}
    rounds = [by_name[n] for n in ("qingpu-taipu-spill", "jinshan-chemical-leak", "wujiang-fire")]
    hub = hubs.new("durability")
    tokens = {t.sender: add_adapter(hub.data_dir, t.sender, f"durable-{t.sender}") for t in rounds}
    hub.start()
    for n, template in enumerate(rounds):
        identifier = f"durable-{n}-{template.name}"
        auth = {"Authorization": f"Bearer {tokens[template.sender]}"}
        answer = httpx.post(
            f"{hub.url}/api/v1/incidents",
            json=template.message(identifier),
            headers=auth,
            timeout=10.0,
        )
        assert answer.status_code == 202, answer.text
        hub.kill()  # at once: no graceful shutdown, nothing flushed after the answer
        hub.start()

        with httpx.Client(base_url=hub.url, headers=auth, timeout=10.0) as client:
            got = client.get(f"/api/v1/incidents/{identifier}", params={"sender": template.sender})
            assert got.status_code == 200, got.text
            assert got.json()["incident"]["identifier"] == identifier
            deadline = time.monotonic() + 15.0
            while engine_lag(hub.database_path) > 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert engine_lag(hub.database_path) == 0, "the engine did not catch up in 15 s"
            assert not hub_complaints(hub.database_path)
            thread = f"{template.sender},{identifier}"
            listed = client.get("/api/v1/tasks", params={"incident": thread})
            assert listed.status_code == 200, listed.text
            tasks = {t["id"]: t["target"] for t in listed.json()["tasks"]}
            assert tasks == expected_tasks(task_shapes[template.name], thread)
    hub.stop()
    check_stderr(hub)
