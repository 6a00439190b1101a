"""Dialects under hypothesis: hostile input fails only with DialectError, and what a city sends
survives decode → encode → decode unchanged."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.codecs.dialect import Dialect, DialectError, TaskAnswerNative
from adapters.codecs.dialect_check import differences
from hub.model.incident import Incident

EXAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "codecs" / "examples"
QINGPU = Dialect.load(EXAMPLES / "qingpu.yaml")
JIASHAN = Dialect.load(EXAMPLES / "jiashan.yaml")
DIALECTS = {"qingpu": QINGPU, "jiashan": JIASHAN}
SAMPLES = {name: orjson.loads((EXAMPLES / f"{name}_incident.json").read_bytes()) for name in
           DIALECTS}  # fmt: skip
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)  # fmt: skip


def every_decoder(dialect: Dialect, message: bytes) -> None:
    """Run every decoder; anything but a result or a DialectError fails the test."""
    for decode in (dialect.decode_incident, dialect.decode_answer, dialect.decode_task):
        with contextlib.suppress(DialectError):
            decode(message)


@FUZZ
@given(message=st.binary(max_size=300))
def test_random_bytes_fail_only_with_dialect_error(message: bytes) -> None:
    for dialect in DIALECTS.values():
        every_decoder(dialect, message)


@FUZZ
@given(document=json_values)
def test_random_json_fails_only_with_dialect_error(document: Any) -> None:
    message = orjson.dumps(document)
    for dialect in DIALECTS.values():
        every_decoder(dialect, message)


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in [(*path, k), *_leaves(v, (*path, k))]]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in [(*path, i), *_leaves(v, (*path, i))]]
    return []


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: _replace(document[head], rest, value)}
    copy = list(document)
    copy[head] = _replace(copy[head], rest, value)
    return copy


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(DIALECTS)))
def test_a_real_message_with_random_parts_fails_only_with_dialect_error(
    data: st.DataObject, name: str
) -> None:
    document: Any = SAMPLES[name]
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_leaves(document)))
        document = _replace(document, path, data.draw(json_values))
    every_decoder(DIALECTS[name], orjson.dumps(document))


# -- round trips ----------------------------------------------------------------------------

CODES = ["310118", "320509", "330421", "310000", "320500"]
token = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
    min_size=1,
    max_size=24,
).filter(lambda t: not any(c in t for c in ",&<") and not any(c.isspace() for c in t))
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
moments = st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2090, 12, 31))
lon = st.floats(min_value=73.0, max_value=135.0)
lat = st.floats(min_value=18.0, max_value=53.0)


@st.composite
def qingpu_messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["xinzeng", "gengxin", "chexiao"]))
    points = draw(st.lists(st.tuples(lon, lat), min_size=3, max_size=6, unique=True))
    message: dict[str, Any] = {
        "shijian_bh": draw(token),
        "danwei_dm": draw(st.sampled_from(CODES)),
        "fabu_sj": draw(moments).strftime("%Y-%m-%d %H:%M:%S"),
        "zhuangtai": draw(st.sampled_from([1, 2, 3, "1"])),
        "baowen_lx": kind,
        "shijian": {
            "leixing_dm": draw(st.sampled_from(["SZ01", "WH01", "HZ01", "FX01", "XX99"])),
            "dengji": draw(st.sampled_from([1, 2, 3, 4, "2", None])),
            "jinji": draw(st.sampled_from(["liji", "yuqi", "bu-zhidao", None])),
            "biaoti": draw(words),
            "wuranwu": draw(st.none() | words),
        },
        "weizhi": {
            "miaoshu": draw(words.filter(bool)),
            "zuobiao": list(draw(st.tuples(lon, lat))),
            "banjing": draw(st.none() | st.floats(min_value=0, max_value=50_000)),
            "fanwei": draw(st.none() | st.just([list(p) for p in points])),
            "xzqh_dm": draw(st.lists(st.sampled_from(CODES), max_size=3)),
            "zuobiaoxi": draw(st.sampled_from(["WGS84", "CGCS2000", None])),
        },
    }
    if kind != "xinzeng":
        message["yinyong"] = "310118,QP-1,2026-07-01T08:00:00+08:00"
    return message


@FUZZ
@given(message=qingpu_messages())
def test_qingpu_messages_survive_decode_encode_decode(message: dict[str, Any]) -> None:
    try:
        incident = QINGPU.decode_incident(orjson.dumps(message))
    except DialectError as exc:
        assume("at least three distinct points" not in str(exc))  # a degenerate random ring
        raise
    native = QINGPU.encode_incident(incident)
    assert QINGPU.decode_incident(native) == incident
    assert QINGPU.encode_incident(QINGPU.decode_incident(native)) == native


@st.composite
def jiashan_messages(draw: st.DrawFn) -> dict[str, Any]:
    sent = draw(moments).replace(tzinfo=UTC)
    return {
        "事件编号": draw(token),
        "报送单位": draw(st.sampled_from(CODES)),
        "上报时间": int(sent.timestamp()) * 1000 + draw(st.integers(0, 999)),
        "状态": draw(st.sampled_from(["正式", "演练", "测试", "草稿"])),
        "报文类型": "首报",
        "事件": {
            "类别": draw(st.sampled_from(["环境污染", "火灾", "交通事故", "公共卫生"])),
            "名称": draw(words.filter(bool)),
            "级别": draw(st.sampled_from(["Ⅰ级", "Ⅱ级", "Ⅲ级", "Ⅳ级", "五级"])),
            "发生时间": (sent - timedelta(minutes=draw(st.integers(0, 600)))).strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
        },
        "位置": {
            "地址": draw(words.filter(bool)),
            "坐标": "{},{}".format(*draw(st.tuples(lat, lon))),
            "坐标系": draw(st.sampled_from(["WGS-84", "WGS84", "CGCS2000"])),
            "影响半径": draw(st.floats(min_value=0, max_value=50)),
            "行政区划代码": draw(st.sampled_from(CODES)),
        },
    }


@FUZZ
@given(message=jiashan_messages())
def test_jiashan_messages_survive_decode_encode_decode(message: dict[str, Any]) -> None:
    incident = JIASHAN.decode_incident(orjson.dumps(message))
    assert incident.sent.endswith("+08:00")
    native = JIASHAN.encode_incident(incident)
    assert JIASHAN.decode_incident(native) == incident


ENUMS = {
    "status": ["Actual", "Exercise", "Test", "Draft"],
    "urgency": ["Immediate", "Expected", "Future", "Past", "Unknown"],
    "severity": ["Extreme", "Severe", "Moderate", "Minor", "Unknown"],
    "certainty": ["Observed", "Likely", "Possible", "Unlikely", "Unknown"],
    "category": ["Geo", "Met", "Safety", "Fire", "Env", "Transport", "CBRNE", "Other"],
}


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(DIALECTS)))
def test_encoding_any_incident_gives_it_back_or_says_what_it_cannot_carry(
    data: st.DataObject, name: str
) -> None:
    dialect = DIALECTS[name]
    base = dialect.decode_incident(orjson.dumps(SAMPLES[name])).model_dump(exclude_none=True)
    info = dict(base["info"][0])
    for key in ("urgency", "severity", "certainty"):
        info[key] = data.draw(st.sampled_from(ENUMS[key]))
    # each aspect is either kept (so that some incidents fit the dialect) or drawn at random
    keep = st.booleans()
    if not data.draw(keep):
        info["category"] = data.draw(st.lists(st.sampled_from(ENUMS["category"]), min_size=1,
                                              max_size=2))  # fmt: skip
        info["event"] = data.draw(st.sampled_from(["水体污染事件", "火灾事故"]) | words)
    centre = data.draw(st.tuples(lat, lon, st.floats(min_value=0, max_value=99)))
    info["area"] = [{**info["area"][0], "circle": ["{},{} {}".format(*centre)]}]
    message = {**base, "status": data.draw(st.sampled_from(ENUMS["status"])), "info": [info]}
    if not data.draw(keep):
        message["scope"] = data.draw(st.sampled_from(["Public", "Restricted"]))
        message["restriction"] = data.draw(words.filter(bool))
    try:
        incident = Incident.model_validate(message)
    except ValidationError:
        assume(False)
    try:
        out = dialect.encode_incident(incident)
    except DialectError:
        event("refused")
        return  # the dialect cannot carry it (a fixed scope, an event with no code), and says so
    event("encoded")
    back = dialect.decode_incident(out).model_dump(mode="json", exclude_none=True)
    assert differences(incident.model_dump(mode="json", exclude_none=True), back) == []


@st.composite
def task_payloads(draw: st.DrawFn) -> dict[str, Any]:
    issued = draw(moments).replace(microsecond=0, tzinfo=timezone(timedelta(hours=8)))
    due = issued + timedelta(minutes=draw(st.integers(1, 24 * 60)))
    return {
        "task": {
            "id": draw(token),
            "incident": f"{draw(st.sampled_from(CODES))},{draw(token)}",
            "sender": draw(st.sampled_from(CODES)),
            "target": draw(st.sampled_from(CODES)),
            "action_zh": draw(words),
            "action_en": draw(words),
            "response": draw(st.sampled_from(["acknowledge", "accept"])),
            "issued": issued.isoformat(),
            "due": due.isoformat(),
            "lane": draw(st.sampled_from(["actual", "exercise", "test"])),
            "why": {
                "playbook": draw(token),
                "version": draw(st.integers(1, 99)),
                "step": "s",
                "conditions": [],
                "agreement": draw(token),
                "clause": draw(token),
                "cause": "evt",
            },
        }
    }


@FUZZ
@given(payload=task_payloads(), name=st.sampled_from(sorted(DIALECTS)))
def test_tasks_survive_encode_and_decode(payload: dict[str, Any], name: str) -> None:
    dialect = DIALECTS[name]
    back = dialect.decode_task(dialect.encode_task(payload))
    task = payload["task"]
    for key, value in back.items():
        if key == "why":
            assert all(task["why"][k] == v for k, v in value.items())
        elif key in ("issued", "due"):
            sent = datetime.fromisoformat(task[key])
            if name == "jiashan" and key == "due":  # its deadlines are to the minute
                sent = sent.replace(second=0)
            assert datetime.fromisoformat(value) == sent
        else:
            assert value == task[key], key


@FUZZ
@given(
    task_id=token,
    answer=st.sampled_from(["acknowledge", "accept", "decline", "done"]),
    reason=st.none() | words,
    name=st.sampled_from(sorted(DIALECTS)),
)
def test_answers_survive_encode_and_decode(
    task_id: str, answer: Any, reason: str | None, name: str
) -> None:
    original = TaskAnswerNative(task_id, answer, reason)
    assert DIALECTS[name].decode_answer(DIALECTS[name].encode_answer(original)) == original


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_the_sample_messages_are_what_the_strategies_look_like(name: str) -> None:
    # keeps the strategies honest: the hand-written samples decode with the same dialects
    assert DIALECTS[name].decode_incident(orjson.dumps(SAMPLES[name])).info
