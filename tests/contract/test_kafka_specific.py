"""What only the Kafka bus has: several members per group, rebalances, partitions, topic creation,
a broker that goes away. Runs on the session broker (Tansu, or ``LIANDONG_TEST_KAFKA``) except
the crash test, which gets a broker of its own.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import CommitFailedError

from hub.bus.consumer import ConsumerLoop
from hub.bus.kafka import KafkaBus, KafkaOptions, ensure_topics
from hub.bus.kafka_consumer import KafkaConsumer
from hub.bus.port import Outgoing, Record
from hub.clock import SystemClock
from hub.errors import Unavailable
from tests.brokers.kafka import TansuBroker


def _name(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


def _bus(broker: Any, **overrides: int) -> KafkaBus:
    options = KafkaOptions(**{**broker.client_options, **overrides})
    return KafkaBus(broker.bootstrap, client_id=_name("kafka-test"), options=options)


@pytest.fixture
async def topic(kafka_broker: Any) -> str:
    name = _name("liandong.incidents.v1")
    await ensure_topics(kafka_broker.bootstrap, [name], 4)
    return name


@pytest.fixture
async def buses(kafka_broker: Any) -> AsyncIterator[list[KafkaBus]]:
    """Two hub instances' buses on the same broker."""
    pair = [_bus(kafka_broker), _bus(kafka_broker)]
    try:
        yield pair
    finally:
        for bus in pair:
            await bus.close()


def _spread(topic: str, n: int) -> list[Outgoing]:
    """``n`` messages over 16 keys (which hash to all 4 partitions)."""
    return [Outgoing(topic, f"k{i % 16}", f"v{i}".encode()) for i in range(n)]


async def _poll_n(consumer: KafkaConsumer, n: int, timeout_s: float = 10.0) -> list[Record]:
    got: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        got.extend(await consumer.poll(n - len(got), 0.2))
    return got


async def test_ensure_topics_creates_once_and_reports_partitions(kafka_broker: Any) -> None:
    a, b = _name("liandong.tasks.v1"), _name("liandong.resources.v1")
    assert await ensure_topics(kafka_broker.bootstrap, [a], 4) == {a: 4}
    # again, with another one and another count: the existing topic is left as it is
    assert await ensure_topics(kafka_broker.bootstrap, [a, b, a], 2) == {a: 4, b: 2}


async def test_offsets_are_per_partition_and_ends_are_true(
    kafka_broker: Any, topic: str, buses: list[KafkaBus]
) -> None:
    bus = buses[0]
    published = await bus.publish([Outgoing(topic, "one-key", f"m{i}".encode()) for i in range(10)])
    (partition,) = {r.partition for r in published}
    assert [r.offset for r in published] == list(range(10))
    more = await bus.publish(_spread(topic, 32))
    # One batch of ten on one partition: Tansu's ListOffsets would say 1 here, not 10.
    ends = await bus.partition_ends([topic])
    expected = {p: 0 for p in range(4)}
    for r in published + more:
        expected[r.partition] = max(expected[r.partition], r.offset + 1)
    assert ends == {topic: expected}
    assert (await bus.end_offsets([topic]))[topic] == 42
    # read: offsets >= after, in every partition, in (partition, offset) order
    read = await bus.read(topic, 3, 1000)
    assert [(r.partition, r.offset) for r in read] == sorted(
        (r.partition, r.offset) for r in published + more if r.offset >= 3
    )
    assert await bus.read(topic, 10_000, 10) == []  # beyond the end: nothing, no error
    # paging with one position per partition
    page1 = await bus.read_from(topic, {partition: 0}, 4)
    page2 = await bus.read_from(topic, {partition: page1[-1].offset + 1}, 100)
    assert [r.offset for r in page1 + page2 if r.key == "one-key"] == list(range(10))
    # a topic that does not exist reads empty and is not created by reading
    missing = _name("liandong.missing.v1")
    assert await bus.read(missing, 0, 10) == []
    assert await bus.end_offsets([missing]) == {missing: 0}
    assert await bus.partitions([missing]) == {}


