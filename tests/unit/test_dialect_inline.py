"""The generated decoder's in-line reads (``dialect_codegen``): each object on a path is read
once, and whatever the in-line read does not handle (a parent that is no object, a value the
conversion refuses, an absent required field) still reaches the rule's own decoder, whose
error names the native field and the canonical one."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.codecs.dialect import Dialect, DialectError

EXAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "codecs" / "examples"
DIALECT = Dialect.load(EXAMPLES / "qingpu.yaml")
MESSAGE = orjson.loads((EXAMPLES / "qingpu_incident.json").read_bytes())


def decode(change: Callable[[dict[str, Any]], None]) -> Any:
    message = copy.deepcopy(MESSAGE)
    change(message)
    return DIALECT.decode_incident(orjson.dumps(message))


def test_each_object_on_a_path_is_read_once() -> None:
    source: str = DIALECT._incident.decode.__source__  # type: ignore[attr-defined]
    for key in ("shijian", "weizhi", "lianxi"):
        assert source.count(f"doc.get({key!r})") == 1, key


def test_absent_optional_fields_and_parents_are_simply_absent() -> None:
    def drop(message: dict[str, Any]) -> None:
        del message["lianxi"]
        del message["beizhu"]
        del message["shijian"]["fasheng_sj"]
        del message["weizhi"]["fanwei"]
        message["weizhi"]["xzqh_dm"] = None

    info = decode(drop).info[0]
    assert info.contact is None and info.onset is None
    assert info.area[0].polygon == [] and info.area[0].geocode == []
    assert decode(lambda m: None).info[0].contact == "021-5972 0000"


@pytest.mark.parametrize(
    ("change", "path", "says"),
    [
        (  # an optional field under a parent that is text: an error, not absent
            lambda m: m.__setitem__("lianxi", "021-5972 0000"),
            "lianxi.dianhua",
            "(CAP info.0.contact): 'lianxi' is text, so 'lianxi.dianhua' cannot be read",
        ),
        (
            lambda m: m.__setitem__("shijian", "text"),
            "shijian.leixing_dm",
            "(CAP info.0.category.0): 'shijian' is text, so 'shijian.leixing_dm' cannot be read",
        ),
        (
            lambda m: m["shijian"].__setitem__("fasheng_sj", "2026-13-01 07:55:00"),
            "shijian.fasheng_sj",
            "(CAP info.0.onset): '2026-13-01 07:55:00' is not a real time: month must be in",
        ),
        (
            lambda m: m.__setitem__("fabu_sj", "2026-07-01T08:30:00"),
            "fabu_sj",
            "(CAP sent): '2026-07-01T08:30:00' does not match the time format",
        ),
        (
            lambda m: m.__delitem__("fabu_sj"),
            "fabu_sj",
            "(CAP sent): missing, and the mapping requires it",
        ),
        (
            lambda m: m["weizhi"].__setitem__("xzqh_dm", ["310118", "12345"]),
            "weizhi.xzqh_dm",
            "(CAP info.0.area.0.geocode): '12345' is not a GB/T 2260 administrative code",
        ),
        (
            lambda m: m["weizhi"].__setitem__("xzqh_dm", ["３１０１１８"]),  # full-width digits
            "weizhi.xzqh_dm",
            "(CAP info.0.area.0.geocode): '３１０１１８' is not a GB/T 2260 administrative code",
        ),
        (
            lambda m: m["weizhi"].__setitem__("fanwei", [[1000, 31], [1, 2], [3, 4]]),
            "weizhi.fanwei",
            "(CAP info.0.area.0.polygon.0): point 0: latitude 31.0 / longitude 1000.0 are "
            "outside WGS-84 ranges",
        ),
        (
            lambda m: m["shijian"].__setitem__("wuranwu", ["苯"]),
            "shijian.wuranwu",
            "(CAP info.0.parameter.0): text was expected, not an array",
        ),
        (
            lambda m: m["weizhi"].__setitem__("banjing", "x"),
            "weizhi.banjing",
            "(CAP info.0.area.0.circle.0.radius): 'x' is not a number",
        ),
        (
            lambda m: m["weizhi"].__setitem__("gaocheng", True),
            "weizhi.gaocheng",
            "(CAP info.0.area.0.altitude): a number was expected, not a boolean",
        ),
    ],
)
def test_what_the_in_line_read_refuses_is_named_by_the_rule(
    change: Callable[[dict[str, Any]], None], path: str, says: str
) -> None:
    with pytest.raises(DialectError) as caught:
        decode(change)
    assert caught.value.path == path
    assert f"qingpu-yjld: native field '{path}' {says}" in str(caught.value)


def test_tiny_coordinates_are_written_in_fixed_point() -> None:
    def tiny(message: dict[str, Any]) -> None:
        message["weizhi"]["fanwei"] = [[120.82, 0.00001], [120.92, 31.03], [120.92, 31.05]]
        message["weizhi"]["zuobiao"] = [120.9, 0.00002]

    area = decode(tiny).info[0].area[0]
    assert area.polygon == ["0.00001,120.82 31.03,120.92 31.05,120.92 0.00001,120.82"]
    assert area.circle == ["0.00002,120.9 2.0"]
