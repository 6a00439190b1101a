"""JSON dialect mappings: the two example cities, every translation, every error, the format."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from ruamel.yaml import YAML

from adapters.codecs.dialect import Dialect, DialectError, TaskAnswerNative
from adapters.codecs.dialect_spec import json_schema
from hub.errors import InvalidInput
from hub.model.incident import Incident

CODECS = Path(__file__).resolve().parents[2] / "adapters" / "codecs"
EXAMPLES = CODECS / "examples"
QINGPU = Dialect.load(EXAMPLES / "qingpu.yaml")
JIASHAN = Dialect.load(EXAMPLES / "jiashan.yaml")


def native(name: str) -> dict[str, Any]:
    return orjson.loads((EXAMPLES / name).read_bytes())  # type: ignore[no-any-return]


def raw(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


def task_data(**changes: Any) -> dict[str, Any]:
    """A ``task.issued`` event's data, as the engine emits it."""
    task = {
        "id": "7d0c1f5e-5a6b-5f0e-9a51-2b4c3d2e1f00",
        "incident": "320509,WJ-2026-0701-001",
        "sender": "320509",
        "target": "310118",
        "action_zh": "请派员核查金泽水源地取水口",
        "action_en": "Check the Jinze water intake",
        "response": "acknowledge",
        "issued": "2026-07-01T08:30:05+08:00",
        "due": "2026-07-01T09:00:05+08:00",
        "state": "issued",
        "lane": "actual",
        "why": {
            "playbook": "taipu-water-pollution",
            "version": 1,
            "step": "notify-downstream",
            "conditions": ["category_in [Env]"],
            "agreement": "yrd-demo-zone-2019",
            "clause": "3.2",
            "cause": "evt-1",
        },
    }
    task.update(changes)
    return {"task": task}


# -- the examples ---------------------------------------------------------------------------


def test_qingpu_pinyin_dialect_maps_to_the_canonical_incident() -> None:
    incident = QINGPU.decode_incident((EXAMPLES / "qingpu_incident.json").read_bytes())
    assert (incident.identifier, incident.sender) == ("QP-20260701-0042", "310118")
    assert incident.sent == "2026-07-01T08:30:00+08:00"  # local time, Asia/Shanghai
    assert (incident.status, incident.msgType, incident.scope) == ("Actual", "Alert", "Public")
    info = incident.info[0]
    assert info.category == ["Env"] and info.event == "水体污染事件"  # one code, two tables
    assert (info.urgency, info.severity, info.certainty) == ("Immediate", "Severe", "Observed")
    assert [(p.valueName, p.value) for p in info.eventCode] == [("QP-SJLX", "SZ01")]
    assert [(p.valueName, p.value) for p in info.parameter] == [
        ("pollutant", "苯"),
        ("casualties", "0"),
    ]
    area = info.area[0]
    assert area.circle == ["31.03,120.9 2.0"]  # [lon, lat] and 2000 m → "lat,lon km"
    assert area.polygon == ["31.03,120.82 31.03,120.92 31.05,120.92 31.05,120.82 31.03,120.82"]
    assert [(g.valueName, g.value) for g in area.geocode] == [
        ("GB/T 2260", "310118"),
        ("GB/T 2260", "320509"),
    ]


def test_jiashan_chinese_dialect_maps_times_from_utc_and_lat_lon_text() -> None:
    incident = JIASHAN.decode_incident((EXAMPLES / "jiashan_incident.json").read_bytes())
    assert incident.sent == "2026-07-01T08:43:00+08:00"  # epoch millis, written in +08:00
    assert incident.scope == "Restricted" and incident.restriction
    info = incident.info[0]
    assert info.onset == "2026-07-01T07:40:00+08:00"  # naive UTC "2026-06-30T23:40:00"
    assert info.expires == "2026-07-01T20:00:00+08:00"
    assert (info.category, info.severity) == (["Env"], "Severe")
    assert info.area[0].circle == ["30.95,120.92 1.5"]  # "lat,lon" text, radius already km
    assert info.area[0].geocode[0].value == "330421"


@pytest.mark.parametrize("dialect", [QINGPU, JIASHAN], ids=lambda d: d.name)
def test_examples_survive_encode_and_decode(dialect: Dialect) -> None:
    city = dialect.name.split("-")[0]
    incident = dialect.decode_incident((EXAMPLES / f"{city}_incident.json").read_bytes())
    again = dialect.decode_incident(dialect.encode_incident(incident))
    assert again == incident