async def test_rebalance_commits_finished_work_and_drops_the_rest(
    topic: str, buses: list[KafkaBus]
) -> None:
    group = _name("engine")
    bus_a, bus_b = buses
    published = await bus_a.publish(_spread(topic, 40))
    assert {r.partition for r in published} == {0, 1, 2, 3}
    a = bus_a.consumer(group, [topic])
    assert len(await a.wait_assigned(30.0)) == 4
    polled = await _poll_n(a, 40)
    assert len(polled) == 40
    done = [r for r in polled if r.offset < 2]  # finished and committed: 2 per partition
    await a.commit(done)
    # Partition 0's next two are finished too, but the commit is refused (the group started
    # rebalancing): the revocation must commit them.
    p0_done = [r for r in polled if r.partition == 0 and 2 <= r.offset < 4]
    real_commit = a._consumer.commit

    async def refuse(offsets: Any) -> None:
        raise CommitFailedError("the group is rebalancing")

    a._consumer.commit = refuse
    await a.commit(p0_done)  # refused: kept for the revocation, not raised
    a._consumer.commit = real_commit
    in_flight = [r for r in polled if r.offset >= 2 and r not in p0_done]

    b = bus_b.consumer(group, [topic])
    b_parts = await b.wait_assigned(30.0)
    for _ in range(100):  # A rejoins in the background
        if a.rebalances and a.assignment and not (a.assignment & b_parts):
            break
        await asyncio.sleep(0.05)
    assert a.rebalances >= 1
    assert len(a.assignment) + len(b.assignment) == 4 and not (a.assignment & b.assignment)
    committed = (await bus_a.partition_committed(group, [topic]))[topic]
    assert committed == {0: 4, 1: 2, 2: 2, 3: 2}  # the revocation committed partition 0's two

    await a.commit(in_flight)  # polled before the rebalance: dropped, never raised
    assert (await bus_a.partition_committed(group, [topic]))[topic] == committed

    # Each member now gets its partitions from the committed offsets: nothing lost.
    remaining = [r for r in published if r.offset >= committed[r.partition]]
    owner = {tp.partition: "a" for tp in a.assignment} | {tp.partition: "b" for tp in b.assignment}
    want_a = sorted(r.value for r in remaining if owner[r.partition] == "a")
    want_b = sorted(r.value for r in remaining if owner[r.partition] == "b")
    got_a, got_b = await asyncio.gather(_poll_n(a, len(want_a)), _poll_n(b, len(want_b)))
    assert sorted(r.value for r in got_a) == want_a
    assert sorted(r.value for r in got_b) == want_b
    await a.commit(got_a)
    await b.commit(got_b)
    assert await bus_a.lag(group, [topic]) == {topic: 0}
    await a.close()
    await b.close()


async def test_two_instances_share_a_group(topic: str, buses: list[KafkaBus]) -> None:
    group = _name("engine")
    handled: dict[str, list[Record]] = {"a": [], "b": []}
    loops: list[ConsumerLoop] = []
    consumers: list[KafkaConsumer] = []
    for name, bus in zip("ab", buses, strict=True):

        async def handler(records: Sequence[Record], name: str = name) -> None:
            handled[name].extend(records)

        consumer = bus.consumer(group, [topic])
        consumers.append(consumer)
        loops.append(ConsumerLoop(bus, consumer, group, handler, SystemClock(), poll_timeout_s=0.1))
    running = [asyncio.create_task(loop.run()) for loop in loops]
    for _ in range(300):  # both members in, partitions split between them
        a, b = (c.assignment for c in consumers)
        if a and b and len(a | b) == 4 and not (a & b):
            break
        await asyncio.sleep(0.05)
    published = await buses[0].publish(_spread(topic, 200))
    for _ in range(300):
        if len({r.value for rs in handled.values() for r in rs}) == 200:
            break
        await asyncio.sleep(0.02)
    for loop in loops:
        loop.stop()
    await asyncio.gather(*running)
    assert {r.value for rs in handled.values() for r in rs} == {r.value for r in published}
    assert handled["a"] and handled["b"]  # both instances did work
    for key in {r.key for r in published}:  # each key's records handled in publish order
        sequence = [r.value for rs in handled.values() for r in rs if r.key == key]
        assert sequence == [r.value for r in published if r.key == key]
    assert await buses[0].lag(group, [topic]) == {topic: 0}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return stat.split()[2] != "Z"


async def test_broker_crash_fails_publish_in_bounded_time_then_recovers(
    tansu_broker: TansuBroker,
) -> None:
    topic = _name("liandong.incidents.v1")
    await ensure_topics(tansu_broker.bootstrap, [topic], 4)
    bus = _bus(tansu_broker, request_timeout_ms=2_000)
    try:
        assert len(await bus.publish(_spread(topic, 4))) == 4
        pid = tansu_broker.pid
        assert pid is not None
        tansu_broker.kill()
        assert not _alive(pid)
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await bus.publish(_spread(topic, 4))
        assert time.monotonic() - started < 10
        tansu_broker.restart()  # memory storage: the log is gone, topics too
        await ensure_topics(tansu_broker.bootstrap, [topic], 4)
        for _ in range(50):
            try:
                records = await bus.publish(_spread(topic, 4))
                break
            except Unavailable:
                await asyncio.sleep(0.2)
        assert [r.value for r in records] == [f"v{i}".encode() for i in range(4)]
        assert len(await bus.read(topic, 0, 100)) == 4
    finally:
        await bus.close()


def test_the_fixture_broker_is_stopped_by_its_pid() -> None:
    broker = TansuBroker()
    broker.start()
    pid = broker.pid
    assert pid is not None and _alive(pid)
    broker.cleanup()
    assert not _alive(pid)
