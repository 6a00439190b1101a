"""The pure parts of drills: the virtual clock, the isolation guard's checks, timelines from
recordings, the after-action report, its page, and what-if differences."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from hub.bus import topics
from hub.clock import VirtualClock
from hub.drills import report
from hub.drills.compare import differences
from hub.drills.html import render
from hub.drills.isolation import (
    LIVE,
    DrillIsolation,
    IsolationError,
    check_stock_request,
)
from hub.drills.recording import Record
from hub.drills.timeline import Answer, Report, StockAsk, from_recording, load
from hub.errors import InvalidInput
from hub.model.envelope import Lane, OutgoingEvent
from hub.model.task import TaskState

REPO = Path(__file__).resolve().parents[2]


def _event(status: Lane, drill: str | None = None, data: dict[str, object] | None = None) -> bytes:
    return OutgoingEvent(
        id="e-1", source="/t", type="task.issued", time="2026-07-01T00:00:00.000Z",
        data=data or {"x": 1}, jurisdiction="320509", status=status, correlationid="c",
        drill=drill,
    ).encode()  # fmt: skip


def test_the_virtual_clock_runs_faster_pauses_resumes_and_jumps() -> None:
    clock = VirtualClock(1_000_000, speed=1000)
    time.sleep(0.05)
    ran = clock.now_ms() - 1_000_000
    assert ran >= 40_000  # 50 ms of wall time is 50 s of virtual time at 1000x
    clock.pause()
    frozen = clock.now_ms()
    time.sleep(0.02)
    assert clock.now_ms() == frozen and clock.real_seconds_until(frozen + 1) == float("inf")
    clock.resume()
    time.sleep(0.02)
    assert clock.now_ms() > frozen
    fastest = VirtualClock(5, speed=None)
    assert fastest.now_ms() == 5 and fastest.real_seconds_until(10**12) == 0.0
    fastest.set(99)
    assert fastest.now_ms() == 99
    with pytest.raises(ValueError, match="speed"):
        VirtualClock(0, speed=0)


def test_the_live_guard_refuses_exercise_events_on_live_topics_only() -> None:
    live = _event(Lane.ACTUAL)
    assert LIVE.check(topics.TASKS, live) == live
    exercise = _event(Lane.EXERCISE)
    assert LIVE.check("exercise." + topics.TASKS, exercise) == exercise
    with pytest.raises(IsolationError, match=r"live topic 'liandong\.tasks\.v1'"):
        LIVE.check(topics.TASKS, exercise)
    # A nested "status" inside the data does not fool it: the envelope's own is read.
    nested = _event(Lane.ACTUAL, data={"status": "exercise", "z": {"status": "exercise"}})
    assert LIVE.check(topics.TASKS, nested) == nested
    tricky = _event(Lane.EXERCISE, data={"status": "actual"})
    with pytest.raises(IsolationError):
        LIVE.check(topics.TASKS, tricky)


def test_a_drill_guard_stamps_its_id_and_refuses_every_crossing() -> None:
    guard = DrillIsolation("d-1")
    raw = guard.check("exercise." + topics.TASKS, _event(Lane.EXERCISE))
    stamped = orjson.loads(raw)
    assert stamped["drill"] == "d-1" and stamped["status"] == "exercise"
    assert raw == orjson.dumps(stamped, option=orjson.OPT_SORT_KEYS)  # canonical bytes
    nested = _event(Lane.EXERCISE, data={"datacontenttype": "x", "id": {"drill": 1}})
    again = guard.check("exercise." + topics.TASKS, nested)
    assert orjson.loads(again) == {**orjson.loads(nested), "drill": "d-1"}
    assert again == orjson.dumps(orjson.loads(again), option=orjson.OPT_SORT_KEYS)
    with pytest.raises(IsolationError, match="live topic"):
        guard.check(topics.TASKS, _event(Lane.EXERCISE))
    with pytest.raises(IsolationError, match="'actual' event"):
        guard.check("exercise." + topics.TASKS, _event(Lane.ACTUAL))
    with pytest.raises(IsolationError, match="drill 'd-2'"):
        guard.check("exercise." + topics.TASKS, _event(Lane.EXERCISE, drill="d-2"))
    with pytest.raises(ValueError):
        DrillIsolation("")


def test_stock_requests_reserve_only_on_their_own_ledger() -> None:
    check_stock_request(None, None, "dep")
    check_stock_request("d-1", "d-1", "dep")
    with pytest.raises(IsolationError, match="live depot dep"):
        check_stock_request(None, "d-1", "dep")
    with pytest.raises(IsolationError, match="a live request"):
        check_stock_request("d-1", None, "dep")
    with pytest.raises(IsolationError, match="drill d-2"):
        check_stock_request("d-1", "d-2", "dep")


def _record(offset: int, type_: str, data: dict[str, object], at: int) -> Record:
    envelope = {"type": type_, "data": data, "status": "actual"}
    return Record(offset, "liandong.x", None, at, envelope)


def test_a_recording_gives_its_inputs_and_leaves_the_hubs_outputs() -> None:
    fixture = REPO / "tests" / "fixtures" / "recordings" / "day-small.jsonl"
    timeline = load(fixture)
    kinds = {type(a).__name__ for a in timeline.actions}
    assert kinds == {"Report", "Answer", "StockAsk"}
    assert all(a.incident.status.value == "Exercise" for a in timeline.actions
               if isinstance(a, Report))  # fmt: skip
    assert [a.at_ms for a in timeline.actions] == sorted(a.at_ms for a in timeline.actions)
    answers = [a for a in timeline.actions if isinstance(a, Answer)]
    assert answers and all(a.task and a.by != "hub" for a in answers)
    timed = from_recording("r", [
        _record(2, "task.escalated", {"task": "t", "incident": "i", "target": "1", "by": "hub"}, 5),
        _record(1, "task.acknowledged",
                {"task": "t", "incident": "i", "target": "320509", "by": "wj"}, 4),
        _record(3, "stock.refused", {"request": "r", "depot": "d", "item": "sandbag",
                                     "quantity": 3, "partner": "310118", "reason": "no"}, 6),
    ])  # fmt: skip
    assert timed.actions == (
        Answer(4, "i", "320509", TaskState.ACKNOWLEDGED, "wj", None, "t"),
        StockAsk(6, "r", "d", "sandbag", 3, "310118", "", "310118", None),
    )
    with pytest.raises(InvalidInput, match="no incident, answer or stock request"):
        from_recording("empty", [_record(1, "task.escalated", {}, 1)])
    with pytest.raises(InvalidInput, match="offset 7"):
        from_recording("bad", [_record(7, "task.accepted", {"incident": "i"}, 1)])


def _issued(task: str, target: str, at: str, thread: str = "s,i") -> dict[str, object]:
    return {"type": "task.issued", "data": {"task": {
        "id": task, "target": target, "issued": at, "incident": thread}}}  # fmt: skip


def test_the_report_counts_times_misses_escalations_and_resources() -> None:
    events = [
        {"type": "incident.reported", "data": {"thread": "s,i", "received":
                                               "2026-07-01T00:00:00.000Z"}},
        _issued("t1", "320509", "2026-07-01T00:00:10.000Z"),
        _issued("t2", "330421", "2026-07-01T00:00:10.000Z"),
        {"type": "task.acknowledged", "data": {"task": "t1", "at": "2026-07-01T00:02:10.000Z"}},
        {"type": "task.accepted", "data": {"task": "t1", "at": "2026-07-01T00:05:10.000Z"}},
        {"type": "task.escalated", "data": {"task": "t2", "at": "2026-07-01T00:15:10.000Z"}},
        {"type": "task.escalated", "data": {"task": "t2", "at": "2026-07-01T00:25:10.000Z"}},
        {"type": "stock.held", "data": {"item": "sandbag", "quantity": 30}},
        {"type": "stock.committed", "data": {"item": "sandbag", "quantity": 30}},
        {"type": "stock.refused", "data": {"item": "sandbag", "quantity": 70, "request": "r",
                                           "depot": "d", "partner": "310118",
                                           "reason": "over the cap", "clause": "8"}},
    ]  # fmt: skip
    got = report.build(events, [{"depot": "d", "item": "sandbag", "on_hand": 5, "held": 0}])
    wujiang, jiashan = got["jurisdictions"]["320509"], got["jurisdictions"]["330421"]
    assert wujiang["time_to_acknowledge_s"] == {"median": 120.0, "max": 120.0}
    assert wujiang["time_to_accept_s"]["median"] == 300.0 and wujiang["deadlines_missed"] == 0
    assert jiashan["deadlines_missed"] == 1 and jiashan["escalations"] == 2
    assert jiashan["time_to_acknowledge_s"]["median"] is None
    assert got["time_to_first_task_s"] == {"s,i": 10.0}
    res = got["resources"]
    assert res["requested"] == {"sandbag": 100} and res["fill_rate"] == 0.3
    assert res["shortfalls"] == {"sandbag": 70} and res["stock_left"][0]["on_hand"] == 5
    assert got["policy_refusals"][0]["reason"] == "over the cap"
    page = render(got, {"320509": "吴江区"})
    assert page.count("<svg") == 3 and "吴江区" in page and "over the cap" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<script" not in page


def test_differences_name_each_changed_figure() -> None:
    a = {"tasks": 3, "per": {"1": 2, "2": 1}, "fill": 0.5}
    b = {"tasks": 4, "per": {"1": 2, "3": 2}, "fill": 0.5}
    assert differences(a, b) == {
        "tasks": {"a": 3, "b": 4},
        "per": {"2": {"a": 1, "b": None}, "3": {"a": None, "b": 2}},
    }
    assert differences(a, a) == {}
