"""The fast paths of incident validation and dialect decoding accept exactly what the long ways
accept, and give the long ways' answers and errors.

Each fast path is a "yes" only: the Rust regular expressions of ``hub.model.incident`` (checked
in pydantic-core), the early return of ``Incident._cap_rules``, and the dialect's in-line
conversions (``geo.circle_text``, ``geo.plain_ring_text``, the ISO-like time codec, geocodes,
scaled lengths). The references below are the long ways as they were written before the fast
paths (copied here, so that a change to the module cannot move both sides at once).
"""

from __future__ import annotations

import copy
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.codecs import geo
from adapters.codecs.dialect import Dialect, DialectError
from adapters.codecs.dialect_values import TimeCodec
from hub.model import incident as model
from hub.model.incident import Area, Incident, check_circle, check_polygon
from hub.model.incident import parse_circle as slow_circle
from hub.model.incident import parse_polygon as slow_polygon
from tests.factories import cap

EXAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "codecs" / "examples"
QINGPU = Dialect.load(EXAMPLES / "qingpu.yaml")
MESSAGE = orjson.loads((EXAMPLES / "qingpu_incident.json").read_bytes())
MANY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the long ways, as they were -----------------------------------------------------------------

_CAP_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
_CAP_TOKEN = re.compile(r"^[^\s,&<]+$")


def slow_datetime(value: str) -> str:
    if not _CAP_DATETIME.match(value):
        raise ValueError(
            "must be a CAP dateTime with a numeric UTC offset, e.g. 2026-07-01T08:30:00+08:00"
        )
    datetime.fromisoformat(value)
    return value


def slow_token(value: str) -> str:
    if not value or not _CAP_TOKEN.match(value):
        raise ValueError("must be non-empty, without spaces, commas, '&' or '<'")
    return value


