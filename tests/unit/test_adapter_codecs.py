"""The framework's codecs: tasks and answers as CAP, inside EDXL-DE, as the hub's JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.framework.cap_tasks import answer_from_cap, answer_to_cap, cap_time, task_to_cap
from adapters.framework.codec import CanonicalJsonCodec, CapCodec, EdxlDeCodec
from adapters.framework.task_feed import message_key
from adapters.links.mqtt_protocol import Answer, TaskAnswer
from hub.codecs.cap import decode_cap, encode_cap
from hub.codecs.edxl_de import decode_edxl_de
from hub.errors import InvalidInput
from hub.model.incident import Incident, MsgType, Scope, Status

FIXTURES = Path(__file__).resolve().parents[2] / "adapters" / "cities" / "shanghai" / "fixtures"


def task(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((FIXTURES / "task-protect-intakes.json").read_bytes())
    return {**data, **changes}


def reply(kind: Answer, reason: str | None = None, **changes: Any) -> Incident:
    message = answer_to_cap(
        TaskAnswer(task=task()["id"], answer=kind, reason=reason),
        sender="310000",
        identifier="SH-1",
        sent="2026-07-01T08:41:00+08:00",
        task_sent="2026-07-01T08:30:01+08:00",
    )
    return message.model_copy(update=changes)


def test_a_task_is_a_private_cap_alert_to_its_target() -> None:
    alert = task_to_cap(task())
    assert (alert.identifier, alert.sender, alert.msgType) == (
        task()["id"],
        "liandong",
        MsgType.ALERT,
    )
    assert alert.scope is Scope.PRIVATE and alert.addresses == "310000"
    assert alert.sent == "2026-07-01T08:30:01+08:00"  # Beijing time, whole seconds
    assert [i.language for i in alert.info] == ["zh-CN", "en-US"]
    assert alert.info[0].instruction == task()["action_zh"]
    params = {p.valueName: p.value for p in alert.info[0].parameter}
    assert params["liandong:due"] == "2026-07-01T09:00:01+08:00"
    assert params["liandong:agreement"] == "yrd-demo-zone-emergency-linkage clause 4"
    assert decode_cap(encode_cap(alert)) == alert  # valid against the OASIS schema


def test_lanes_states_and_times() -> None:
    assert task_to_cap(task(lane="exercise")).status is Status.EXERCISE
    escalated = task_to_cap(task(state="escalated"))  # still the task, for a city that never had it
    assert (
        escalated.msgType is MsgType.ALERT and message_key(task(state="escalated")) == task()["id"]
    )
    cancelled = task_to_cap(task(state="cancelled"))
    assert (
        cancelled.msgType is MsgType.CANCEL and cancelled.identifier == f"{task()['id']}.cancelled"
    )
    assert cancelled.references == f"liandong,{task()['id']},2026-07-01T08:30:01+08:00"
    assert cap_time("2026-12-31T16:00:00Z") == "2027-01-01T00:00:00+08:00"
    with pytest.raises(InvalidInput, match="RFC 3339"):
        cap_time("yesterday")
    with pytest.raises(InvalidInput, match="'action_en' is missing"):
        task_to_cap({k: v for k, v in task().items() if k != "action_en"})


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (reply(Answer.ACKNOWLEDGE), (Answer.ACKNOWLEDGE, None)),
        (reply(Answer.ACCEPT, "已出发"), (Answer.ACCEPT, "已出发")),
        (reply(Answer.DONE, "完成"), (Answer.DONE, "完成")),
        (reply(Answer.DECLINE, "力量不足"), (Answer.DECLINE, "力量不足")),
        (reply(Answer.ACKNOWLEDGE, code=[]), (Answer.ACKNOWLEDGE, None)),  # a bare Ack
        (reply(Answer.DECLINE, "无力量", code=[]), (Answer.DECLINE, "无力量")),  # a bare Error
        (reply(Answer.ACCEPT, code=["liandong:Accept"]), (Answer.ACCEPT, None)),
    ],
)
def test_cap_answers(message: Incident, expected: tuple[Answer, str | None]) -> None:
    found = answer_from_cap(message)
    assert found is not None and (found.answer, found.reason) == expected
    assert found.task == task()["id"]


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (reply(Answer.DECLINE, code=[]), "note: a decline needs the reason"),
        (reply(Answer.ACCEPT, code=["LIANDONG:approve"]), "'LIANDONG:approve' is not one of"),
        (reply(Answer.ACCEPT, code=["LIANDONG:accept", "LIANDONG:done"]), "one LIANDONG"),
        (reply(Answer.DECLINE, "x", code=["LIANDONG:accept"]), "an Error declines"),
    ],
)
def test_malformed_cap_answers_name_the_element(message: Incident, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        answer_from_cap(message)


def test_the_cap_codec_routes_by_content() -> None:
    codec = CapCodec("liandong")
    spill = (FIXTURES / "incident-huangpu-spill.xml").read_bytes()
    assert isinstance(codec.decode(spill, "incidents"), Incident)
    with pytest.raises(InvalidInput, match="an answer is a CAP Ack or Error"):
        codec.decode(spill, "answers")
    assert isinstance(codec.decode(encode_cap(reply(Answer.DONE)), "incidents"), TaskAnswer)
    other = reply(Answer.ACKNOWLEDGE, references="320509,WJ-1,2026-07-01T08:30:00+08:00")
    assert answer_from_cap(other) is None  # an Ack of someone else's message: not ours


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_edxl_de_carries_the_task_and_the_answer(version: str) -> None:
    codec = EdxlDeCodec("liandong", version)  # type: ignore[arg-type]
    envelope = codec.encode_task(task(state="cancelled"))
    dist = decode_edxl_de(envelope)
    assert dist.version == version and dist.distribution_type.value == "Cancel"
    assert dist.distribution_id == f"{task()['id']}.cancelled"
    assert dist.explicit_address[0].values == ["310000"]
    assert codec.decode(envelope, "incidents") == task_to_cap(task(state="cancelled"))
    answer = CapCodec("liandong").decode(encode_cap(reply(Answer.ACCEPT, "好")), "answers")
    assert isinstance(answer, TaskAnswer) and answer.answer is Answer.ACCEPT


def test_canonical_json_codec_names_the_bad_field() -> None:
    codec = CanonicalJsonCodec()
    good = codec.decode(b'{"task": "t-1", "answer": "done", "reason": "ok"}', "answers")
    assert good == TaskAnswer(task="t-1", answer=Answer.DONE, reason="ok")
    with pytest.raises(InvalidInput, match="answer: "):
        codec.decode(b'{"task": "t-1", "answer": "maybe"}', "answers")
    with pytest.raises(InvalidInput, match="sender"):
        codec.decode(b'{"identifier": "x"}', "incidents")
    assert orjson.loads(codec.encode_task(task())) == task()
