"""Anonymising a recording: free text, names and phone numbers go; ids and geometry stay."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from hub.drills.recording import Record, anonymise, read, trim, write
from tests.factories import cap

NAMES = ("王建国", "吴江区应急管理局", "平望镇太浦河大桥", "苏吴危运0317", "李海燕")
PHONES = ("13900000317", "0512-6300 0110", "021-69000120", "+86 138 0000 0574")
POLYGON = "30.968,120.630 30.978,120.630 30.998,120.760 30.988,120.760 30.968,120.630"


def _incident_event() -> dict[str, Any]:
    incident = cap(
        "pingwang-1",
        "320509",
        circle="30.972,120.645 2",
        note="王建国 reported it; call 13900000317",
    )
    info = incident["info"][0]
    info.update(
        senderName="吴江区应急管理局",
        headline="平望镇太浦河大桥下游苏吴危运0317泄漏",
        description="值班员王建国电话0512-6300 0110",
        instruction="联系李海燕 021-69000120",
        contact="王建国 +86 138 0000 0574",
        web="https://wujiang.example/王建国",
        parameter=[{"valueName": "duty", "value": "值班电话 0512-6300 0110"}],
    )
    area = info["area"][0]
    area.update(
        areaDesc="吴江区平望镇太浦河大桥",
        polygon=[POLYGON],
        geocode=[{"valueName": "GB2260", "value": "320509"}],
    )
    return {
        "specversion": "1.0",
        "id": "0b6f1a52-7a0e-5f43-9a55-0f4c1e1d2a10",
        "source": "/liandong/intake",
        "type": "incident.reported",
        "time": "2026-06-18T01:00:00.000Z",
        "datacontenttype": "application/json",
        "jurisdiction": "320509",
        "status": "exercise",
        "correlationid": "320509,pingwang-1",
        "data": {
            "incident": incident,
            "thread": "320509,pingwang-1",
            "version": 1,
            "received": "2026-06-18T01:00:00.100Z",
        },
    }


def _task_event() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "5d0e4f2b-0c77-5e11-8f1e-1c2b3a4d5e6f",
        "source": "/liandong/engine",
        "type": "task.declined",
        "time": "2026-06-18T01:05:00.000Z",
        "jurisdiction": "330411",
        "status": "exercise",
        "correlationid": "320509,pingwang-1",
        "data": {
            "task": "9f1c2d3e-4b5a-5c6d-8e7f-0a1b2c3d4e5f",
            "incident": "320509,pingwang-1",
            "target": "330411",
            "previous": "acknowledged",
            "state": "declined",
            "by": "xiuzhou-cap",
            "reason": "王建国的监测船在王江泾，请拨 13900000317",
            "at": "2026-06-18T01:05:00.000Z",
        },
    }


def _recording() -> list[Record]:
    return [
        Record(
            7,
            "exercise.liandong.incidents.v1",
            "320509,pingwang-1",
            1_781_744_400_100,
            _incident_event(),
        ),
        Record(9, "exercise.liandong.task-updates.v1", "330411", 1_781_744_700_000, _task_event()),
    ]


def _text(records: list[Record]) -> str:
    return b"".join(r.to_json() for r in records).decode()


def test_no_name_or_phone_survives() -> None:
    original = _recording()
    assert all(s in _text(original) for s in NAMES + PHONES)  # the fixture does carry them
    out = _text(anonymise(original))
    for secret in NAMES + PHONES:
        assert secret not in out, secret
    assert "[phone-" in out and "[headline-1]" in out and "[reason-1]" in out


def test_ids_codes_times_and_geometry_are_byte_identical() -> None:
    original = _recording()
    before = copy.deepcopy([r.envelope for r in original])
    (incident, task) = anonymise(original)
    assert [r.envelope for r in original] == before  # the input is not changed
    for got, was in zip((incident, task), original, strict=True):
        assert (got.offset, got.topic, got.key, got.appended_ms) == (
            was.offset,
            was.topic,
            was.key,
            was.appended_ms,
        )
        kept = {k: v for k, v in was.envelope.items() if k != "data"}
        assert {k: v for k, v in got.envelope.items() if k != "data"} == kept
    message, source = incident.envelope["data"]["incident"], _incident_event()["data"]["incident"]
    for key in ("identifier", "sender", "sent", "status", "msgType", "scope"):
        assert message[key] == source[key]
    info, source_info = message["info"][0], source["info"][0]
    for key in ("category", "event", "urgency", "severity", "certainty", "language"):
        assert info[key] == source_info[key]
    area, source_area = info["area"][0], source_info["area"][0]
    assert orjson.dumps(
        [area["polygon"], area["circle"], area["geocode"]], option=orjson.OPT_SORT_KEYS
    ) == orjson.dumps(
        [source_area["polygon"], source_area["circle"], source_area["geocode"]],
        option=orjson.OPT_SORT_KEYS,
    )
    assert area["areaDesc"] == "[areaDesc-1]" and info["web"].startswith("https://example.invalid/")
    data = task.envelope["data"]
    for key in ("task", "incident", "target", "previous", "state", "by", "at"):
        assert data[key] == _task_event()["data"][key]


def test_anonymising_is_deterministic_and_consistent(tmp_path: Path) -> None:
    first, second = anonymise(_recording()), anonymise(_recording())
    assert _text(first) == _text(second)
    # The same phone number gets the same placeholder wherever it appears.
    description = first[0].envelope["data"]["incident"]["info"][0]["parameter"][0]["value"]
    assert description == "值班电话 [phone-1]"
    note = first[0].envelope["data"]["incident"]["note"]
    assert note == "[note-1]"
    path = tmp_path / "r.jsonl"
    with path.open("wb") as handle:
        assert write(first, handle) == 2
    assert read(path) == first


def test_trim_keeps_the_window_and_topics_with_original_offsets() -> None:
    records = _recording()
    assert [r.offset for r in trim(records, 1_781_744_400_100, 1_781_744_700_000)] == [7]
    assert [r.offset for r in trim(records, from_ms=1_781_744_400_101)] == [9]
    assert [r.offset for r in trim(records, topics=["exercise.liandong.task-updates.v1"])] == [9]
    assert trim(records) == records
