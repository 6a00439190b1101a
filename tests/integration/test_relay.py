"""The outbox relay: in order, once per row, again after the broker lost its log; one leader.

The "broker" here is a real embedded log in its own SQLite file; a broker that lost its log is a
fresh one (offsets start again from 1), as a memory-only Kafka broker is after a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.bus.embedded import EmbeddedBus
from hub.bus.relay import OutboxRelay
from hub.clock import SystemClock
from hub.store.db import Database, Tx
from hub.store.outbox import Outbox
from hub.store.postgres import AdvisoryLeadership, PostgresDatabase

T = "liandong.incidents.v1"


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(tmp_path / "state.db", "NORMAL")
    db.open()
    yield db
    db.close()


def _broker(path: Path) -> tuple[Database, EmbeddedBus]:
    db = Database(path, "NORMAL")
    db.open()
    return db, EmbeddedBus(db, SystemClock())


async def _emit(state: Database, values: list[bytes], key: str = "k") -> None:
    outbox = Outbox(SystemClock())

    def write(tx: Tx) -> None:
        for value in values:
            outbox.append(tx, T, key, value)

    await state.run(write)


async def test_rows_are_published_in_order_once(state: Database, tmp_path: Path) -> None:
    broker_db, broker = _broker(tmp_path / "broker.db")
    relay = OutboxRelay(state, broker, SystemClock(), batch=3)
    await _emit(state, [f"e{i}".encode() for i in range(7)])
    while await relay.relay_once():
        pass
    assert await relay.relay_once() == 0
    got = await broker.read(T, 0, 100)
    assert [r.value for r in got] == [f"e{i}".encode() for i in range(7)]
    assert {r.key for r in got} == {"k"}
    broker_db.close()


async def test_a_broker_that_lost_its_log_gets_everything_again(
    state: Database, tmp_path: Path
) -> None:
    first_db, first = _broker(tmp_path / "broker-1.db")
    relay = OutboxRelay(state, first, SystemClock())
    await _emit(state, [b"a", b"b", b"c"])
    await relay.relay_once()
    first_db.close()

    # The broker restarts empty: its offsets begin again below what the relay has seen.
    second_db, second = _broker(tmp_path / "broker-2.db")
    relay._bus = second  # the same relay, reconnected to the restarted broker
    await _emit(state, [b"d"])
    await relay.relay_once()
    values = [r.value for r in await second.read(T, 0, 100)]
    assert values[0] == b"d"
    assert sorted(set(values)) == [b"a", b"b", b"c", b"d"]
    assert relay.resent == 4
    second_db.close()


async def test_publish_failure_leaves_rows_unsent(state: Database, tmp_path: Path) -> None:
    broker_db, broker = _broker(tmp_path / "broker.db")
    broker_db.close()  # publishing now fails: outcome unknown, nothing may be marked sent
    relay = OutboxRelay(state, broker, SystemClock())
    await _emit(state, [b"x"])
    with pytest.raises(Exception, match="not open"):
        await relay.relay_once()
    unsent = await state.run(
        lambda tx: tx.conn.execute("SELECT COUNT(*) FROM outbox WHERE sent_ms IS NULL").fetchone()
    )
    assert unsent == (1,)


async def test_one_relay_leader_among_instances(postgres_url: str) -> None:
    db = PostgresDatabase(postgres_url)
    await db.start()
    a, b = AdvisoryLeadership(db, 42), AdvisoryLeadership(db, 42)
    try:
        assert await a.acquire()
        assert await a.acquire()  # still held
        assert not await b.acquire()
        await a.release()
        assert await b.acquire()
    finally:
        await a.release()
        await b.release()
        await db.stop()