def test_encoding_writes_the_city_own_spelling() -> None:
    original = native("qingpu_incident.json")
    incident = QINGPU.decode_incident(raw(original))
    out = orjson.loads(QINGPU.encode_incident(incident))
    assert out["xiaoxi_lx"] == "shijian_shangbao"  # a native constant
    assert out["zhuangtai"] == 1 and out["shijian"]["dengji"] == 2  # numeric codes stay numbers
    assert out["weizhi"]["zuobiao"] == [120.9, 31.03] and out["weizhi"]["banjing"] == 2000
    assert out["weizhi"]["fanwei"][-1] == out["weizhi"]["fanwei"][0]  # the ring comes closed
    assert out["shijian"]["fasheng_sj"] == "2026-07-01 07:55:00"
    assert "xingming" not in out["lianxi"]  # not mapped, so not carried
    js = orjson.loads(
        JIASHAN.encode_incident(JIASHAN.decode_incident(raw(native("jiashan_incident.json"))))
    )
    assert js["上报时间"] == 1782866580000 and js["事件"]["发生时间"] == "2026-06-30T23:40:00"
    assert js["位置"]["坐标"] == "30.95,120.92" and js["位置"]["坐标系"] == "WGS-84"


def test_one_native_code_is_chosen_to_satisfy_every_field_it_feeds() -> None:
    base = QINGPU.decode_incident(raw(native("qingpu_incident.json"))).model_dump()

    def with_info(**changes: Any) -> Incident:
        return Incident.model_validate({**base, "info": [{**base["info"][0], **changes}]})

    fire = with_info(category=["Fire"], event="火灾事故",
                     eventCode=[{"valueName": "QP-SJLX", "value": "HZ01"}])  # fmt: skip
    assert orjson.loads(QINGPU.encode_incident(fire))["shijian"]["leixing_dm"] == "HZ01"
    with pytest.raises(
        DialectError,
        match=r"shijian\.leixing_dm.*no code gives CAP "
        r"info\.0\.category\.0 = 'Fire' and CAP info\.0\.event = '水体污染事件'",
    ):
        QINGPU.encode_incident(with_info(category=["Fire"], eventCode=[]))
    with pytest.raises(
        DialectError,
        match=r"CAP info\.0\.eventCode\.0 = 'SZ01' is no code that "
        r"gives CAP info\.0\.category\.0 = 'Fire'",
    ):
        QINGPU.encode_incident(with_info(category=["Fire"]))
    # An unknown code decodes to the tables' defaults; the event code carries it back.
    other = QINGPU.decode_incident(qingpu_with("shijian.leixing_dm", "XX99"))
    assert (other.info[0].category, other.info[0].event) == (["Other"], "其他突发事件")
    assert orjson.loads(QINGPU.encode_incident(other))["shijian"]["leixing_dm"] == "XX99"


def test_encoding_refuses_to_lose_what_the_dialect_cannot_carry() -> None:
    base = QINGPU.decode_incident(raw(native("qingpu_incident.json"))).model_dump()
    second = {**base["info"][0], "language": "en-US", "event": "Spill"}
    fuller = Incident.model_validate(
        {**base, "scope": "Private", "addresses": "310118", "info": [base["info"][0], second]}
    )
    with pytest.raises(DialectError) as caught:
        QINGPU.encode_incident(fuller)
    message = str(caught.value)
    assert "scope: 'Private' would become 'Public'" in message
    assert "addresses: has no place in the dialect" in message
    assert "info.1: has no place in the dialect" in message
    lossy = QINGPU.decode_incident(QINGPU.encode_incident(fuller, allow_loss=True))
    assert lossy.info == fuller.info[:1] and lossy.scope == "Public"


# -- tasks and answers ------------------------------------------------------------------------


