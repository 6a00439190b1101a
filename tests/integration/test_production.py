"""Production mode (PostgreSQL + Kafka, two hub instances): crashes and unknown outcomes.

Real processes throughout: two ``liandong run`` hubs sharing one PostgreSQL database and one
Kafka-protocol broker, both members of the consumer group ``engine`` (the incidents topic has 4
partitions keyed by incident thread), one of them relaying the outbox (advisory lock). A lean
HTTP client plays the city adapters and resends, with the same identifier and body, whatever was
not answered. What each test forces and what it checks is in its docstring; the shared checks:

- every incident answered 202 is stored in PostgreSQL, once;
- every stored incident has exactly the tasks the pure evaluator plans for it (derived ids);
- the outbox holds one ``incident.reported`` per incident and one ``task.issued`` per task: no
  state change emitted its event twice, whatever was redelivered or retried;
- on the broker, read fully from the beginning, every incident and every task appears at least
  once. The topic may repeat an event: a relay that dies (or loses its broker, or its database
  connection) between publishing a batch and marking it sent publishes it again, which is
  at-least-once by design; consumers dedupe by event id. The store is where "exactly once"
  is asserted; duplicates on the topic are counted and printed;
- no dead letter, no ``evaluation.failed``, no traceback or ERROR record in any hub's stderr
  (but, in the broker test, the Kafka client's while the broker is away).

PostgreSQL: the machine's server (``postgres_url``: a fresh database per test), except for the
tests that change server settings or crash the server: they get a cluster of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from hub.backends import RELAY_LOCK_KEY
from hub.bus import topics
from hub.bus.kafka import KafkaBus, KafkaOptions, ensure_topics
from tests.brokers.postgres import _bin_dir, _PrivateCluster
from tests.integration.hubproc import HubProcess, HubProcesses, add_adapters
from tests.integration.test_crash_safety import (
    SENDERS,
    TEMPLATES,
    HubUnreachable,
    KeepAliveConnection,
    TaskShape,
    Template,
    _task_shapes,
    expected_tasks,
)

WORKERS = 16
MAX_ATTEMPTS = 60  # per incident: a crash or an outage costs an in-flight request a few
SETTLE_TIMEOUT_S = 60.0
PARTITIONS = 4  # of the incidents topic (hub.bus.kafka_setup.DEFAULT_PARTITIONS)
RESEND_SAMPLE_EVERY = 100  # besides the incidents whose delivery went wrong somehow

Item = tuple[str, str, bytes]  # identifier, adapter token, body


@pytest.fixture(scope="module")
def shapes() -> dict[str, tuple[TaskShape, ...]]:
    return _task_shapes()


def production_env(broker: Any, database: str) -> dict[str, str]:
    """The hub's settings for PostgreSQL + this broker (client settings that suit it)."""
    options = broker.client_options
    return {
        "LIANDONG_BUS": f"kafka://{broker.bootstrap}",
        "LIANDONG_DATABASE": database,
        "LIANDONG_KAFKA_FETCH_MAX_WAIT_MS": str(options["fetch_max_wait_ms"]),
        "LIANDONG_KAFKA_LINGER_MS": str(max(options["linger_ms"], 2)),
        "LIANDONG_KAFKA_SESSION_TIMEOUT_MS": str(options["session_timeout_ms"]),
    }


def make_work(
    prefix: str, count: int, tokens: dict[str, str]
) -> tuple[dict[str, Template], list[Item]]:
    """``count`` incidents cycling through the templates; ``tokens``: sender -> token."""
    sent: dict[str, Template] = {}
    work: list[Item] = []
    for n in range(count):
        template = TEMPLATES[n % len(TEMPLATES)]
        identifier = f"{prefix}-{n:05d}-{template.name}"
        sent[identifier] = template
        work.append(
            (identifier, tokens[template.sender], orjson.dumps(template.message(identifier)))
        )
    return sent, work


async def start_all(hubs: Sequence[HubProcess]) -> None:
    await asyncio.gather(*(asyncio.to_thread(hub.start) for hub in hubs))


@contextlib.contextmanager
def frozen(hubs: Sequence[HubProcess]) -> Iterator[None]:
    """SIGSTOP the hubs' processes for the block (SIGCONT however it ends)."""
    pids = [hub.pid for hub in hubs if hub.pid is not None and hub.running]
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


# -- the adapters' side: a stream over several hubs, failing over from a dead one -------------
@dataclass
class Stream:
    """Incidents to deliver over ``ports`` (worker ``n`` prefers ``ports[n % len]``)."""

    ports: list[int]
    work: list[Item]
    dead: set[int] = field(default_factory=set)  # hubs known to be gone: go to another
    up: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    position: int = 0
    receipts: dict[str, bytes] = field(default_factory=dict)  # identifier -> 202 body
    answered_ms: dict[str, int] = field(default_factory=dict)  # identifier -> wall clock
    duplicate_first: set[str] = field(default_factory=set)  # first 202 said "duplicate"
    retried: set[str] = field(default_factory=set)  # needed more than one request
    failed_over: set[str] = field(default_factory=set)  # lost at a dead hub, sent to another
    unreachable: int = 0
    server_errors: Counter[int] = field(default_factory=Counter)
    unavailable: Counter[str] = field(default_factory=Counter)  # 503 details, by kind
    bad_server_errors: list[tuple[str, int, bytes]] = field(default_factory=list)  # not 503
    refused: list[tuple[str, int, bytes]] = field(default_factory=list)

    def take(self) -> Item | None:
        if self.position >= len(self.work):
            return None
        self.position += 1
        return self.work[self.position - 1]

    def port_for(self, home: int) -> int:
        port = self.ports[home % len(self.ports)]
        if port in self.dead:
            alive = [p for p in self.ports if p not in self.dead]
            port = alive[home % len(alive)]
        return port

    async def answered_at_least(self, count: int) -> None:
        while len(self.receipts) < count:
            self.answered.clear()
            await self.answered.wait()