class SlowArea(BaseModel):
    """``Area`` with the validators it had before the fast paths."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    areaDesc: str = Field(min_length=1)  # noqa: N815 (CAP's name)
    polygon: list[str] = Field(default_factory=list)
    circle: list[str] = Field(default_factory=list)
    geocode: list[model.ValuePair] = Field(default_factory=list)
    altitude: float | None = None
    ceiling: float | None = None

    @field_validator("polygon")
    @classmethod
    def _polygons(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            try:
                slow_polygon(text)
            except ValueError as exc:
                raise ValueError(f"polygon {i}: {exc}") from None
        return value

    @field_validator("circle")
    @classmethod
    def _circles(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            try:
                slow_circle(text)
            except ValueError as exc:
                raise ValueError(f"circle {i}: {exc}") from None
        return value


def outcome(check: Any, value: Any) -> tuple[str, Any]:
    """("ok", result) or (exception type, message): what a check says about ``value``."""
    try:
        return "ok", check(value)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)


def errors(model_type: type[BaseModel], data: Any) -> list[Any] | None:
    """The validation errors (ctx errors as text, so that they compare), or None."""
    try:
        model_type.model_validate(data)
    except ValidationError as exc:
        found = exc.errors(include_url=False)
        for err in found:
            if "ctx" in err:
                err["ctx"] = {k: str(v) for k, v in err["ctx"].items()}
        return found
    return None


# -- strategies ----------------------------------------------------------------------------------

# near misses: ASCII digits and the separators, Unicode digits and spaces, a trailing newline
_ALPHABET = st.sampled_from([*"0123456789.,+- T:Z\n\t&<", "٣", "\u3000", "\x1c", "é"])
fuzz_text = st.text(_ALPHABET, max_size=40) | st.text(max_size=30)


def _number(low: float, high: float) -> st.SearchStrategy[str]:
    whole = st.integers(int(low) - 2, int(high) + 2).map(str)
    floats = st.floats(low - 2, high + 2).map(lambda x: f"{x:.{abs(hash(x)) % 7}f}")
    fixed = st.sampled_from(
        [f"{high:g}", f"{high:g}.0", f"{high:g}.000", f"{high:g}.01", "0", "-0"]
    )
    signed = st.tuples(st.sampled_from(["", "+", "-"]), whole | floats | fixed)
    return signed.map(lambda t: t[0] + t[1].lstrip("-") if t[0] else t[1])


lat_text = _number(-90, 90)
lon_text = _number(-180, 180)
pair_text = st.tuples(lat_text, lon_text).map(lambda t: f"{t[0]},{t[1]}")


@st.composite
def polygon_texts(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(pair_text, min_size=1, max_size=6))
    if draw(st.integers(0, 4)):
        pairs.append(pairs[0])  # closed, as CAP wants
    seps = draw(st.sampled_from([" "] * 6 + ["  ", "\t", "\n"]))
    return seps.join(pairs) + draw(st.sampled_from([""] * 6 + [" ", "\n"]))


circle_texts = st.tuples(pair_text, _number(-5, 5000), st.sampled_from([" ", " ", "  ", "\t"])).map(
    lambda t: f"{t[0]}{t[2]}{t[1]}"
)

datetime_texts = st.tuples(
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["+", "-", "Z", " "]),
    st.integers(0, 25),
    st.sampled_from(["", "\n", ".5", ":00"]),
).map(lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}{t[6]}"
      f"{t[7]:02d}:00{t[8]}")  # fmt: skip


# -- hub.model.incident --------------------------------------------------------------------------


@MANY
@given(text=fuzz_text | st.from_regex(r"[!-~]{1,20}", fullmatch=True))
@example(text="abc\n")
@example(text="a\x1cb")
@example(text="")
def test_token_fast_path_accepts_only_what_the_long_way_accepts(text: str) -> None:
    if model._PLAIN_TOKEN(text):
        assert slow_token(text) == text
    assert outcome(model._cap_token, text) == outcome(slow_token, text)


@MANY
@given(text=fuzz_text | datetime_texts)
@example(text="2026-07-01T08:30:00+08:00")
@example(text="2026-07-01T08:30:00+08:00\n")
@example(text="2026-13-40T08:30:00+08:00")
@example(text="٢٠٢٦-07-01T08:30:00+08:00")
def test_datetime_fast_path_accepts_only_what_the_long_way_accepts(text: str) -> None:
    if model._PLAIN_DATETIME(text):  # the format only: fromisoformat decides the calendar
        assert _CAP_DATETIME.match(text)
    assert outcome(model._cap_datetime, text) == outcome(slow_datetime, text)


@MANY
@given(text=polygon_texts() | fuzz_text)
@example(text="31.03,120.82 31.03,120.92 31.05,120.92 31.05,120.82 31.03,120.82")
@example(text="31,120 31,121 32,121 31.0,120")  # closed as points, not as text
@example(text="31,120 31,121 32,121 31,1200")
@example(text="90.0,180 31,121 32,121 90.0,180")
@example(text="90.01,180 31,121 32,121 90.01,180")
def test_polygon_fast_path_accepts_only_what_the_long_way_accepts(text: str) -> None:
    if model._plain_polygon(text):
        slow_polygon(text)
    assert outcome(check_polygon, text)[0] == outcome(slow_polygon, text)[0]
    assert outcome(check_polygon, text)[1] in (None, outcome(slow_polygon, text)[1])


@MANY
@given(text=circle_texts | fuzz_text)
@example(text="31.03,120.9 2.0")
@example(text="31.03,120.9 -2.0")
@example(text="91,120.9 2")
def test_circle_fast_path_accepts_only_what_the_long_way_accepts(text: str) -> None:
    if model._PLAIN_CIRCLE(text):
        slow_circle(text)
    assert outcome(check_circle, text)[0] == outcome(slow_circle, text)[0]
    assert outcome(check_circle, text)[1] in (None, outcome(slow_circle, text)[1])


@MANY
@given(
    polygons=st.lists(polygon_texts() | fuzz_text, max_size=3),
    circles=st.lists(circle_texts | fuzz_text, max_size=3),
    geocode=st.sampled_from([[], [{"valueName": "GB/T 2260", "value": "310118"}], [{"x": 1}]]),
)
def test_area_errors_are_the_long_ways(
    polygons: list[str], circles: list[str], geocode: list[Any]
) -> None:
    data = {"areaDesc": "金泽镇", "polygon": polygons, "circle": circles, "geocode": geocode}
    assert errors(Area, data) == errors(SlowArea, data)


def _slow_cap_rules(message: dict[str, Any]) -> str | None:
    """What ``Incident._cap_rules`` said before its early return (None: nothing)."""
    scope, references = message["scope"], message.get("references")
    if scope == "Restricted" and not message.get("restriction"):
        return "restriction is required when scope is Restricted"
    if scope == "Private" and not message.get("addresses"):
        return "addresses is required when scope is Private"
    if message["msgType"] in ("Update", "Cancel", "Ack", "Error") and not references:
        return f"references is required when msgType is {message['msgType']}"
    for item in (references or "").split():
        parts = item.split(",")
        if len(parts) != 3 or not all(parts):
            return f"references entry '{item}' is not 'sender,identifier,sent'"
    return None


@pytest.mark.parametrize("scope", ["Public", "Restricted", "Private"])
@pytest.mark.parametrize("msg_type", ["Alert", "Update", "Cancel", "Ack", "Error"])
@pytest.mark.parametrize("restriction", [None, "", "公安内部"])
@pytest.mark.parametrize("addresses", [None, "", "310118 320509"])
@pytest.mark.parametrize("references", [None, "", "310118,a1,2026-07-01T08:30:00+08:00", "x"])
def test_cap_rules_say_what_they_said(
    scope: str,
    msg_type: str,
    restriction: str | None,
    addresses: str | None,
    references: str | None,
) -> None:
    message = cap("r1", msg_type=msg_type, scope=scope, restriction=restriction,
                  addresses=addresses)  # fmt: skip
    if references is not None:
        message["references"] = references
    expected = _slow_cap_rules(message)
    found = errors(Incident, message)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert [(e["loc"], e["msg"]) for e in found] == [((), f"Value error, {expected}")]


# -- the dialect's conversions -------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
any_float = st.floats() | st.sampled_from([0.0, -0.0, 1e-4, 9.99e-5, 1e16, 9.999e15, 1e-5])


@MANY
@given(lat=any_float, lon=any_float, radius=any_float | st.integers(0, 10**6))
def test_circle_text_is_fmt(lat: float, lon: float, radius: float) -> None:
    if radius < 0:
        with pytest.raises(ValueError, match="must not be negative"):
            geo.circle_text(lat, lon, radius)
    else:
        assert (
            geo.circle_text(lat, lon, radius) == f"{geo.fmt(lat)},{geo.fmt(lon)} {geo.fmt(radius)}"
        )


coordinate = (
    st.floats(-200, 200)
    | st.floats(-2e-4, 2e-4)
    | st.integers(-200, 200)
    | st.sampled_from([0.0, -0.0, 90.0, -90.0, 180.0, 1e-4, 1e-5, True, None, "31.0"])
)
usual = st.floats(-90, 90) | st.integers(-90, 90)  # hypothesis mixes in 0.0 and tiny ones
usual_pair = st.tuples(usual, usual).map(list)  # in range either way round
native_pair = st.lists(coordinate, min_size=2, max_size=2) | st.lists(coordinate, max_size=3)
ring_value = st.one_of(
    st.lists(usual_pair, min_size=2, max_size=6),
    st.lists(usual_pair, min_size=2, max_size=6).map(lambda ring: ring + ring[:1]),
    st.lists(usual_pair | native_pair, max_size=6),
)


def _long_way(value: Any, order: geo.Order) -> tuple[str, Any]:
    return outcome(lambda v: geo.polygon_text(geo.ring(v, order)), value)


@MANY
@given(value=ring_value, order=st.sampled_from(["lat,lon", "lon,lat"]))
@example(
    value=[[120.82, 31.03], [120.92, 31.03], [120.92, 31.05], [120.82, 31.05]], order="lon,lat"
)
def test_plain_ring_text_is_the_long_way(value: Any, order: geo.Order) -> None:
    text = geo.plain_ring_text(value, order == "lon,lat")
    if text is not None:
        assert ("ok", text) == _long_way(value, order)
    assert outcome(lambda v: geo.ring_text(v, order), value) == _long_way(value, order)


@MANY
@given(
    raw=fuzz_text
    | st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}", fullmatch=True)
    | st.integers(0, 10**14),
    pattern=st.sampled_from(["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]),
)
@example(raw="2026-07-01 08:30:00", pattern="%Y-%m-%d %H:%M:%S")
@example(raw="2026-07-01 08:30:00\n", pattern="%Y-%m-%d %H:%M:%S")
@example(raw="2026-02-30 08:30:00", pattern="%Y-%m-%d %H:%M:%S")
@example(raw="2026-07-01T08:30:00", pattern="%Y-%m-%dT%H:%M:%S")
def test_iso_like_times_are_the_long_way(raw: Any, pattern: str) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    codec = TimeCodec(pattern, shanghai, shanghai)
    assert codec.decode is not codec._decode_pattern  # the fast path is in use
    assert outcome(codec.decode, raw) == outcome(codec._decode_pattern, raw)


def _decode(change: dict[str, Any]) -> tuple[str, Any]:
    message = copy.deepcopy(MESSAGE)
    message["weizhi"].update(change)
    try:
        area = QINGPU.decode_incident(orjson.dumps(message)).info[0].area[0]
    except DialectError as exc:
        return "DialectError", str(exc)
    return "ok", (area.circle, [g.value for g in area.geocode])


radius_value = (
    st.integers(-10, 10**7)
    | finite
    | st.sampled_from([304.8, 1e299, 1e301, -0.0, True, "2000", "x", None, [1]])
)
geocode_value = st.sampled_from(
    ["310118", "320509", "990000", "31011", "3101180", "٣١٠١١٨", 310118, 310118.0, True, None, [1]]
)


@MANY
@given(radius=radius_value, codes=st.lists(geocode_value, max_size=3) | geocode_value)
def test_circle_radius_and_geocodes_decode_as_the_long_way(radius: Any, codes: Any) -> None:
    """Through the Qingpu dialect: the radius (metres → km, scaled in line) and the geocodes
    (six digits in line) come out as ``geo.number`` and ``geo.gb2260`` make them."""
    status, found = _decode({"banjing": radius, "xzqh_dm": codes})
    try:
        size = 0.0 if radius is None else round(geo.number(radius) * 0.001, 9)
        items = codes if type(codes) is list else [codes]
        expected_codes = [geo.gb2260(c) for c in items] if codes is not None else []
        if size < 0 or math.isnan(size):
            raise ValueError(size)
    except (ValueError, TypeError):
        assert status == "DialectError"
        return
    assert status == "ok", found
    circle, geocodes = found
    assert circle == [f"31.03,120.9 {geo.fmt(size)}"]
    assert geocodes == expected_codes