def test_task_is_written_in_the_city_fields_codes_and_times() -> None:
    out = orjson.loads(QINGPU.encode_task(task_data()))
    assert out["xiaoxi_lx"] == "renwu_xiafa"
    assert out["renwu_bh"] == "7d0c1f5e-5a6b-5f0e-9a51-2b4c3d2e1f00"
    assert (out["faqi_fang"], out["jieshou_fang"]) == ("320509", "310118")
    assert out["yaoqiu_huifu"] == "qianshou" and out["yanlian"] == 0
    assert (out["xiafa_sj"], out["jiezhi_sj"]) == ("2026-07-01 08:30:05", "2026-07-01 09:00:05")
    assert out["yiju"] == {"yuan": "taipu-water-pollution", "xieyi": "yrd-demo-zone-2019",
                           "tiaokuan": "3.2"}  # fmt: skip
    js = orjson.loads(JIASHAN.encode_task(task_data(response="accept", lane="exercise")))
    assert js["消息类型"] == "联动任务" and js["回复要求"] == "接受" and js["演练"] == "是"
    assert js["下达时间"] == 1782865805000
    assert js["办结时限"] == "2026年07月01日 09时00分"  # a per-rule zone: Beijing time
    assert QINGPU.decode_task(QINGPU.encode_task(task_data()))["due"] == task_data()["task"]["due"]


def test_a_bare_task_is_taken_and_a_bad_payload_is_refused() -> None:
    assert QINGPU.encode_task(task_data()["task"]) == QINGPU.encode_task(task_data())
    with pytest.raises(DialectError, match=r"not a task.issued payload: task\.target"):
        QINGPU.encode_task({"task": {**task_data()["task"], "target": None}})


@pytest.mark.parametrize(
    ("dialect", "message", "expected"),
    [
        (QINGPU, {"renwu_bh": "t1", "huifu": "qianshou"}, TaskAnswerNative("t1", "acknowledge")),
        (QINGPU, {"renwu_bh": "t1", "huifu": "jujue", "yuanyin": "无人"},
         TaskAnswerNative("t1", "decline", "无人")),
        (JIASHAN, {"任务编号": "t2", "处理状态": 4}, TaskAnswerNative("t2", "done")),
        (JIASHAN, {"任务编号": "t2", "处理状态": "2"}, TaskAnswerNative("t2", "accept")),
    ],
)  # fmt: skip
def test_answers_are_read_and_written(
    dialect: Dialect, message: dict[str, Any], expected: TaskAnswerNative
) -> None:
    assert dialect.decode_answer(raw(message)) == expected
    assert dialect.decode_answer(dialect.encode_answer(expected)) == expected


def test_an_unknown_answer_code_names_the_field_and_the_code() -> None:
    with pytest.raises(
        DialectError,
        match=r"native field '处理状态' \(answer answer\): unknown "
        r"code '9' \(table '处理状态' has no default; known: 1, 2, 3, 4\)",
    ):
        JIASHAN.decode_answer(raw({"任务编号": "t2", "处理状态": 9}))


# -- what a message can get wrong ---------------------------------------------------------------


def qingpu_with(path: str, value: Any) -> bytes:
    doc = native("qingpu_incident.json")
    node = doc
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw(doc)


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("shijian.dengji", 7, r"native field 'shijian\.dengji' \(CAP info\.0\.severity\): "
         r"unknown code '7'"),
        ("baowen_lx", "gaibian", r"'baowen_lx' \(CAP msgType\): unknown code 'gaibian'"),
        ("shijian_bh", DELETE, r"'shijian_bh' \(CAP identifier\): missing, and the mapping "
         r"requires it"),
        ("shijian_bh", "QP 42", r"native field 'shijian_bh' \(CAP identifier\): .*without "
         r"spaces"),
        ("fabu_sj", "2026/07/01 08:30", r"'fabu_sj' \(CAP sent\): '2026/07/01 08:30' does not "
         r"match the time format '%Y-%m-%d %H:%M:%S'"),
        ("fabu_sj", "2026-02-30 08:30:00", r"'fabu_sj'.*not a real time"),
        ("weizhi", "青浦", r"'weizhi' is text, so 'weizhi\.\w+' cannot be read"),
        ("weizhi.zuobiao", [31.03, 120.9], r"'weizhi\.zuobiao'.*outside WGS-84 ranges \(the "
         r"dialect declares lon,lat order; are these the other way round\?\)"),
        ("weizhi.zuobiao", [120.9], r"'weizhi\.zuobiao'.*has two numbers, this one has 1"),
        ("weizhi.banjing", -5, r"'weizhi\.banjing'.*radius must not be negative"),
        ("weizhi.xzqh_dm", ["31011"], r"'weizhi\.xzqh_dm'.*'31011' is not a GB/T 2260"),
        ("weizhi.xzqh_dm", ["990100"], r"'990100' is not a GB/T 2260"),
        ("weizhi.fanwei", [[120.8, 31.0], [120.9, 31.0]], r"'weizhi\.fanwei'.*at least three"),
        ("weizhi.fanwei", [[120.8, "x"]], r"'weizhi\.fanwei'.*point 0: 'x' is not a number"),
        ("shijian.biaoti", {"zh": "泄漏"}, r"'shijian\.biaoti' \(CAP info\.0\.headline\): text "
         r"was expected, not an object"),
        ("weizhi.gaocheng", float("nan"), None),  # orjson writes NaN as null: absent, fine
        ("weizhi.gaocheng", "high", r"'weizhi\.gaocheng'.*'high' is not a number"),
    ],
)  # fmt: skip
def test_a_bad_message_names_the_native_field_and_the_problem(
    path: str, value: Any, expected: str | None
) -> None:
    if expected is None:
        QINGPU.decode_incident(qingpu_with(path, value))
        return
    with pytest.raises(DialectError, match=expected) as caught:
        QINGPU.decode_incident(qingpu_with(path, value))
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize(
    ("datum", "refused"),
    [("GCJ02", "GCJ-02"), ("BD09", "BD-09"), ("WGS84", None), ("CGCS2000", None)],
)
def test_gcj02_and_bd09_are_refused_never_shifted(datum: str, refused: str | None) -> None:
    message = qingpu_with("weizhi.zuobiaoxi", datum)
    if refused is None:
        assert QINGPU.decode_incident(message).info[0].area[0].circle == ["31.03,120.9 2.0"]
        return
    with pytest.raises(
        DialectError,
        match=rf"'weizhi\.zuobiaoxi' \(coordinate datum\): the "
        rf"message says its coordinates are {refused}; .* does not shift",
    ):
        QINGPU.decode_incident(message)