async def deliver(
    stream: Stream, conns: dict[int, KeepAliveConnection], home: int, item: Item
) -> None:
    """POST one incident until it is answered, resending the same bytes after a failure."""
    identifier, token, body = item
    for attempt in range(MAX_ATTEMPTS):
        await stream.up.wait()
        port = stream.port_for(home)
        conn = conns.setdefault(port, KeepAliveConnection(port))
        if attempt:
            stream.retried.add(identifier)
        try:
            status, headers, answer = await conn.post("/api/v1/incidents", token, body)
        except HubUnreachable:
            stream.unreachable += 1
            if port in stream.dead:
                stream.failed_over.add(identifier)
            await asyncio.sleep(0.02)
            continue
        if status == 202:
            if identifier not in stream.receipts and headers.get("liandong-duplicate") == "true":
                stream.duplicate_first.add(identifier)
            stream.receipts[identifier] = answer
            stream.answered_ms[identifier] = time.time_ns() // 1_000_000
            stream.answered.set()
            return
        if status >= 500:
            stream.server_errors[status] += 1
            if status == 503:
                detail = str(orjson.loads(answer).get("detail", answer[:100]))
                stream.unavailable[detail[:100]] += 1
            else:
                stream.bad_server_errors.append((identifier, status, answer[:300]))
            await asyncio.sleep(0.1)  # Retry-After says 1 s; a busy adapter tries sooner
            continue
        stream.refused.append((identifier, status, answer[:300]))
        return
    stream.refused.append((identifier, 0, b"no 202 after the maximum number of attempts"))


async def worker(stream: Stream, home: int) -> None:
    conns: dict[int, KeepAliveConnection] = {}
    try:
        while (item := stream.take()) is not None:
            await deliver(stream, conns, home, item)
    finally:
        for conn in conns.values():
            conn.close()


async def run_stream(stream: Stream, *controllers: Any, timeout_s: float) -> float:
    """Deliver everything with ``WORKERS`` workers while ``controllers`` run; returns seconds."""
    started = time.monotonic()
    stream.up.set()
    async with asyncio.timeout(timeout_s), asyncio.TaskGroup() as group:
        for controller in controllers:
            group.create_task(controller)
        for n in range(WORKERS):
            group.create_task(worker(stream, n))
    return time.monotonic() - started


async def resend_sample(stream: Stream, identifiers: Sequence[str], port: int) -> list[str]:
    """Resend accepted incidents to ``port``: each 202, marked duplicate, same receipt."""
    by_id = {identifier: (token, body) for identifier, token, body in stream.work}
    wrong = []
    conn = KeepAliveConnection(port)
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


async def check_resends(stream: Stream, suspects: set[str], sent: Sequence[str], port: int) -> int:
    """Resend the ``suspects`` and a sample of the rest: each must be answered as the first
    time (same receipt). Returns how many were resent."""
    sample = sorted(suspects | set(list(sent)[::RESEND_SAMPLE_EVERY]))
    wrong = await resend_sample(stream, sample, port)
    assert not wrong, f"{len(wrong)} resends answered differently, e.g. {wrong[:5]}"
    return len(sample)


