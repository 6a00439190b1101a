"""The console's live stream, without a server: routing facts of an event, who sees it, and
the outbox reader that must not skip a row committed after a higher id."""

from __future__ import annotations

import orjson

from hub.bus import topics
from hub.bus.port import Record
from hub.console.live import (
    GAP_WAIT_S,
    QUEUE_LIMIT,
    RESET,
    Client,
    OutboxReader,
    jurisdiction_filter,
    to_live,
)
from hub.model.region import speaks_for


def _record(kind: str, data: dict[str, object], topic: str = topics.TASKS) -> Record:
    env = {
        "type": kind,
        "id": "e-1",
        "time": "2026-07-01T00:30:00Z",
        "status": "actual",
        "jurisdiction": "310118",
        "data": data,
    }
    return Record(topic, 0, 7, None, orjson.dumps(env), 0)


def test_a_task_event_is_for_its_sender_and_target_and_encoded_once() -> None:
    event = to_live(_record("task.issued", {"task": {"sender": "310118", "target": "320509"}}))
    assert event is not None
    assert event.parties == {"310118", "320509"}
    assert event.frame.startswith(b"event: task.issued\ndata: {")
    assert event.frame.endswith(b"\n\n")
    assert orjson.loads(event.frame.split(b"data: ", 1)[1])["lane"] == "actual"


def test_who_sees_what() -> None:
    task = to_live(_record("task.issued", {"task": {"sender": "310118", "target": "320509"}}))
    incident = to_live(_record("incident.reported", {"thread": "x"}, topics.INCIDENTS))
    refused = to_live(_record("intake.refused", {"adapter": "a"}, topics.AUDIT))
    assert task is not None and incident is not None and refused is not None
    wujiang = jurisdiction_filter("320509", speaks_for, everything=False)
    suzhou = jurisdiction_filter("320500", speaks_for, everything=False)
    jiashan = jurisdiction_filter("330421", speaks_for, everything=False)
    coordinator = jurisdiction_filter(None, speaks_for, everything=True)
    assert wujiang(task) and suzhou(task) and not jiashan(task)
    assert wujiang(incident) and jiashan(incident)
    assert not wujiang(refused) and coordinator(refused)


def test_an_unreadable_record_is_skipped_not_fatal() -> None:
    assert to_live(Record(topics.TASKS, 0, 1, None, b"not json", 0)) is None


def _row(i: int) -> tuple[int, str, str | None, bytes, int]:
    return (i, topics.INCIDENTS, None, b"{}", 0)


def test_outbox_reader_waits_for_a_late_commit_below_the_highest_id() -> None:
    reader = OutboxReader(10)
    # 12 committed before 11: 12 is published at once, the position stays below the hole.
    assert [r.offset for r in reader.accept([_row(12)], now=100.0)] == [12]
    assert reader.position == 10
    # The next poll reads from 10 again: 11 arrives; 12 is not published twice.
    assert [r.offset for r in reader.accept([_row(11), _row(12)], now=100.5)] == [11]
    assert reader.position == 12


def test_outbox_reader_gives_up_on_a_hole_that_never_fills() -> None:
    reader = OutboxReader(0)
    assert [r.offset for r in reader.accept([_row(1), _row(3)], now=5.0)] == [1, 3]
    assert reader.position == 1
    assert reader.accept([_row(3)], now=5.0 + GAP_WAIT_S / 2) == []
    assert reader.position == 1
    assert reader.accept([_row(3), _row(4)], now=5.0 + GAP_WAIT_S + 0.1) == [
        Record(topics.INCIDENTS, -1, 4, None, b"{}", 0)
    ]
    assert reader.position == 4


async def test_a_client_that_falls_behind_is_told_to_reload_and_dropped() -> None:
    client = Client(lambda event: True)
    for n in range(QUEUE_LIMIT):
        client.offer(b"frame %d" % n)
    assert len(client.queue) == QUEUE_LIMIT and not client.dropped
    client.offer(b"one too many")
    assert client.queue == [RESET] and client.dropped and client.ready.is_set()
    client.offer(b"later")
    assert client.queue == [RESET]
