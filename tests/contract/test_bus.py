"""The ``Bus`` contract: every backend must pass these (the Kafka backend joins the list later).

Each backend is given by a harness that can open the bus and reopen it on the same storage, so
the suite can check durability and resumption, not only the happy path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from hub.bus import topics
from hub.bus.consumer import ConsumerLoop, RetryPolicy
from hub.bus.embedded import EmbeddedBus
from hub.bus.port import Bus, Outgoing, Record
from hub.clock import SystemClock
from hub.errors import Conflict, InvalidInput, Unavailable
from hub.model.events import EventDeadLettered, decode
from hub.store.db import Database

T = "liandong.incidents.v1"


class Harness(Protocol):
    async def open(self) -> Bus: ...
    async def reopen(self) -> Bus: ...
    async def close(self) -> None: ...


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


@pytest.fixture(params=["embedded"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    h = EmbeddedHarness(tmp_path / "bus.db")
    try:
        yield h
    finally:
        await h.close()


def _msgs(n: int, key: str = "k", topic: str = T, start: int = 0) -> list[Outgoing]:
    return [Outgoing(topic, key, f"m{i}".encode()) for i in range(start, start + n)]


async def _drain(bus: Bus, group: str, topics_: Sequence[str], want: int) -> list[Record]:
    consumer = bus.consumer(group, topics_)
    got: list[Record] = []
    for _ in range(50):
        got.extend(await consumer.poll(100, 0.1))
        if len(got) >= want:
            break
    await consumer.close()
    return got


async def test_publish_then_read_in_order(harness: Harness) -> None:
    bus = await harness.open()
    records = await bus.publish(_msgs(5))
    assert [r.value for r in records] == [f"m{i}".encode() for i in range(5)]
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    read = await bus.read(T, 0, 100)
    assert [r.value for r in read] == [r.value for r in records]
    assert all(r.key == "k" and r.timestamp_ms > 0 for r in read)


async def test_group_resumes_after_its_last_commit(harness: Harness) -> None:
    bus = await harness.open()
    await bus.publish(_msgs(10))
    consumer = bus.consumer("g", [T])
    first = await consumer.poll(4, 1.0)
    assert [r.value for r in first] == [b"m0", b"m1", b"m2", b"m3"]
    await consumer.commit(first)
    second = await consumer.poll(3, 1.0)  # delivered, never committed
    assert [r.value for r in second] == [b"m4", b"m5", b"m6"]
    await consumer.close()
    bus = await harness.reopen()
    again = await _drain(bus, "g", [T], 6)
    assert [r.value for r in again] == [f"m{i}".encode() for i in range(4, 10)]


async def test_rewind_redelivers_what_was_not_committed(harness: Harness) -> None:
    bus = await harness.open()
    await bus.publish(_msgs(3))
    consumer = bus.consumer("g", [T])
    assert len(await consumer.poll(10, 1.0)) == 3
    await consumer.rewind()
    assert [r.value for r in await consumer.poll(10, 1.0)] == [b"m0", b"m1", b"m2"]
    await consumer.close()


async def test_groups_are_independent(harness: Harness) -> None:
    bus = await harness.open()
    await bus.publish(_msgs(3))
    a = await _drain(bus, "a", [T], 3)
    b = await _drain(bus, "b", [T], 3)
    assert [r.value for r in a] == [r.value for r in b]


async def test_one_member_per_group_in_one_process(harness: Harness) -> None:
    bus = await harness.open()
    consumer = bus.consumer("g", [T])
    with pytest.raises(Conflict, match="already has a member"):
        bus.consumer("g", [T])
    await consumer.close()
    bus.consumer("g", [T])  # free again once closed


async def test_poll_wakes_on_publish(harness: Harness) -> None:
    bus = await harness.open()
    consumer = bus.consumer("g", [T])
    waiting = asyncio.create_task(consumer.poll(10, 5.0))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bus.publish(_msgs(1))
    got = await waiting
    assert [r.value for r in got] == [b"m0"]
    assert loop.time() - started < 1.0  # woken by the publish, not by the 5 s timeout
    await consumer.close()


async def test_data_survives_reopen_and_offsets_and_end(harness: Harness) -> None:
    bus = await harness.open()
    await bus.publish(_msgs(4) + _msgs(2, topic=topics.TASKS))
    consumer = bus.consumer("g", [T])
    await consumer.commit(await consumer.poll(2, 1.0))
    await consumer.close()
    bus = await harness.reopen()
    ends = await bus.end_offsets([T, topics.TASKS])
    assert ends[T] > 0 and ends[topics.TASKS] > ends[T]
    committed = await bus.committed("g", [T, topics.TASKS])
    assert committed[topics.TASKS] == 0
    assert 0 < committed[T] < ends[T]
    assert len(await bus.read(T, 0, 100)) == 4


async def test_exercise_traffic_has_its_own_topics(harness: Harness) -> None:
    bus = await harness.open()
    from hub.model.envelope import Lane

    exercise = topics.for_lane(topics.INCIDENTS, Lane.EXERCISE)
    assert exercise == "exercise.liandong.incidents.v1"
    await bus.publish(_msgs(2, topic=exercise))
    assert await bus.read(T, 0, 10) == []
    assert len(await bus.read(exercise, 0, 10)) == 2


async def test_poison_goes_to_deadletter_and_the_rest_flows(harness: Harness) -> None:
    bus = await harness.open()
    await bus.publish(_msgs(5))
    handled: list[bytes] = []

    async def handler(records: Sequence[Record]) -> None:
        if any(r.value == b"m2" for r in records):
            raise InvalidInput("m2 is malformed")
        handled.extend(r.value for r in records)

    consumer = bus.consumer("g", [T])
    loop = ConsumerLoop(bus, consumer, "g", handler, SystemClock(), poll_timeout_s=0.05)
    running = asyncio.create_task(loop.run())
    for _ in range(100):
        if len(handled) == 4:
            break
        await asyncio.sleep(0.02)
    loop.stop()
    await running
    assert handled == [b"m0", b"m1", b"m3", b"m4"]
    (dead,) = await bus.read(topics.DEADLETTER, 0, 10)
    payload = decode(dead.value).payload_as(EventDeadLettered)
    assert payload.payload == "m2"
    assert "m2 is malformed" in payload.reason
    assert payload.topic == T and payload.group == "g"
    bus = await harness.reopen()
    assert await _drain(bus, "g", [T], 0) == []  # all five committed, the poison included


async def test_retryable_errors_are_retried_not_deadlettered(harness: Harness) -> None:
    bus = await harness.open()
    await bus.publish(_msgs(1))
    attempts = 0

    async def handler(records: Sequence[Record]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise Unavailable("database busy")

    consumer = bus.consumer("g", [T])
    retry = RetryPolicy(attempts=5, first_backoff_s=0.001)
    loop = ConsumerLoop(
        bus, consumer, "g", handler, SystemClock(), poll_timeout_s=0.05, retry=retry
    )
    running = asyncio.create_task(loop.run())
    for _ in range(100):
        if attempts >= 3:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    loop.stop()
    await running
    assert attempts == 3
    assert await bus.read(topics.DEADLETTER, 0, 10) == []