# -- PostgreSQL, read by the test beside the hubs ----------------------------------------------
@contextlib.asynccontextmanager
async def pg(url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


async def fetch(url: str, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    async with pg(url) as conn:
        cur = await conn.execute(sql, args)
        return await cur.fetchall()


async def relay_leader(url: str, hubs: Sequence[HubProcess], timeout_s: float = 15.0) -> int:
    """Index of the hub whose connection holds the relay's advisory lock.

    PostgreSQL names the holder's client port; the hub process that owns a socket bound to that
    port (``/proc``) is the leader.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = await fetch(
            url,
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
            "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())",
            (RELAY_LOCK_KEY >> 32, RELAY_LOCK_KEY & 0xFFFFFFFF),
        )
        if rows:
            inodes = _socket_inode(int(rows[0][0]))
            for n, hub in enumerate(hubs):
                if hub.pid is not None and inodes & _socket_inodes(hub.pid):
                    return n
        await asyncio.sleep(0.1)
    pytest.fail(f"no hub holds the relay's advisory lock after {timeout_s} s")


def _socket_inode(local_port: int) -> set[str]:
    """The inodes of the open TCP sockets bound to ``local_port`` (not those in TIME_WAIT,
    whose inode is 0: an ephemeral port is reused)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == local_port and fields[9] != "0":
                    found.add(fields[9])
    return found


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = str(fd.readlink())
                if link.startswith("socket:["):
                    found.add(link[8:-1])
    return found


# -- the broker, read by the test with its own aiokafka consumer -------------------------------
async def topic_partitions(broker: Any, topic: str) -> list[int]:
    """The partitions of ``topic`` as the broker describes them (none if it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="test-admin")
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"] for t in described if t["error_code"] == 0 for p in t["partitions"]
    )


async def read_topic(broker: Any, topic: str, timeout_s: float = 60.0) -> list[Any]:
    """Every record of ``topic``, all partitions, from the beginning (outside any group).

    A partition is read to its end when the position reached both the high watermark its
    last fetch reported and the end ListOffsets gave at the start. Neither is enough alone
    on Tansu: ListOffsets "latest" is only a lower bound (the last batch's base offset + 1),
    and after a restart a fetch now and then reports an empty partition (high watermark 0)
    that holds records.
    """
    partitions = await topic_partitions(broker, topic)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        client_id=f"test-reader-{uuid.uuid4().hex[:6]}",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=broker.client_options["fetch_max_wait_ms"],
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Any] = []
    tps = [TopicPartition(topic, p) for p in partitions]
    state: dict[int, tuple[Any, ...]] = {}
    try:
        async with asyncio.timeout(timeout_s):
            consumer.assign(tps)
            at_least = await consumer.end_offsets(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batches = await consumer.getmany(*tps, timeout_ms=100, max_records=20_000)
                for messages in batches.values():
                    records.extend(messages)
                for tp in tps:
                    end, position = consumer.highwater(tp), await consumer.position(tp)
                    state[tp.partition] = (at_least[tp], end, position)
                if all(e is not None and p >= max(e, a) for a, e, p in state.values()):
                    return records
    except TimeoutError:
        pytest.fail(
            f"{topic} not read to its end in {timeout_s} s: per partition (ListOffsets end, "
            f"fetch high watermark, position) {state}, {len(records)} records read"
        )
    finally:
        await consumer.stop()


@dataclass
class OnTopic:
    """What a topic holds: per event id how often, and the partition of each key."""

    count: Counter[str]
    partition_of: dict[str, int]
    records: int = 0  # all of them, other runs' included
    ends: dict[int, int] = field(default_factory=dict)  # partition -> records read

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.count.values())


async def events_on(broker: Any, topic: str, run: str, id_of: Any) -> OnTopic:
    """The events of this ``run`` on ``topic``: every run's identifiers carry its token, and a
    shared broker (the session's, or LIANDONG_TEST_KAFKA) holds other runs' events too."""
    count: Counter[str] = Counter()
    partition_of: dict[str, int] = {}
    records = await read_topic(broker, topic)
    for record in records:
        if run.encode() not in record.value:
            continue  # another run's event on a shared broker
        event = orjson.loads(record.value)
        count[id_of(event)] += 1
        partition_of[id_of(event)] = record.partition
    ends = Counter(record.partition for record in records)
    return OnTopic(count, partition_of, len(records), dict(sorted(ends.items())))


def incident_key(event: dict[str, Any]) -> str:
    return str(event["subject"])


def task_id(event: dict[str, Any]) -> str:
    return str(event["data"]["task"]["id"])


# -- consumer group ownership, as each hub logs it ---------------------------------------------
_ASSIGNED = re.compile(r"Setting newly assigned partitions (.*) for group engine$")
_REVOKED = re.compile(r"Revoking previously assigned partitions (.*) for group engine$")
_PARTITION = re.compile(r"topic='" + re.escape(topics.INCIDENTS) + r"', partition=(\d+)")


def owned_partitions(hub: HubProcess) -> set[int]:
    """The incidents partitions ``hub`` owns in group ``engine`` as of its last log line."""
    owned: set[int] = set()
    for line in hub.stderr().splitlines():
        if _ASSIGNED.search(line):
            owned = {int(p) for p in _PARTITION.findall(line)}
        elif _REVOKED.search(line):
            owned = set()
    return owned


async def wait_split(hubs: Sequence[HubProcess], timeout_s: float = 30.0) -> list[set[int]]:
    """Wait until every hub owns some partitions of the incidents topic and together all."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        owned = [owned_partitions(hub) for hub in hubs]
        if all(owned) and set().union(*owned) == set(range(PARTITIONS)):
            return owned
        await asyncio.sleep(0.2)
    pytest.fail(f"the group did not split the partitions in {timeout_s} s: {owned}")


# -- waiting until the hubs are done, and what must then hold ----------------------------------
async def engine_lag(broker: Any) -> int | None:
    """Records of the incidents topic that group ``engine`` has not committed (None: unknown)."""
    options = KafkaOptions(**broker.client_options)
    bus = KafkaBus(broker.bootstrap, client_id=f"test-lag-{uuid.uuid4().hex[:6]}", options=options)
    try:
        async with asyncio.timeout(10):
            return (await bus.lag("engine", [topics.INCIDENTS]))[topics.INCIDENTS]
    except Exception:  # the broker may be restarting: unknown
        return None
    finally:
        await bus.close()


async def wait_settled(
    url: str,
    broker: Any,
    want_tasks: int,
    *,
    committed: bool = True,
    timeout_s: float = SETTLE_TIMEOUT_S,
    context: str = "",
) -> float:
    """Wait until every task is stored and the outbox is all sent, and (``committed``) group
    ``engine`` committed the whole incidents topic; returns the seconds it took."""
    started = time.monotonic()
    state: tuple[Any, ...] = ()
    while time.monotonic() - started < timeout_s:
        ((tasks, unsent),) = await fetch(
            url,
            "SELECT (SELECT COUNT(*) FROM tasks), "
            "(SELECT COUNT(*) FROM outbox WHERE sent_ms IS NULL)",
        )
        lag = None
        if tasks == want_tasks and unsent == 0:
            if not committed:
                return time.monotonic() - started
            lag = await engine_lag(broker)
            if lag == 0:
                return time.monotonic() - started
        state = (tasks, want_tasks, unsent, lag)
        await asyncio.sleep(0.25)
    pytest.fail(
        f"not settled after {timeout_s} s: tasks/wanted/unsent outbox/lag = {state}{context}"
    )


async def check_store(
    url: str,
    sent: dict[str, Template],
    answered: set[str],
    shapes: dict[str, tuple[TaskShape, ...]],
) -> dict[str, Any]:
    """Assert what PostgreSQL must hold; returns counts and the expected task ids."""
    incidents = await fetch(url, "SELECT sender, identifier, thread FROM incidents")
    tasks = await fetch(url, "SELECT id, incident, target FROM tasks")
    outbox = await fetch(url, "SELECT topic, value FROM outbox")

    # Every incident answered 202 is stored, once; nothing else is.
    stored = {identifier for _, identifier, _ in incidents}
    assert not answered - stored, f"answered 202, not stored: {sorted(answered - stored)[:20]}"
    assert len(incidents) == len(stored) == len(sent) and stored == set(sent)

    # Every stored incident has exactly its expected tasks (ids are the primary key: unique).
    actual: dict[str, dict[str, str]] = defaultdict(dict)
    for tid, thread, target in tasks:
        actual[thread][tid] = target
    wrong, want_ids = [], set()
    for sender, identifier, thread in incidents:
        template = sent[identifier]
        assert sender == template.sender and thread == f"{sender},{identifier}"
        want = expected_tasks(shapes[template.name], thread)
        want_ids |= set(want)
        got = actual.pop(thread, {})
        if got != want:
            wrong.append(f"{thread}: want {want}, got {got}")
    assert not wrong, f"{len(wrong)} incidents with wrong tasks, e.g. {wrong[:5]}"
    assert not actual, f"tasks of incidents never stored: {list(actual)[:5]}"

    # The outbox: one incident.reported per incident, one task.issued per task, nothing else.
    by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic, value in outbox:
        by_topic[topic].append(orjson.loads(bytes(value)))
    others = {t: [e["type"] for e in events] for t, events in by_topic.items()}
    others.pop(topics.INCIDENTS, None)
    others.pop(topics.TASKS, None)
    assert not others, f"unexpected events from the hubs: {dict(others)}"
    reported = Counter(incident_key(e) for e in by_topic[topics.INCIDENTS])
    issued = Counter(task_id(e) for e in by_topic[topics.TASKS])
    twice = {k: n for k, n in (reported + issued).items() if n > 1}
    assert not twice, f"emitted more than once: {list(twice.items())[:10]}"
    assert set(reported) == {f"{s},{i}" for s, i, _ in incidents}
    assert set(issued) == want_ids
    return {"incidents": len(incidents), "tasks": len(tasks), "task_ids": want_ids}


async def check_topics(broker: Any, run: str, store: dict[str, Any]) -> dict[str, OnTopic]:
    """Every stored incident and task is on the broker at least once; no dead letter."""
    reported = await events_on(broker, topics.INCIDENTS, run, incident_key)
    issued = await events_on(broker, topics.TASKS, run, task_id)
    dead = await events_on(broker, topics.DEADLETTER, run, lambda e: str(e["id"]))
    assert not dead.count, f"dead letters: {list(dead.count)[:5]}"
    missing = store["task_ids"] - set(issued.count)
    assert not missing, (
        f"{len(missing)} of {len(store['task_ids'])} tasks not on the broker, e.g. "
        f"{sorted(missing)[:3]}; {topics.TASKS} holds {issued.records} records "
        f"(per partition {issued.ends}, {len(issued.count)} tasks of this run)"
    )
    assert len(reported.count) == store["incidents"], (
        f"{store['incidents'] - len(reported.count)} stored incidents not on the broker"
    )
    return {"incidents": reported, "tasks": issued}


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ([A-Z]+) ")


def log_records(text: str) -> list[tuple[str, str]]:
    """A hub's stderr as (level, text) records; a traceback belongs to the record before it."""
    records: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            records.append((match.group(1), line))
        elif records and not line.startswith("--- run "):
            records[-1] = (records[-1][0], f"{records[-1][1]}\n{line}")
    return records


def check_stderr(
    hubs: Sequence[HubProcess], tolerated: re.Pattern[str] | None = None
) -> tuple[Counter[str], Counter[str]]:
    """No traceback and no ERROR record in any hub's stderr but those ``tolerated`` matches;
    returns the WARNING records and the tolerated errors, by kind."""
    warnings: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for hub in hubs:
        for level, text in log_records(hub.stderr()):
            kind = re.sub(r"\d+(\.\d+)?", "N", text.split(f" {level} ", 1)[-1])[:110]
            if level == "WARNING" and "Traceback" not in text:
                warnings[kind] += 1
            elif level in ("ERROR", "CRITICAL") or "Traceback" in text:
                assert tolerated is not None and tolerated.search(text), text[-3000:]
                errors[kind.splitlines()[0]] += 1
    return warnings, errors


def print_log_kinds(title: str, kinds: Counter[str]) -> None:
    print(f"  hub stderr {title}: {sum(kinds.values())}")
    for kind, n in kinds.most_common(6):
        print(f"    {n} x {kind}")


def expected_task_count(sent: dict[str, Template], shapes: dict[str, tuple[TaskShape, ...]]) -> int:
    return sum(len(shapes[t.name]) for t in sent.values())


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[HubProcesses]:
    with HubProcesses(tmp_path) as made:
        yield made


# -- the tests ---------------------------------------------------------------------------------
HA_INCIDENTS = 10_000
HA_KILL_AFTER = 4_000


@pytest.mark.slow
@pytest.mark.timeout(170)
async def test_sigkill_one_of_two_hubs_during_10000_incidents(
    kafka_broker: Any,
    postgres_url: str,
    shapes: dict[str, tuple[TaskShape, ...]],
    hubs: HubProcesses,
) -> None:
    """SIGKILL the hub that relays the outbox (and owns half the partitions) mid-stream.

    Adapters send to both hubs; what was in flight at the dead one is resent to the survivor.
    The survivor must take over the dead one's partitions (after its session expires) and the
    relay (the advisory lock is freed when PostgreSQL sees the connection close).
    """
    began = time.monotonic()
    run = f"ha{uuid.uuid4().hex[:6]}"
    env = production_env(kafka_broker, postgres_url)
    made = add_adapters(hubs.root / "cli", [(s, f"{run}-{s}") for s in SENDERS], env=env)
    tokens = {s: made[f"{run}-{s}"] for s in SENDERS}
    sent, work = make_work(run, HA_INCIDENTS, tokens)
    pair = [hubs.new("hub-a", env), hubs.new("hub-b", env)]
    await start_all(pair)
    split = await wait_split(pair)
    leader = await relay_leader(postgres_url, pair)
    victim, survivor = pair[leader], pair[1 - leader]
    assert victim.port is not None and survivor.port is not None
    stream = Stream([hub.port for hub in pair if hub.port is not None], work)
    kill: dict[str, Any] = {}

    async def kill_victim() -> None:
        await stream.answered_at_least(HA_KILL_AFTER)
        kill["owned"] = owned_partitions(victim)
        kill["answered"] = len(stream.receipts)
        kill["ms"] = time.time_ns() // 1_000_000
        assert victim.port is not None
        stream.dead.add(victim.port)  # from now on the adapters go to the survivor
        victim.kill()

    stream_s = await run_stream(stream, kill_victim(), timeout_s=120.0)

    assert not stream.refused, f"{len(stream.refused)} refused, e.g. {stream.refused[:5]}"
    assert not stream.bad_server_errors, stream.bad_server_errors[:5]
    assert len(stream.receipts) == HA_INCIDENTS
    assert kill["owned"], "the victim owned no partition when it was killed"
    resent = await check_resends(
        stream, stream.failed_over | stream.duplicate_first, list(sent), survivor.port
    )

    want_tasks = expected_task_count(sent, shapes)
    settle_s = await wait_settled(postgres_url, kafka_broker, want_tasks)
    store = await check_store(postgres_url, sent, set(stream.receipts), shapes)
    on_broker = await check_topics(kafka_broker, run, store)

    # The survivor took over: it owns every partition now, and the incidents reported after
    # the kill on the partitions the victim had owned got their tasks (checked above for all
    # incidents; here: there were such incidents, and only the survivor was alive to plan them).
    assert owned_partitions(survivor) == set(range(PARTITIONS))
    partition_of = on_broker["incidents"].partition_of
    taken_over = [
        identifier
        for identifier, at in stream.answered_ms.items()
        if at > kill["ms"]
        and partition_of[f"{sent[identifier].sender},{identifier}"] in kill["owned"]
    ]
    with_tasks = [i for i in taken_over if shapes[sent[i].name]]
    assert with_tasks, "no incident with tasks on the victim's partitions after the kill"
    survivor_leads = await relay_leader(postgres_url, [survivor])
    warnings, _ = check_stderr(pair)

    print(
        f"\nproduction HA: {HA_INCIDENTS} incidents by {WORKERS} workers over 2 hubs in "
        f"{stream_s:.1f} s ({HA_INCIDENTS / stream_s:.0f}/s); "
        f"total {time.monotonic() - began:.1f} s"
    )
    print(
        f"  before the kill: partitions {split[0]} / {split[1]}, relay leader hub-{'ab'[leader]}; "
        f"SIGKILL hub-{'ab'[leader]} (partitions {sorted(kill['owned'])}) at "
        f"{kill['answered']} answered; the survivor relays (leader {survivor_leads == 0})"
    )
    print(
        f"  requests without an answer: {stream.unreachable}; failed over: "
        f"{len(stream.failed_over)}, of which answered as duplicates (committed by the dead hub, "
        f"answer lost): {len(stream.failed_over & stream.duplicate_first)}; 5xx: "
        f"{dict(stream.server_errors)}; resent sample {resent} ok"
    )
    print(
        f"  after the kill on the victim's partitions: {len(taken_over)} incidents "
        f"({len(with_tasks)} with tasks) planned by the survivor; settled {settle_s:.1f} s "
        f"after the stream"
    )
    print(
        f"  stored: {store['incidents']} incidents, {store['tasks']} tasks (each once); on the "
        f"broker: {sum(on_broker['incidents'].count.values())} incident.reported "
        f"({on_broker['incidents'].duplicates} duplicates), "
        f"{sum(on_broker['tasks'].count.values())} task.issued "
        f"({on_broker['tasks'].duplicates} duplicates)"
    )
    print_log_kinds("WARNING records", warnings)


BROKER_INCIDENTS = 3_000
BROKER_KILL_AFTER = 1_000
BROKER_DOWN_S = 3.0  # longer than the session timeout: the group is gone with the log
# The Kafka client's complaints while the broker is down or restarting (connection refused,
# unknown member after the restart...), and the traceback asyncio prints for a commit task of
# aiokafka's whose failure nobody awaited (a commit abandoned at a rebalance).
BROKER_AWAY = re.compile(
    r"^\S+ \S+ ERROR (aiokafka[.:]|asyncio: Task exception was never retrieved\n"
    r"future: <Task finished name='Task-\d+' coro=<GroupCoordinator\.)"
)
_RESENT = re.compile(r"broker lost its log; re-sent (\d+) retained")


@pytest.mark.slow
@pytest.mark.timeout(170)
async def test_broker_sigkill_and_restart_loses_its_log_and_the_outbox_resends(
    tansu_broker: Any,
    postgres_url: str,
    shapes: dict[str, tuple[TaskShape, ...]],
    hubs: HubProcesses,
) -> None:
    """SIGKILL the broker (memory storage) mid-stream, restart it empty on the same port.

    What the hubs can guarantee when the broker lost its log and the group's offsets: the
    intake keeps answering from PostgreSQL alone; nothing acknowledged is lost from the store;
    the relay sees the offsets go backwards and re-sends every retained outbox row, so after
    recovery the broker holds an ``incident.reported`` for every stored incident (those sent
    before the crash included) and a ``task.issued`` for every task; the engine, restarting
    from the earliest offset, reprocesses everything and the store absorbs it.
    """
    began = time.monotonic()
    run = f"bk{uuid.uuid4().hex[:6]}"
    env = production_env(tansu_broker, postgres_url)
    made = add_adapters(
        hubs.root / "cli", [(s, f"{run}-{s}") for s in SENDERS], via_cli=False, env=env
    )
    sent, work = make_work(run, BROKER_INCIDENTS, {s: made[f"{run}-{s}"] for s in SENDERS})
    pair = [hubs.new("hub-a", env), hubs.new("hub-b", env)]
    await start_all(pair)
    await wait_split(pair)
    stream = Stream([hub.port for hub in pair if hub.port is not None], work)
    outage: dict[str, Any] = {}

    async def tasks_stored() -> int:
        return int((await fetch(postgres_url, "SELECT COUNT(*) FROM tasks"))[0][0])

    async def crash_broker() -> None:
        await stream.answered_at_least(BROKER_KILL_AFTER)
        outage["before"] = set(stream.receipts)
        tansu_broker.kill()
        outage["tasks_at_kill"] = await tasks_stored()
        await asyncio.sleep(BROKER_DOWN_S)
        outage["during"] = len(stream.receipts) - len(outage["before"])
        started = time.monotonic()
        # The broker comes back with the hub's topics created before the hubs reach it, as an
        # operator's create-topics script would (the hubs create topics only when they start).
        # The hubs are frozen meanwhile: Tansu 0.6 (memory) mishandles topics that many
        # clients auto-create at once right after its restart (fetches then report them empty
        # while ListOffsets counts their records, and a group's commits fail with
        # UnknownTopicOrPartition for good), which is the broker's fault, not the hubs'.
        with frozen(pair):
            await asyncio.to_thread(tansu_broker.restart)
            await ensure_topics(tansu_broker.bootstrap, topics.ALL_TOPICS)
        outage["restart_s"] = time.monotonic() - started
        outage["tasks_at_restart"] = await tasks_stored()

    stream_s = await run_stream(stream, crash_broker(), timeout_s=120.0)

    assert not stream.refused, f"{len(stream.refused)} refused, e.g. {stream.refused[:5]}"
    assert not stream.bad_server_errors, stream.bad_server_errors[:5]
    assert len(stream.receipts) == BROKER_INCIDENTS
    assert outage["during"] > 0, "the intake stopped answering while the broker was down"

    # The relay: it saw the offsets go backwards and re-sent every retained row.
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not (resent := [int(n) for h in pair for n in _RESENT.findall(h.stderr())]):
        assert time.monotonic() < deadline, "no relay re-sent what the broker lost"
        await asyncio.sleep(0.25)
    while (await fetch(postgres_url, "SELECT COUNT(*) FROM outbox WHERE sent_ms IS NULL"))[0][0]:
        assert time.monotonic() < deadline, "the outbox was not sent after the restart"
        await asyncio.sleep(0.25)
    stored = await fetch(postgres_url, "SELECT sender, identifier FROM incidents")
    answered = set(stream.receipts)
    assert answered <= {i for _, i in stored}, "an incident answered 202 is not stored"
    reported = await events_on(tansu_broker, topics.INCIDENTS, run, incident_key)
    not_on_broker = {f"{s},{i}" for s, i in stored} - set(reported.count)
    assert not not_on_broker, (
        f"{len(not_on_broker)} stored incidents not on the restarted broker, "
        f"{len(not_on_broker & {f'{sent[i].sender},{i}' for i in outage['before']})} of them "
        f"from before the crash, e.g. {sorted(not_on_broker)[:3]}"
    )

    # The engine: the group lost its offsets, so it starts again from the earliest record of
    # the restarted broker's log; the store absorbs what it had done already.
    settle_s = await wait_settled(
        postgres_url,
        tansu_broker,
        expected_task_count(sent, shapes),
        context=f"; tasks at the kill: {outage['tasks_at_kill']}, at the restart: "
        f"{outage['tasks_at_restart']}",
    )
    store = await check_store(postgres_url, sent, answered, shapes)
    on_broker = await check_topics(tansu_broker, run, store)
    warnings, errors = check_stderr(pair, BROKER_AWAY)

    print(
        f"\nbroker crash: {BROKER_INCIDENTS} incidents over 2 hubs in {stream_s:.1f} s; "
        f"total {time.monotonic() - began:.1f} s"
    )
    print(
        f"  SIGKILL the broker at {len(outage['before'])} answered ({outage['tasks_at_kill']} "
        f"tasks stored); {outage['during']} answered 202 in the {BROKER_DOWN_S:.0f} s it was "
        f"down; restarted in {outage['restart_s']:.1f} s ({outage['tasks_at_restart']} tasks)"
    )
    print(
        f"  relay re-sent retained events: {resent}; requests without an answer: "
        f"{stream.unreachable}; 5xx: {dict(stream.server_errors)} {dict(stream.unavailable)}; "
        f"settled {settle_s:.1f} s after the stream (group engine committed everything)"
    )
    print(
        f"  stored: {store['incidents']} incidents, {store['tasks']} tasks (each once); on the "
        f"restarted broker: {sum(on_broker['incidents'].count.values())} incident.reported "
        f"({on_broker['incidents'].duplicates} duplicates), "
        f"{sum(on_broker['tasks'].count.values())} task.issued "
        f"({on_broker['tasks'].duplicates} duplicates)"
    )
    print_log_kinds("WARNING records", warnings)
    print_log_kinds("ERROR records of the Kafka client (the broker was away)", errors)


# -- commits whose outcome is unknown ----------------------------------------------------------
class PrivatePostgres(_PrivateCluster):
    """A throw-away PostgreSQL cluster (``tests.brokers.postgres``) that can also crash."""

    url = ""

    def start(self) -> str:
        self.url = super().start()
        return self.url

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every backend quits at once, no checkpoint (a crash:
        the next start runs recovery)."""
        self._as_postgres(self.bin / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "stop")

    def start_again(self) -> None:
        self._as_postgres(
            self.bin / "pg_ctl",
            "-D",
            self.dir / "data",
            "-l",
            self.dir / "log",
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "start",
        )


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own: the tests change server-wide settings
    (``ALTER SYSTEM``) and crash the server, which must not touch the machine's shared one."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (scripts/test does)")
    cluster = PrivatePostgres(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def private_database(private_postgres: PrivatePostgres) -> Iterator[str]:
    name = f"liandong_unknown_{uuid.uuid4().hex[:8]}"
    admin = private_postgres.url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        if not _accepting(private_postgres.port):
            private_postgres.start_again()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _accepting(port: int) -> bool:
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@dataclass
class Squeeze:
    """What the fault injector did, round by round."""

    rounds: int = 0
    committed_unacknowledged: int = 0  # terminated while waiting for the standby: committed
    terminated_in_transaction: int = 0  # terminated mid-transaction: rolled back
    terminated_idle: int = 0  # idle pool connections and the relay's lock connection
    waits: list[str] = field(default_factory=list)


UNKNOWN_INCIDENTS = 3_000
UNKNOWN_START_AFTER = 300
UNKNOWN_ROUNDS = 6
NO_STANDBY = "liandong_absent_standby"


async def squeeze_commits(stream: Stream, admin_url: str, database: str, out: Squeeze) -> None:
    """Make commits' outcomes unknown to the hubs, for real, ``UNKNOWN_ROUNDS`` times.

    Each round: name a synchronous standby that does not exist, so every COMMIT is written
    and flushed locally, then waits for the standby's confirmation (wait event ``SyncRep``);
    terminate every connection of the hubs' database: a COMMIT waiting in SyncRep has
    committed but its client gets a dropped connection instead of an answer (PostgreSQL warns
    "the transaction has already committed locally"); a transaction caught before its COMMIT
    is rolled back; idle pool connections and the relay's advisory-lock connection die too.
    Then clear the setting (waiters still left are released, committed) and let the stream run.
    """
    async with pg(admin_url) as admin:
        await stream.answered_at_least(UNKNOWN_START_AFTER)
        for _ in range(UNKNOWN_ROUNDS):
            await admin.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{NO_STANDBY}'")
            await admin.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                cur = await admin.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event = 'SyncRep'",
                    (database,),
                )
                if (await cur.fetchone() or (0,))[0] >= 4:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # let more commits pile up behind the absent standby
            cur = await admin.execute(
                "SELECT pid, wait_event, state FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()",
                (database,),
            )
            sessions = await cur.fetchall()
            for pid, wait_event, state in sessions:
                await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                if wait_event == "SyncRep":
                    out.committed_unacknowledged += 1
                elif state in ("idle in transaction", "active"):
                    out.terminated_in_transaction += 1
                else:
                    out.terminated_idle += 1
            out.waits.append(f"{sum(1 for s in sessions if s[1] == 'SyncRep')}/{len(sessions)}")
            await admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            await admin.execute("SELECT pg_reload_conf()")
            out.rounds += 1
            await asyncio.sleep(0.6)


@pytest.mark.slow
@pytest.mark.timeout(170)
async def test_commits_with_unknown_outcome_are_reconciled_by_id(
    kafka_broker: Any,
    private_postgres: PrivatePostgres,
    private_database: str,
    shapes: dict[str, tuple[TaskShape, ...]],
    hubs: HubProcesses,
) -> None:
    """Commits that happened but whose answer was lost, and commits that failed, mid-stream.

    See ``squeeze_commits`` for how. The hubs cannot know whether such a commit happened; they
    must retry (answering 503 at worst, never 500) and reconcile by id: a retried intake finds
    the incident its lost commit stored and answers with the same receipt, as a duplicate; a
    retried engine batch finds its task ids and emits nothing twice; a retried "mark sent"
    marks again; the relay leader whose lock connection died gives the lock up and one of the
    hubs relays again. Then the common checks: nothing answered lost, nothing stored or
    emitted twice, every task issued and published.
    """
    began = time.monotonic()
    run = f"uk{uuid.uuid4().hex[:6]}"
    database = private_database.rsplit("/", 1)[1]
    env = production_env(kafka_broker, private_database)
    made = add_adapters(
        hubs.root / "cli", [(s, f"{run}-{s}") for s in SENDERS], via_cli=False, env=env
    )
    sent, work = make_work(run, UNKNOWN_INCIDENTS, {s: made[f"{run}-{s}"] for s in SENDERS})
    pair = [hubs.new("hub-a", env), hubs.new("hub-b", env)]
    await start_all(pair)
    await wait_split(pair)
    stream = Stream([hub.port for hub in pair if hub.port is not None], work)
    squeeze = Squeeze()

    stream_s = await run_stream(
        stream, squeeze_commits(stream, private_postgres.url, database, squeeze), timeout_s=120.0
    )

    assert squeeze.rounds == UNKNOWN_ROUNDS
    assert squeeze.committed_unacknowledged > 0, "no commit was caught waiting: nothing forced"
    assert not stream.bad_server_errors, (
        f"{len(stream.bad_server_errors)} answers other than 202/503 while commits failed, "
        f"e.g. {stream.bad_server_errors[:3]}"
    )
    assert not stream.refused, f"{len(stream.refused)} refused, e.g. {stream.refused[:5]}"
    assert len(stream.receipts) == UNKNOWN_INCIDENTS
    resent = await check_resends(
        stream, stream.duplicate_first | stream.retried, list(sent), stream.ports[0]
    )
    settle_s = await wait_settled(private_database, kafka_broker, expected_task_count(sent, shapes))
    store = await check_store(private_database, sent, set(stream.receipts), shapes)
    on_broker = await check_topics(kafka_broker, run, store)
    warnings, _ = check_stderr(pair)

    print(
        f"\nunknown outcomes: {UNKNOWN_INCIDENTS} incidents over 2 hubs in {stream_s:.1f} s; "
        f"total {time.monotonic() - began:.1f} s"
    )
    print(
        f"  {squeeze.rounds} rounds (SyncRep waiters/sessions: {', '.join(squeeze.waits)}): "
        f"{squeeze.committed_unacknowledged} commits made but unacknowledged, "
        f"{squeeze.terminated_in_transaction} transactions cut before COMMIT, "
        f"{squeeze.terminated_idle} idle connections terminated"
    )
    print(
        f"  first answer '202 duplicate' (the hub's retry found its own lost commit): "
        f"{len(stream.duplicate_first)}; incidents that needed a resend: {len(stream.retried)}; "
        f"5xx: {dict(stream.server_errors)} {dict(stream.unavailable)}; "
        f"resent sample {resent} ok; settled {settle_s:.1f} s after the stream"
    )
    print(
        f"  stored: {store['incidents']} incidents, {store['tasks']} tasks (each once); on the "
        f"broker: {sum(on_broker['incidents'].count.values())} incident.reported "
        f"({on_broker['incidents'].duplicates} duplicates), "
        f"{sum(on_broker['tasks'].count.values())} task.issued "
        f"({on_broker['tasks'].duplicates} duplicates)"
    )
    print_log_kinds("WARNING records", warnings)


DB_CRASH_INCIDENTS = 2_000
DB_CRASH_AFTER = 500
DB_DOWN_S = 2.0


@pytest.mark.slow
@pytest.mark.timeout(170)
async def test_database_crash_mid_stream_is_ridden_out(
    kafka_broker: Any,
    private_postgres: PrivatePostgres,
    private_database: str,
    shapes: dict[str, tuple[TaskShape, ...]],
    hubs: HubProcesses,
) -> None:
    """Crash PostgreSQL (immediate shutdown: no checkpoint, recovery at the next start) while
    incidents stream in, and start it again after ``DB_DOWN_S``.

    Every transaction in flight has an unknown outcome to the hubs (a COMMIT whose WAL was
    flushed survives the crash; its answer never came). While the database is down, the hubs
    must answer 503 (a dependency is away; the adapter retries), never 500; the engine must
    wait for the database, never dead-letter a valid incident; afterwards everything is
    reconciled by id as in the other tests.
    """
    began = time.monotonic()
    run = f"db{uuid.uuid4().hex[:6]}"
    env = production_env(kafka_broker, private_database)
    made = add_adapters(
        hubs.root / "cli", [(s, f"{run}-{s}") for s in SENDERS], via_cli=False, env=env
    )
    sent, work = make_work(run, DB_CRASH_INCIDENTS, {s: made[f"{run}-{s}"] for s in SENDERS})
    pair = [hubs.new("hub-a", env), hubs.new("hub-b", env)]
    await start_all(pair)
    await wait_split(pair)
    stream = Stream([hub.port for hub in pair if hub.port is not None], work)
    crash: dict[str, Any] = {}

    async def crash_database() -> None:
        await stream.answered_at_least(DB_CRASH_AFTER)
        crash["answered"] = len(stream.receipts)
        await asyncio.to_thread(private_postgres.crash)
        await asyncio.sleep(DB_DOWN_S)
        crash["during"] = dict(stream.server_errors)
        await asyncio.to_thread(private_postgres.start_again)

    stream_s = await run_stream(stream, crash_database(), timeout_s=120.0)

    assert not stream.refused, f"{len(stream.refused)} refused, e.g. {stream.refused[:5]}"
    assert not stream.bad_server_errors, (
        f"{len(stream.bad_server_errors)} answers other than 202/503 while the database was "
        f"down, e.g. {stream.bad_server_errors[:2]}"
    )
    assert len(stream.receipts) == DB_CRASH_INCIDENTS
    await check_resends(
        stream, stream.duplicate_first | stream.retried, list(sent), stream.ports[0]
    )
    settle_s = await wait_settled(private_database, kafka_broker, expected_task_count(sent, shapes))
    store = await check_store(private_database, sent, set(stream.receipts), shapes)
    on_broker = await check_topics(kafka_broker, run, store)
    warnings, _ = check_stderr(pair)

    print(
        f"\ndatabase crash: {DB_CRASH_INCIDENTS} incidents over 2 hubs in {stream_s:.1f} s; "
        f"total {time.monotonic() - began:.1f} s"
    )
    print(
        f"  crashed PostgreSQL at {crash['answered']} answered, down {DB_DOWN_S:.0f} s; "
        f"first answer '202 duplicate': {len(stream.duplicate_first)}; incidents that needed a "
        f"resend: {len(stream.retried)}; 5xx: {dict(stream.server_errors)} "
        f"{dict(stream.unavailable)}; settled {settle_s:.1f} s after the stream"
    )
    print(
        f"  stored: {store['incidents']} incidents, {store['tasks']} tasks (each once); on the "
        f"broker: {sum(on_broker['incidents'].count.values())} incident.reported "
        f"({on_broker['incidents'].duplicates} duplicates), "
        f"{sum(on_broker['tasks'].count.values())} task.issued "
        f"({on_broker['tasks'].duplicates} duplicates)"
    )
    print_log_kinds("WARNING records", warnings)
