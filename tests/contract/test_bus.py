"""The ``Bus`` contract: every backend must pass these (the embedded log and Kafka).

Each backend is given by a harness that can open the bus and reopen it on the same storage, so
the suite can check durability and resumption, not only the happy path. The harness also names
the test's topics and groups: the Kafka broker is shared by the whole session, so each test gets
the real topic names with its own suffix (``liandong.incidents.v1.t1a2b3c4``; exercise topics
keep their ``exercise.`` prefix) and its own group ids.

Offsets are the backend's: one increasing sequence on the embedded log, per partition on Kafka.
So the suite compares values and their order per key, and offsets only through the neutral
rules: ``read(topic, 0, n)`` starts at the beginning, ``committed <= end``, ``committed >= end``
means caught up, ``lag`` counts records not yet committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from hub.bus import topics
from hub.bus.consumer import ConsumerLoop, RetryPolicy
from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus, KafkaOptions, ensure_topics
from hub.bus.kafka_consumer import KafkaConsumer
from hub.bus.port import Bus, Consumer, Outgoing, Record
from hub.clock import SystemClock
from hub.errors import Conflict, InvalidInput, Unavailable
from hub.model.envelope import Lane
from hub.model.events import EventDeadLettered, decode
from hub.store.db import Database


class Harness(Protocol):
    async def open(self) -> Bus: ...
    async def reopen(self) -> Bus: ...
    async def close(self) -> None: ...
    def topic(self, name: str) -> str: ...
    def group(self, name: str) -> str: ...
    async def joined(self, consumer: Consumer) -> None: ...


class EmbeddedHarness:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db: Database | None = None
        self.bus: EmbeddedBus | None = None

    async def open(self) -> Bus:
        self.db = Database(self.path, "NORMAL")
        self.db.open()
        self.bus = EmbeddedBus(self.db, SystemClock())
        return self.bus

    async def reopen(self) -> Bus:
        await self.close()
        return await self.open()

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()
        if self.db is not None:
            self.db.close()
        self.bus = self.db = None

    def topic(self, name: str) -> str:
        return name

    def group(self, name: str) -> str:
        return name

    async def joined(self, consumer: Consumer) -> None:
        return None  # the only member: it owns everything at once


class KafkaHarness:
    """A ``KafkaBus`` on the session broker; reopen = new clients, same broker (same log)."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.suffix = "t" + uuid.uuid4().hex[:8]
        self.bus: KafkaBus | None = None
        self._created = False

    async def open(self) -> Bus:
        if not self._created:
            names = [self.topic(t) for t in topics.ALL_TOPICS]
            deadletters = [topics.for_lane(topics.DEADLETTER, lane) for lane in Lane]
            await ensure_topics(self.broker.bootstrap, names + deadletters, 4)
            self._created = True
        self.bus = KafkaBus(
            self.broker.bootstrap,
            client_id=f"contract-{self.suffix}",
            options=KafkaOptions(**self.broker.client_options),
        )
        return self.bus

    async def reopen(self) -> Bus:
        await self.close()
        return await self.open()

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()
        self.bus = None

    def topic(self, name: str) -> str:
        return f"{name}.{self.suffix}"

    def group(self, name: str) -> str:
        return f"{name}.{self.suffix}"

    async def joined(self, consumer: Consumer) -> None:
        assert isinstance(consumer, KafkaConsumer)
        await consumer.wait_assigned(30.0)


