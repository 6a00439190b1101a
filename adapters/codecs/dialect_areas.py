"""Rules for an area's shapes: a circle from a centre (a pair, or latitude and longitude
fields) and a radius, a polygon from a ring of pairs; both in the dialect's coordinate order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.codecs import geo
from adapters.codecs.dialect_leaf import (
    Context,
    Failure,
    Inline,
    Leaf,
    Problem,
    Writes,
    always,
    quick,
)
from adapters.codecs.dialect_paths import MISSING, Target, getter, parse_path, setter
from adapters.codecs.dialect_spec import Rule
from hub.model.incident import parse_circle, parse_polygon

Compile = Callable[[Context, Target, Rule], Leaf]


def circle(ctx: Context, target: Target, rule: Rule, compile_rule: Compile) -> Leaf:
    """A CAP circle ("lat,lon radius_km") from the rule's centre and radius."""
    if rule.point is None and (rule.lat is None or rule.lon is None):
        raise Problem(f"{target.name} takes 'point', or 'lat' and 'lon', and a 'radius'")
    _no_extras(rule, ("table", "time", "unit", "value_name", "points", "default"))
    radius = _radius(ctx, target, rule.radius, compile_rule)
    radius_of = quick(radius) if radius else None
    label = f"{ctx.label} {target.name}"
    order, form, optional = ctx.order, ctx.form, rule.optional
    if rule.point is not None:
        native = rule.point
        get_point, put_point = getter(native), setter(native)

        swap = order == "lon,lat"

        def centre(doc: dict[str, Any]) -> tuple[float, float] | None:
            raw = get_point(doc)
            if raw is MISSING:
                return None
            if type(raw) is list and len(raw) == 2:  # the usual [x, y] of numbers, in range
                x, y = raw
                if (type(x) is float or type(x) is int) and (type(y) is float or type(y) is int):
                    lat, lon = (y, x) if swap else (x, y)
                    if -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
                        return float(lat), float(lon)
            return geo.lat_lon(*geo.pair(raw), order)

        def write_centre(lat: float, lon: float, writes: Writes) -> None:
            writes.want(native, put_point, geo.native_pair(lat, lon, order, form), None, label)

    else:
        native = f"{rule.lat} + {rule.lon}"
        get_lat, get_lon = getter(str(rule.lat)), getter(str(rule.lon))
        put_lat, put_lon = setter(str(rule.lat)), setter(str(rule.lon))

        def centre(doc: dict[str, Any]) -> tuple[float, float] | None:
            lat, lon = get_lat(doc), get_lon(doc)
            if lat is MISSING and lon is MISSING:
                return None
            if lat is MISSING or lon is MISSING:
                raise ValueError("latitude and longitude come together; one is missing")
            point = geo.number(lat), geo.number(lon)
            geo.check_lat_lon(*point)
            return point

        def write_centre(lat: float, lon: float, writes: Writes) -> None:
            writes.want(str(rule.lat), put_lat, lat, None, label)
            writes.want(str(rule.lon), put_lon, lon, None, label)

    def decode(doc: dict[str, Any]) -> Any:
        try:
            point = centre(doc)
        except (ValueError, TypeError) as exc:
            raise Failure(native, label, str(exc)) from None
        if point is None:
            if optional:
                return MISSING
            raise Failure(native, label, "missing, and the mapping requires it")
        size = radius_of(doc) if radius_of else 0.0
        try:
            return geo.circle_text(point[0], point[1], 0.0 if size is MISSING else size)
        except ValueError as exc:
            raise Failure(radius.native if radius else native, label, str(exc)) from None

    def encode(value: Any, writes: Writes) -> None:
        lat, lon, size = parse_circle(value)
        write_centre(lat, lon, writes)
        if radius:
            radius.encode(size, writes)

    return Leaf(target, native, decode, encode, always)


def _radius(ctx: Context, target: Target, rule: Rule | None, compile_rule: Compile) -> Leaf | None:
    if rule is None:
        return None
    where = Target((*target.path, "radius"), "number", False, None, "km")
    try:
        return compile_rule(ctx, where, rule)
    except Problem as exc:
        raise Problem(f"radius: {exc}", "radius") from None


def polygon(ctx: Context, target: Target, rule: Rule) -> Leaf:
    """A CAP polygon (closed "lat,lon ...") from the rule's ring."""
    if rule.points is None:
        raise Problem(f"{target.name} takes 'points' (the native path of the ring)")
    _no_extras(rule, ("table", "time", "unit", "value_name", "radius", "default"))
    native, label, order, form = rule.points, f"{ctx.label} {target.name}", ctx.order, ctx.form
    get, put, optional = getter(native), setter(native), rule.optional
    segments = parse_path(native)
    inline = None
    if len(segments) <= 3 and all(index is None for _, index in segments):
        swap = order == "lon,lat"

        def ring_text(raw: Any) -> str:
            if type(raw) is list:  # the usual ring, without a call to find that out
                text = geo.plain_ring_text(raw, swap)
                if text is not None:
                    return text
            return geo.ring_text(raw, order)

        keys = tuple(key for key, _ in segments)
        inline = Inline(keys, convert=ring_text, absent_is_missing=optional)

    def decode(doc: dict[str, Any]) -> Any:
        try:
            raw = get(doc)
            if raw is MISSING:
                if optional:
                    return MISSING
                raise ValueError("missing, and the mapping requires it")
            return geo.ring_text(raw, order)
        except (ValueError, TypeError) as exc:
            raise Failure(native, label, str(exc)) from None

    def encode(value: Any, writes: Writes) -> None:
        writes.want(native, put, geo.native_ring(parse_polygon(value), order, form), None, label)

    return Leaf(target, native, decode, encode, always, inline=inline)


def _no_extras(rule: Rule, attrs: tuple[str, ...]) -> None:
    for attr in attrs:
        if getattr(rule, attr) is not None:
            raise Problem(f"'{attr}' does not apply to an area's shape", attr)
