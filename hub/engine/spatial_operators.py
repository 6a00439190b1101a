"""The spatial operators: near a border, inside (or near) a named zone, touching a
jurisdiction. Each asks the incident's :class:`~hub.engine.spatial.Area`, which answers every
question once per incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.engine.operator_types import Context, Facts, Operator, km, mapping, one_of
from hub.engine.spatial import BORDER_LEVELS, BorderLevel, Zone, describe_pair


@dataclass(frozen=True, slots=True)
class NearBorder:
    km: float
    level: BorderLevel


def _compile_near_border(value: Any, _: Context) -> NearBorder:
    spec = mapping(value, {"km"}, frozenset({"level"}))
    level = one_of(spec.get("level", "city"), BORDER_LEVELS, "border level")
    return NearBorder(km(spec["km"]), level)  # type: ignore[arg-type]


def _near_border(f: Facts, arg: NearBorder) -> bool:
    return f.area.usable and f.area.near_border(arg.level, arg.km)


def _explain_near_border(f: Facts, arg: NearBorder, ok: bool) -> str:
    if not f.area.usable:
        return "incident has no usable area"
    found = f.area.border(arg.level)
    if found is None:
        return f"no {arg.level} border in the region"
    distance, pair = found
    where = describe_pair(f.area.region, pair)
    verb = "<=" if ok else ">"
    return f"{distance:.1f} km {verb} {arg.km:g} km from the {arg.level} border {where}"


@dataclass(frozen=True, slots=True)
class InZone:
    zone: Zone
    km: float


def _compile_in_zone(value: Any, ctx: Context) -> InZone:
    if isinstance(value, str):
        name, margin = value, 0.0
    else:
        spec = mapping(value, {"zone"}, frozenset({"within_km"}))
        name, margin = str(spec["zone"]), km(spec.get("within_km", 0))
    zone = ctx.zones.get(name)
    if zone is None:
        known = ", ".join(sorted(ctx.zones)) or "none"
        raise ValueError(f"unknown zone '{name}' (zones/*.geojson: {known})")
    return InZone(zone, margin)


def _in_zone(f: Facts, arg: InZone) -> bool:
    return f.area.usable and f.area.meets_zone(arg.zone, arg.km)


def _explain_in_zone(f: Facts, arg: InZone, ok: bool) -> str:
    if not f.area.usable:
        return "incident has no usable area"
    name = f"zone {arg.zone.name} ({arg.zone.title_zh})"
    if arg.km == 0.0 and ok:
        return f"area meets {name}"
    distance = f.area.zone_distance(arg.zone)
    if arg.km == 0.0:
        return f"area is outside {name}, {distance:.1f} km away"
    return f"area {distance:.1f} km {'<=' if ok else '>'} {arg.km:g} km from {name}"


@dataclass(frozen=True, slots=True)
class Codes:
    codes: tuple[str, ...]


def _compile_codes(value: Any, ctx: Context) -> Codes:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of GB/T 2260 codes")
    codes = tuple(str(v) for v in value)
    if unknown := [c for c in codes if not ctx.region.is_known(c)]:
        raise ValueError(f"not jurisdictions of the region: {', '.join(unknown)}")
    return Codes(codes)


def _meets_jurisdiction(f: Facts, arg: Codes) -> bool:
    return f.area.usable and any(f.area.meets_jurisdiction(c) for c in arg.codes)


def _explain_jurisdiction(f: Facts, arg: Codes, ok: bool) -> str:
    if not f.area.usable:
        return "incident has no usable area"
    if ok:
        hit = next(c for c in arg.codes if f.area.meets_jurisdiction(c))
        return f"area meets {f.area.region.jurisdiction(hit).name_en} {hit}"
    return f"area meets none of {', '.join(arg.codes)}"


_KM = {"type": "number", "minimum": 0, "maximum": 200}

SPATIAL: tuple[Operator, ...] = (
    Operator(
        "intersects_jurisdiction",
        "the incident's area touches one of these jurisdictions (GB/T 2260 codes)",
        {"type": "array", "items": {"type": "string", "pattern": "^[1-9][0-9]{5}$"}},
        _compile_codes,
        _meets_jurisdiction,
        _explain_jurisdiction,
        3,
    ),
    Operator(
        "in_zone",
        "the incident's area touches a named zone (playbooks/zones/NAME.geojson), or comes "
        "within_km of it",
        {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "object",
                    "properties": {"zone": {"type": "string"}, "within_km": _KM},
                    "required": ["zone"],
                    "additionalProperties": False,
                },
            ]
        },
        _compile_in_zone,
        _in_zone,
        _explain_in_zone,
        3,
    ),
    Operator(
        "near_border",
        "the incident's area lies within km of a border between two districts, two cities "
        "(the default) or two provinces",
        {
            "type": "object",
            "properties": {"km": _KM, "level": {"enum": list(BORDER_LEVELS)}},
            "required": ["km"],
            "additionalProperties": False,
        },
        _compile_near_border,
        _near_border,
        _explain_near_border,
        4,
    ),
)
