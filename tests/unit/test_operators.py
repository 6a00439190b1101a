"""The condition operators, one by one, on the real region and zones; and the matcher's index
agreeing with a full evaluation on many generated incidents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.engine.conditions import holds, parse, trace
from hub.engine.evaluator import plan
from hub.engine.explain import explain
from hub.engine.fields import field_ref
from hub.engine.operators import OPERATORS, Context, Facts
from hub.engine.playbook import Playbook, load_playbooks
from hub.engine.spatial import Area, load_zones
from hub.model.envelope import Lane
from hub.model.incident import Incident
from hub.region import Region, load_region
from tests.factories import cap

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


@pytest.fixture(scope="module")
def ctx(region: Region) -> Context:
    return Context(load_zones(PLAYBOOKS / "zones"), region)


def _check(raw: dict[str, Any], message: dict[str, Any], ctx: Context) -> tuple[bool, str]:
    problems: list[tuple[Any, str]] = []
    node = parse(raw, ("c",), ctx, problems)
    assert node is not None, problems
    incident = Incident.model_validate(message)
    facts = Facts(incident, incident.info[0], Area(ctx.region, incident))
    ok = holds(node, facts)
    told = trace(node, facts)
    assert told.ok is ok  # the fast path and the explanation agree
    return ok, told.label


def test_every_operator_has_a_schema_and_a_summary() -> None:
    for op in OPERATORS.values():
        assert op.schema and op.summary, op.name


@pytest.mark.parametrize(
    ("raw", "change", "expected", "reason"),
    [
        ({"category_in": ["Env", "CBRNE"]}, {}, True, "category Env in Env/CBRNE"),
        ({"category_in": ["Fire"]}, {}, False, "category Env not in Fire"),
        ({"msg_type_in": ["Alert"]}, {}, True, "msgType Alert in Alert"),
        ({"severity_at_least": "Extreme"}, {}, False, "severity Severe < Extreme"),
        ({"severity_at_least": "Severe"}, {}, True, "severity Severe >= Severe"),
        ({"urgency_at_least": "Expected"}, {}, True, "urgency Immediate >= Expected"),
        ({"certainty_at_least": "Observed"}, {}, True, "certainty Observed >= Observed"),
        (
            {"field_equals": {"field": "sender", "value": "310118"}},
            {},
            True,
            "sender 310118 = 310118",
        ),
        (
            {"field_in": {"field": "scope", "values": ["Private", "Restricted"]}},
            {},
            False,
            "not in",
        ),
        ({"field_equals": {"field": "info.language", "value": "zh-CN"}}, {}, True, "zh-CN"),
        (
            {"field_equals": {"field": "info.parameter.waterLevel", "value": "4.5"}},
            {"parameter": [{"valueName": "waterLevel", "value": "4.5"}]},
            True,
            "info.parameter.waterLevel 4.5 = 4.5",
        ),
        (
            {"field_equals": {"field": "info.eventCode.GB", "value": "11B01"}},
            {},
            False,
            "info.eventCode.GB (absent) ≠ 11B01",
        ),
        ({"event_matches": "泄漏|spill"}, {}, True, "matches /泄漏|spill/"),
        ({"event_matches": "^TAIPU"}, {"event": "taipu spill"}, True, "matches"),
        (
            {"field_matches": {"field": "info.area.areaDesc", "pattern": "金泽"}},
            {},
            True,
            "info.area.areaDesc '青浦区金泽镇太浦河段' matches /金泽/",
        ),
    ],
)
def test_field_operators(
    raw: dict[str, Any], change: dict[str, Any], expected: bool, reason: str, ctx: Context
) -> None:
    message = cap("op")
    message["info"][0].update(change)
    ok, told = _check(raw, message, ctx)
    assert ok is expected
    assert reason in told


@pytest.mark.parametrize(
    ("raw", "circle", "expected", "reason"),
    [
        # Jinze, Qingpu, on the Taipu: at the Qingpu–Wujiang border.
        ({"near_border": {"km": 1}}, "31.03,120.90 2", True, "0.0 km <= 1 km from the city border"),
        (
            {"near_border": {"km": 1, "level": "province"}},
            "31.03,120.90 2",
            True,
            "province border",
        ),
        # Central Pudong: far from any other city.
        ({"near_border": {"km": 10}}, "31.22,121.55 1", False, "> 10 km from the city border"),
        (
            {"near_border": {"km": 10, "level": "district"}},
            "31.22,121.55 1",
            True,
            "district border",
        ),
        ({"in_zone": "taipu-river-corridor"}, "31.03,120.90 2", True, "area meets zone taipu"),
        ({"in_zone": "dianshan-lake"}, "31.03,120.90 0.5", False, "is outside zone dianshan-lake"),
        (
            {"in_zone": {"zone": "dianshan-lake", "within_km": 10}},
            "31.03,120.90 0.5",
            True,
            "<= 10 km",
        ),
        ({"in_zone": "yrd-demonstration-zone"}, "31.22,121.55 1", False, "outside"),
        ({"intersects_jurisdiction": ["330421"]}, "31.03,120.90 2", True, "area meets Jiashan"),
        ({"intersects_jurisdiction": ["330900", "330200"]}, "31.03,120.90 2", False, "none of"),
        ({"intersects_jurisdiction": ["320500"]}, "31.03,120.90 2", True, "area meets Suzhou"),
    ],
)
def test_spatial_operators(
    raw: dict[str, Any], circle: str, expected: bool, reason: str, ctx: Context
) -> None:
    ok, told = _check(raw, cap("sp", circle=circle), ctx)
    assert ok is expected, told
    assert reason in told


def test_spatial_operators_on_polygons_and_geocodes(ctx: Context) -> None:
    polygon = "31.00,120.88 31.06,120.88 31.06,120.94 31.00,120.94 31.00,120.88"
    message = cap("poly", circle=None)
    message["info"][0]["area"] = [{"areaDesc": "金泽", "polygon": [polygon]}]
    assert _check({"in_zone": "taipu-river-corridor"}, message, ctx)[0]
    assert _check({"near_border": {"km": 0.5}}, message, ctx)[0]
    message["info"][0]["area"] = [
        {"areaDesc": "嘉善县", "geocode": [{"valueName": "GB/T 2260", "value": "330421"}]}
    ]
    assert _check({"intersects_jurisdiction": ["310118"]}, message, ctx)[0]  # they border
    assert not _check({"in_zone": "dianshan-lake"}, message, ctx)[0]


def test_without_a_usable_area_spatial_tests_fail_and_say_so(ctx: Context) -> None:
    ok, told = _check({"near_border": {"km": 50}}, cap("nowhere", circle=None), ctx)
    assert not ok and told == "incident has no usable area"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"severity_at_least": "Serious"}, "'Serious' is not a severity"),
        ({"category_in": []}, "non-empty list"),
        (
            {"field_equals": {"field": "info.colour", "value": "x"}},
            "unknown CAP field 'info.colour'",
        ),
        ({"field_equals": {"field": "sender"}}, "missing value"),
        ({"event_matches": "(unclosed"}, "not a regular expression"),
        ({"near_border": {"km": 500}}, "km must be a number from 0 to 200"),
        ({"near_border": {"km": 5, "level": "county"}}, "not a border level"),
        ({"in_zone": "nowhere"}, "unknown zone 'nowhere'"),
        ({"intersects_jurisdiction": ["999999"]}, "not jurisdictions of the region"),
        ({"all": []}, "non-empty list"),
        ({"all": [{"severity_at_least": "Severe", "category_in": ["Env"]}]}, "exactly one key"),
        ({"sometimes": True}, "unknown operator 'sometimes'"),
    ],
)
def test_bad_arguments_are_refused_with_their_path(
    raw: dict[str, Any], message: str, ctx: Context
) -> None:
    problems: list[tuple[Any, str]] = []
    assert parse(raw, ("conditions",), ctx, problems) is None
    assert problems and message in problems[0][1]
    assert problems[0][0][0] == "conditions"


def test_field_paths() -> None:
    assert field_ref("info.area.geocode.GB").scope == "geocode"
    for bad in ("info", "info.area", "area.areaDesc", "info.parameter.", "identifier.x"):
        with pytest.raises(ValueError, match="unknown CAP field"):
            field_ref(bad)


# -- the index does not change what matches ----------------------------------------------------

_CATEGORIES = [
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
]
_EVENTS = [
    "太浦河化学品泄漏",
    "台风红色预警",
    "游船倾覆落水",
    "工业园区火灾",
    "古镇人群拥挤",
    "聚集性疫情",
    "高速危化品槽罐车泄漏",
    "暴雨内涝",
    "桥梁垮塌",
]
_SENDERS = [
    "310118",
    "320509",
    "330421",
    "310116",
    "330482",
    "320583",
    "330900",
    "330522",
    "310115",
]


@st.composite
def incidents(draw: st.DrawFn) -> Incident:
    info = {
        "language": "zh-CN",
        "category": draw(
            st.lists(st.sampled_from(_CATEGORIES), min_size=1, max_size=2, unique=True)
        ),
        "event": draw(st.sampled_from(_EVENTS)),
        "urgency": draw(st.sampled_from(["Immediate", "Expected", "Future"])),
        "severity": draw(st.sampled_from(["Extreme", "Severe", "Moderate", "Minor"])),
        "certainty": "Observed",
        "area": [
            {
                "areaDesc": "x",
                "circle": [
                    f"{draw(st.floats(29.9, 31.6)):.3f},{draw(st.floats(119.9, 122.2)):.3f} "
                    f"{draw(st.sampled_from([0.2, 1, 3, 20]))}"
                ],
            }
        ],
    }
    return Incident.model_validate(
        {
            "identifier": "gen",
            "sender": draw(st.sampled_from(_SENDERS)),
            "sent": "2026-07-01T08:30:00+08:00",
            "status": "Actual",
            "msgType": "Alert",
            "scope": "Public",
            "info": [info],
        }
    )


_LOADED: list[Playbook] = []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(incidents())
def test_the_indexed_planner_plans_what_a_full_evaluation_plans(incident: Incident) -> None:
    region = load_region()
    if not _LOADED:
        _LOADED.extend(load_playbooks(PLAYBOOKS, region))
    args: dict[str, Any] = {
        "thread": incident.key,
        "cause": "c",
        "reported_ms": 0,
        "lane": Lane.ACTUAL,
        "playbooks": _LOADED,
        "region": region,
    }
    fast = plan(incident, **args)
    full = explain(incident, **args)
    assert fast.tasks == full.plan.tasks
    assert [v.playbook for v in fast.verdicts] == [r.playbook.id for r in full.reports if r.matched]
    assert fast.failures == full.plan.failures == ()