def test_datum_names_not_in_the_table_are_errors_and_absent_is_the_default() -> None:
    assert QINGPU.decode_incident(qingpu_with("weizhi.zuobiaoxi", DELETE)).info
    with pytest.raises(DialectError, match=r"'位置\.坐标系'.*unknown code '北京54'"):
        doc = native("jiashan_incident.json")
        doc["位置"]["坐标系"] = "北京54"
        JIASHAN.decode_incident(raw(doc))
    doc = native("jiashan_incident.json")
    doc["位置"]["坐标系"] = "火星坐标"
    with pytest.raises(DialectError, match="GCJ-02"):
        JIASHAN.decode_incident(raw(doc))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"", r"qingpu-yjld: not JSON"),
        (b"\xff\xfe{}", r"not JSON"),
        (b"[1, 2]", r"a message must be a JSON object, not an array"),
        (b'"text"', r"not text"),
        (b"{" * 5000, r"not JSON"),
        (b" " * (1 << 20) + b"{}", r"message is 1048578 bytes; the limit is 1048576"),
    ],
)
def test_what_is_not_a_json_object_is_refused(message: bytes, expected: str) -> None:
    with pytest.raises(DialectError, match=expected):
        QINGPU.decode_incident(message)


def test_a_message_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(DialectError, match="must be bytes, not str"):
        QINGPU.decode_incident("{}")  # type: ignore[arg-type]


# -- the mapping file ---------------------------------------------------------------------------

BASE = """\
dialect: test-city
time_zone: Asia/Shanghai
tables:
  level: {values: {1: Extreme, 2: Severe}, default: Unknown}
incident:
  fields:
    identifier: {from: id}
    sender: {value: "310118"}
    sent: {from: t, time: epoch_s}
    status: {value: Actual}
    msgType: {value: Alert}
    scope: {value: Public}
    info.0.category.0: {value: Other}
    info.0.event: {from: name}
    info.0.urgency: {value: Unknown}
    info.0.severity: {from: level, table: level, default: Unknown}
    info.0.certainty: {value: Unknown}
"""


def mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_minimal_mapping_decodes_epoch_seconds_and_table_defaults(tmp_path: Path) -> None:
    dialect = Dialect.load(mapping(tmp_path, BASE))
    incident = dialect.decode_incident(b'{"id": "A1", "t": 1782865800, "name": "x", "level": 9}')
    assert incident.sent == "2026-07-01T08:30:00+08:00"
    assert incident.info[0].severity == "Unknown"  # 9 is not in the table: its default
    out = orjson.loads(dialect.encode_incident(incident))
    assert out == {"id": "A1", "t": 1782865800, "name": "x"}  # Unknown has no code: left out
    assert dialect.decode_incident(raw(out)) == incident