@pytest.fixture(params=["embedded", "kafka"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    h: Harness
    if request.param == "embedded":
        h = EmbeddedHarness(tmp_path / "bus.db")
    else:
        h = KafkaHarness(request.getfixturevalue("kafka_broker"))
    try:
        yield h
    finally:
        await h.close()


def _msgs(n: int, topic: str, key: str = "k", start: int = 0) -> list[Outgoing]:
    return [Outgoing(topic, key, f"m{i}".encode()) for i in range(start, start + n)]


def _values(records: Sequence[Record]) -> list[bytes]:
    return [r.value for r in records]


async def _poll_n(consumer: Consumer, n: int, timeout_s: float = 10.0) -> list[Record]:
    """Poll until ``n`` records came (a poll may return fewer than are waiting)."""
    got: list[Record] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(got) < n and loop.time() < deadline:
        got.extend(await consumer.poll(n - len(got), 0.5))
    return got


async def _drain(
    h: Harness, bus: Bus, group: str, topics_: Sequence[str], want: int
) -> list[Record]:
    """Everything a fresh member of ``group`` is given: ``want`` records, or none at all."""
    consumer = bus.consumer(group, topics_)
    await h.joined(consumer)
    got: list[Record] = []
    for _ in range(50 if want else 5):  # nothing expected: half a second shows nothing comes
        got.extend(await consumer.poll(100, 0.1))
        if len(got) >= want > 0:
            break
    await consumer.close()
    return got


async def _deadletters(h: Harness, bus: Bus, group: str) -> list[EventDeadLettered]:
    """The dead letters written by ``group`` (the dead-letter topic is shared on Kafka)."""
    records = await bus.read(topics.DEADLETTER, 0, 100_000)
    letters = [decode(r.value).payload_as(EventDeadLettered) for r in records]
    mine = [d for d in letters if d.group == group]
    if isinstance(h, EmbeddedHarness):
        assert mine == letters  # nothing else writes there
    return mine


async def test_publish_then_read_in_order(harness: Harness) -> None:
    t = harness.topic(topics.INCIDENTS)
    bus = await harness.open()
    records = await bus.publish(_msgs(5, t))
    assert _values(records) == [f"m{i}".encode() for i in range(5)]
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    assert len({r.partition for r in records}) == 1  # one key, one partition
    read = await bus.read(t, 0, 100)
    assert _values(read) == _values(records)
    assert [(r.partition, r.offset) for r in read] == [(r.partition, r.offset) for r in records]
    assert all(r.key == "k" and r.timestamp_ms > 0 for r in read)
    assert _values(await bus.read(t, 0, 2)) == [b"m0", b"m1"]  # limit


async def test_each_key_keeps_its_order_and_partition(harness: Harness) -> None:
    t = harness.topic(topics.TASKS)
    bus = await harness.open()
    keys = [f"31011{i}" for i in range(8)]  # target jurisdictions
    messages = [Outgoing(t, keys[i % 8], f"{keys[i % 8]}:{i // 8}".encode()) for i in range(64)]
    published = await bus.publish(messages)
    partition_of: dict[str | None, int] = {}
    for r in published:
        assert partition_of.setdefault(r.key, r.partition) == r.partition

    def per_key(records: Sequence[Record]) -> dict[str | None, list[bytes]]:
        out: dict[str | None, list[bytes]] = {}
        for r in records:
            out.setdefault(r.key, []).append(r.value)
        return out

    expected = {k: [f"{k}:{n}".encode() for n in range(8)] for k in keys}
    assert per_key(published) == expected
    assert per_key(await bus.read(t, 0, 1000)) == expected
    delivered = await _drain(harness, bus, harness.group("g"), [t], 64)
    assert per_key(delivered) == expected
    assert {(r.partition, r.offset) for r in delivered} == {
        (r.partition, r.offset) for r in published
    }


async def test_group_resumes_after_its_last_commit(harness: Harness) -> None:
    t, g = harness.topic(topics.INCIDENTS), harness.group("g")
    bus = await harness.open()
    await bus.publish(_msgs(10, t))
    consumer = bus.consumer(g, [t])
    await harness.joined(consumer)
    first = await _poll_n(consumer, 4)
    assert _values(first) == [b"m0", b"m1", b"m2", b"m3"]
    await consumer.commit(first)
    second = await _poll_n(consumer, 3)  # delivered, never committed
    assert _values(second) == [b"m4", b"m5", b"m6"]
    await consumer.close()
    bus = await harness.reopen()
    again = await _drain(harness, bus, g, [t], 6)
    assert _values(again) == [f"m{i}".encode() for i in range(4, 10)]


async def test_rewind_redelivers_what_was_not_committed(harness: Harness) -> None:
    t, g = harness.topic(topics.INCIDENTS), harness.group("g")
    bus = await harness.open()
    await bus.publish(_msgs(3, t))
    consumer = bus.consumer(g, [t])
    await harness.joined(consumer)
    assert len(await _poll_n(consumer, 3)) == 3
    await consumer.rewind()
    assert _values(await _poll_n(consumer, 3)) == [b"m0", b"m1", b"m2"]
    await consumer.commit([])  # committing nothing is allowed and changes nothing
    assert await consumer.poll(10, 0.2) == []
    await consumer.close()


async def test_groups_are_independent(harness: Harness) -> None:
    t = harness.topic(topics.INCIDENTS)
    bus = await harness.open()
    await bus.publish(_msgs(3, t))
    a, b = await asyncio.gather(
        _drain(harness, bus, harness.group("a"), [t], 3),
        _drain(harness, bus, harness.group("b"), [t], 3),
    )
    assert _values(a) == _values(b) == [b"m0", b"m1", b"m2"]


async def test_poll_wakes_on_publish(harness: Harness) -> None:
    t = harness.topic(topics.INCIDENTS)
    bus = await harness.open()
    consumer = bus.consumer(harness.group("g"), [t])
    await harness.joined(consumer)
    waiting = asyncio.create_task(consumer.poll(10, 5.0))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bus.publish(_msgs(1, t))
    got = await waiting
    assert _values(got) == [b"m0"]
    assert loop.time() - started < 1.0  # woken by the publish, not by the 5 s timeout
    await consumer.close()


async def test_data_survives_reopen_and_offsets_and_end(harness: Harness) -> None:
    t, tasks, g = harness.topic(topics.INCIDENTS), harness.topic(topics.TASKS), harness.group("g")
    bus = await harness.open()
    await bus.publish(_msgs(4, t) + _msgs(2, tasks))
    consumer = bus.consumer(g, [t])
    await harness.joined(consumer)
    await consumer.commit(await _poll_n(consumer, 2))
    await consumer.close()
    bus = await harness.reopen()
    ends = await bus.end_offsets([t, tasks])
    assert ends[t] > 0 and ends[tasks] > 0
    committed = await bus.committed(g, [t, tasks])
    assert committed[tasks] == 0
    assert 0 < committed[t] < ends[t]
    assert await bus.lag(g, [t, tasks]) == {t: 2, tasks: 2}
    assert _values(await bus.read(t, 0, 100)) == [b"m0", b"m1", b"m2", b"m3"]


async def test_exercise_traffic_has_its_own_topics(harness: Harness) -> None:
    exercise_name = topics.for_lane(topics.INCIDENTS, Lane.EXERCISE)
    assert exercise_name == "exercise.liandong.incidents.v1"
    t, exercise = harness.topic(topics.INCIDENTS), harness.topic(exercise_name)
    assert topics.lane_of(exercise) is Lane.EXERCISE and topics.lane_of(t) is Lane.ACTUAL
    bus = await harness.open()
    await bus.publish(_msgs(2, exercise))
    assert await bus.read(t, 0, 10) == []
    assert len(await bus.read(exercise, 0, 10)) == 2


async def test_poison_goes_to_deadletter_and_the_rest_flows(harness: Harness) -> None:
    t, g = harness.topic(topics.INCIDENTS), harness.group("g")
    bus = await harness.open()
    await bus.publish(_msgs(5, t))
    handled: list[bytes] = []

    async def handler(records: Sequence[Record]) -> None:
        if any(r.value == b"m2" for r in records):
            raise InvalidInput("m2 is malformed")
        handled.extend(r.value for r in records)

    consumer = bus.consumer(g, [t])
    await harness.joined(consumer)
    loop = ConsumerLoop(bus, consumer, g, handler, SystemClock(), poll_timeout_s=0.05)
    running = asyncio.create_task(loop.run())
    for _ in range(250):
        if len(handled) == 4 and loop.deadlettered == 1:
            break
        await asyncio.sleep(0.02)
    loop.stop()
    await running
    assert handled == [b"m0", b"m1", b"m3", b"m4"]
    (dead,) = await _deadletters(harness, bus, g)
    assert dead.payload == "m2"
    assert "m2 is malformed" in dead.reason
    assert dead.topic == t and dead.group == g
    bus = await harness.reopen()
    assert await bus.lag(g, [t]) == {t: 0}  # all five committed, the poison included
    assert (await bus.committed(g, [t]))[t] >= (await bus.end_offsets([t]))[t]
    assert await _drain(harness, bus, g, [t], 0) == []


async def test_retryable_errors_are_retried_not_deadlettered(harness: Harness) -> None:
    t, g = harness.topic(topics.INCIDENTS), harness.group("g")
    bus = await harness.open()
    await bus.publish(_msgs(1, t))
    attempts = 0

    async def handler(records: Sequence[Record]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise Unavailable("database busy")

    consumer = bus.consumer(g, [t])
    await harness.joined(consumer)
    retry = RetryPolicy(attempts=5, first_backoff_s=0.001)
    loop = ConsumerLoop(bus, consumer, g, handler, SystemClock(), poll_timeout_s=0.05, retry=retry)
    running = asyncio.create_task(loop.run())
    for _ in range(250):
        if attempts >= 3:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    loop.stop()
    await running
    assert attempts == 3
    assert await _deadletters(harness, bus, g) == []
    assert await bus.lag(g, [t]) == {t: 0}


async def test_a_long_outage_waits_and_never_deadletters(harness: Harness) -> None:
    """A dependency away for longer than the retry budget: the record is not at fault, so it
    is delivered again after the outage, never dead-lettered, and the next ones follow."""
    t, g = harness.topic(topics.INCIDENTS), harness.group("g")
    bus = await harness.open()
    await bus.publish(_msgs(3, t))
    calls = 0
    handled: list[bytes] = []

    async def handler(records: Sequence[Record]) -> None:
        nonlocal calls
        calls += 1
        if calls <= 7:  # more than the two attempts of the policy, several times over
            raise Unavailable("database unreachable")
        handled.extend(r.value for r in records)

    consumer = bus.consumer(g, [t])
    await harness.joined(consumer)
    retry = RetryPolicy(attempts=2, first_backoff_s=0.001, max_backoff_s=0.01)
    loop = ConsumerLoop(bus, consumer, g, handler, SystemClock(), poll_timeout_s=0.05, retry=retry)
    running = asyncio.create_task(loop.run())
    for _ in range(500):
        if len(set(handled)) == 3:
            break
        await asyncio.sleep(0.02)
    loop.stop()
    await running
    assert calls > 7
    assert sorted(set(handled)) == [b"m0", b"m1", b"m2"]
    assert loop.deadlettered == 0
    assert await _deadletters(harness, bus, g) == []
    assert await bus.lag(g, [t]) == {t: 0}


# -- the embedded log only ----------------------------------------------------------------------


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[EmbeddedHarness]:
    h = EmbeddedHarness(tmp_path / "bus.db")
    try:
        yield h
    finally:
        await h.close()


async def test_embedded_one_member_per_group_in_one_process(embedded: EmbeddedHarness) -> None:
    bus = await embedded.open()
    consumer = bus.consumer("g", [topics.INCIDENTS])
    with pytest.raises(Conflict, match="already has a member"):
        bus.consumer("g", [topics.INCIDENTS])
    await consumer.close()
    bus.consumer("g", [topics.INCIDENTS])  # free again once closed


async def test_embedded_offsets_are_one_sequence_across_topics(embedded: EmbeddedHarness) -> None:
    bus = await embedded.open()
    await bus.publish(_msgs(4, topics.INCIDENTS) + _msgs(2, topics.TASKS))
    ends = await bus.end_offsets([topics.INCIDENTS, topics.TASKS])
    assert ends[topics.INCIDENTS] > 0 and ends[topics.TASKS] > ends[topics.INCIDENTS]