SENT = "    sent: {from: t, time: epoch_s}"
SEVERITY = "    info.0.severity: {from: level, table: level, default: Unknown}"
LAST = "    info.0.certainty: {value: Unknown}"


@pytest.mark.parametrize(
    ("old", "new", "line", "expected"),
    [
        (SENT, "    sent: {form: t}", 9, "sent.form: Extra inputs are not permitted"),
        (SEVERITY, "    info.0.sevrity: {from: level}", 16, "'sevrity' is not a field of Info"),
        (SEVERITY, "    info.0.severity: {from: level, table: levels, default: Unknown}", 16,
         "table: no table named 'levels'"),
        (SEVERITY, SEVERITY[:-1] + ", time: iso}", 16, "'time' belongs to a time field"),
        (SENT, "    sent: {from: t, time: '%Y-%m-%d'}", 9, "time pattern '%Y-%m-%d' lacks %H %M"),
        (SENT, "    sent: {from: t, time: '%d.%m.%y %H:%M'}", 9, "'%y' is not supported"),
        (SENT, "    sent: {from: t, value: x}", 9, "give exactly one of: from, value"),
        ("    scope: {value: Public}", "    scope: {value: Everyone}", 12,
         "'Everyone' is not one of Private, Public, Restricted"),
        ("    identifier: {from: id}", "    identifier: {from: id}\n    identifier: {from: x}", 8,
         "duplicate key"),
        (LAST, LAST + "\n    info.0: {from: x}", 18, "'info.0' is a group, not a value"),
        (LAST, LAST + "\n    info.0.area.0.circle.0: {from: c}", 18,
         "takes 'point', or 'lat' and 'lon'"),
        (LAST, LAST + "\n    info.0.category: {from: k}", 18, "overlaps another rule"),
        (LAST, LAST + "\n    info.0.eventCode.0: {from: k}", 18, "'value_name' is required"),
        (LAST, LAST + "\n    info.0.area.0.altitude: {from: k, unit: mi}", 18,
         "unit: Input should be 'm', 'km' or 'ft'"),
    ],
)  # fmt: skip
def test_a_bad_mapping_names_file_line_and_problem(
    tmp_path: Path, old: str, new: str, line: int, expected: str
) -> None:
    assert old in BASE
    path = mapping(tmp_path, BASE.replace(old, new))
    with pytest.raises(DialectError, match=re.escape(expected)) as caught:
        Dialect.load(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)


def test_a_mapping_must_cover_the_fields_cap_requires(tmp_path: Path) -> None:
    path = mapping(tmp_path, BASE.replace("    info.0.event: {from: name}\n", ""))
    with pytest.raises(DialectError, match=r"city\.yaml:\d+: .*gives no rule for info\.0\.event"):
        Dialect.load(path)


def test_table_values_must_be_values_of_the_field(tmp_path: Path) -> None:
    path = mapping(tmp_path, BASE.replace("2: Severe}", "2: Grave}"))
    with pytest.raises(
        DialectError,
        match=r":16: .*table 'level' gives Grave, not values of "
        r"info\.0\.severity",
    ):
        Dialect.load(path)


def test_not_yaml_and_a_bad_zone_are_mapping_errors(tmp_path: Path) -> None:
    with pytest.raises(DialectError, match=r"city\.yaml:2: not valid YAML"):
        Dialect.load(mapping(tmp_path, "dialect: x\n  - : [\n"))
    with pytest.raises(DialectError, match=r":2: time_zone: 'Mars/Olympus' is not an IANA"):
        Dialect.load(mapping(tmp_path, BASE.replace("Asia/Shanghai", "Mars/Olympus")))
    with pytest.raises(DialectError, match="cannot read the mapping"):
        Dialect.load(tmp_path / "absent.yaml")


def test_sections_the_mapping_lacks_say_so(tmp_path: Path) -> None:
    dialect = Dialect.load(mapping(tmp_path, BASE))
    with pytest.raises(DialectError, match="has no 'task' section"):
        dialect.encode_task(task_data())
    with pytest.raises(DialectError, match="has no 'answer' section"):
        dialect.decode_answer(b"{}")


def test_lat_lon_fields_iso_times_and_lists_of_codes(tmp_path: Path) -> None:
    text = BASE.replace("time: epoch_s", "time: iso").replace(
        "    info.0.category.0: {value: Other}\n", ""
    ) + (
        "    info.0.category: {from: kinds, table: kind}\n"
        "    info.0.area.0.areaDesc: {from: place}\n"
        "    info.0.area.0.circle.0: {lat: wd, lon: jd, radius: {from: r, unit: m}}\n"
        "    info.0.area.0.altitude: {from: h, unit: m}\n"
        "  native_constants: {kind: incident}\n"
    )
    text = text.replace("tables:\n", "tables:\n  kind: {values: {fire: Fire, smoke: Health}}\n")
    dialect = Dialect.load(mapping(tmp_path, text))
    message = {"id": "A", "t": "2026-07-01T00:30:00Z", "name": "n", "level": "1",
               "kinds": ["fire", "smoke"], "place": "p", "wd": "31.2", "jd": 121.5, "r": 500,
               "h": 304.8}  # fmt: skip
    incident = dialect.decode_incident(raw(message))
    assert incident.sent == "2026-07-01T08:30:00+08:00"
    info = incident.info[0]
    assert info.category == ["Fire", "Health"] and info.severity == "Extreme"
    assert info.area[0].circle == ["31.2,121.5 0.5"] and info.area[0].altitude == 1000.0  # ft
    out = orjson.loads(dialect.encode_incident(incident))
    assert out["kind"] == "incident" and out["kinds"] == ["fire", "smoke"]
    assert (out["wd"], out["jd"], out["r"], out["h"]) == (31.2, 121.5, 500, 304.8)
    assert out["t"] == "2026-07-01T08:30:00+08:00"
    with pytest.raises(DialectError, match=r"'wd \+ jd'.*latitude and longitude come together"):
        dialect.decode_incident(raw({**message, "jd": None}))


def test_paths_with_list_indices_read_and_write_arrays(tmp_path: Path) -> None:
    text = BASE + (
        "    info.0.contact: {from: 'people[1].phone', optional: true}\n"
        "    info.0.area.0.areaDesc: {from: places.0.name}\n"
        "    info.0.area.0.circle.0: {lat: 'places[0].pos.1', lon: places.0.pos.0}\n"
    )
    dialect = Dialect.load(mapping(tmp_path, text))
    message = {"id": "A", "t": 1782865800, "name": "n", "level": 2,
               "people": [{"phone": "110"}, {"phone": "021-5972 0000"}],
               "places": [{"name": "金泽", "pos": [120.9, 31.03]}, {"name": "西塘"}]}  # fmt: skip
    incident = dialect.decode_incident(raw(message))
    assert incident.info[0].contact == "021-5972 0000"
    assert incident.info[0].area[0].areaDesc == "金泽"
    assert incident.info[0].area[0].circle == ["31.03,120.9 0.0"]
    out = orjson.loads(dialect.encode_incident(incident))
    assert out["people"] == [None, {"phone": "021-5972 0000"}]
    assert out["places"] == [{"name": "金泽", "pos": [120.9, 31.03]}]
    with pytest.raises(DialectError, match=r"'people' is text, so 'people\[1\]\.phone' cannot"):
        dialect.decode_incident(raw({**message, "people": "110"}))
    with pytest.raises(DialectError, match=r"'people\.1' is text"):  # a digit is a key here
        dialect.decode_incident(raw({**message, "people": {"1": "110"}}))
    short = dialect.decode_incident(raw({**message, "people": [{"phone": "110"}]}))
    assert short.info[0].contact is None  # no second person: the contact is absent


# -- the format's JSON Schema ---------------------------------------------------------------


def test_the_committed_json_schema_is_the_generated_one() -> None:
    committed = json.loads((CODECS / "schemas" / "dialect.schema.json").read_text("utf-8"))
    assert committed == json_schema(), "run: python -m adapters.codecs.dialect_spec > ..."
    jsonschema.Draft202012Validator.check_schema(committed)


@pytest.mark.parametrize("name", ["qingpu.yaml", "jiashan.yaml"])
def test_the_examples_are_valid_against_the_json_schema(name: str) -> None:
    schema = json.loads((CODECS / "schemas" / "dialect.schema.json").read_text("utf-8"))
    document = YAML(typ="safe", pure=True).load((EXAMPLES / name).read_text("utf-8"))
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    assert not errors, [e.message for e in errors]
    broken = {**document, "incident": {**document["incident"], "extra": 1}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def test_canonical_model_is_what_decode_returns() -> None:
    incident = QINGPU.decode_incident(raw(native("qingpu_incident.json")))
    assert isinstance(incident, Incident)
