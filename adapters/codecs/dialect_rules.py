"""One rule compiled into plain functions: read a canonical value from a native message, and
state what encoding must write back (see ``dialect_leaf``). Shapes are in ``dialect_areas``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from adapters.codecs import geo
from adapters.codecs.dialect_areas import circle, polygon
from adapters.codecs.dialect_leaf import (
    Codes,
    Context,
    Decode,
    Failure,
    Forward,
    Inline,
    Leaf,
    Problem,
    Writes,
    always,
)
from adapters.codecs.dialect_paths import MISSING, Target, getter, parse_path, setter
from adapters.codecs.dialect_spec import Rule
from adapters.codecs.dialect_values import CodeTable, TimeCodec, factor, text, tidy
from adapters.codecs.dialect_values import zone as zone_named


def _nothing(_: Any, __: Writes) -> None:
    return None


def compile_rule(ctx: Context, target: Target, rule: Rule) -> Leaf:
    """The rule for ``target`` as functions; Problem when the rule does not fit the target."""
    sources = [rule.from_, rule.value, rule.point or rule.lat or rule.lon, rule.points]
    if sum(s is not None for s in sources) != 1:
        raise Problem("give exactly one of: from, value, point (or lat + lon), points")
    if target.kind == "circle":
        return circle(ctx, target, rule, compile_rule)
    if target.kind == "polygon":
        return polygon(ctx, target, rule)
    if rule.from_ is None and rule.value is None:
        raise Problem(f"{target.name} takes 'from' or 'value'")
    if rule.radius is not None:
        raise Problem("'radius' belongs to a circle", "radius")
    if rule.zone is not None and target.kind != "time":
        raise Problem(f"'zone' belongs to a time field; {target.name} is not one", "zone")
    forward, backward = _converters(ctx, target, rule)
    label = f"{ctx.label} {target.name}"
    fits = _fits(target, rule)
    if rule.value is not None:
        constant = _constant(target, rule, rule.value, "value")
        mutable = type(constant) in (list, dict)

        def decode_constant(_: dict[str, Any]) -> Any:
            return copy.deepcopy(constant) if mutable else constant

        fixed = MISSING if mutable else constant
        return Leaf(target, "(a constant of the mapping)", decode_constant, _nothing, fits, fixed)
    native = str(rule.from_)
    get, put = getter(native), setter(native)
    has_default = rule.default is not None
    default = _constant(target, rule, rule.default, "default") if has_default else None
    mutable = type(default) in (list, dict)
    optional, many = rule.optional, target.many

    def decode(doc: dict[str, Any]) -> Any:
        try:
            raw = get(doc)
            if raw is MISSING:
                if has_default:
                    return copy.deepcopy(default) if mutable else default
                if optional:
                    return MISSING
                raise ValueError("missing, and the mapping requires it")
            if many:
                return [forward(item) for item in (raw if type(raw) is list else [raw])]
            return forward(raw)
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            raise Failure(native, label, str(exc)) from None

    fast: Decode = decode
    segments = parse_path(native)
    keys = tuple(key for key, _ in segments)
    in_line = len(segments) <= 3 and all(index is None for _, index in segments)
    absent_is_missing = optional and not has_default
    inline = None
    if target.kind == "text" and not many:
        lookup = _lookup(ctx.tables[rule.table]) if rule.table else None
        fast = _fast_text(get, decode, lookup)
        if in_line:
            inline = Inline(keys, lookup=lookup, absent_is_missing=absent_is_missing)
    elif in_line:
        inline = Inline(keys, convert=forward, many=many, absent_is_missing=absent_is_missing)

    def encode(value: Any, writes: Writes) -> None:
        if many:
            wanted = [(backward(v), v) for v in value]
            exact = [e if c is None else _first(c.codes, label, v) for (e, c), v in wanted]
            writes.want(native, put, exact, None, f"{label} = {value!r}")
        else:
            exact, codes = backward(value)
            if codes is not None and not codes.codes and has_default and value == default:
                return  # no code says it, and leaving the field out does
            writes.want(native, put, exact, codes, f"{label} = {_shown(value)}")

    return Leaf(target, native, fast, encode, fits, inline=inline)


def _lookup(table: CodeTable) -> dict[Any, str]:
    """A table as one dict from the native code (text, or a JSON number for digit codes) to
    the canonical text."""
    lookup: dict[Any, str] = {}
    for code, value in table.forward.items():
        lookup[code] = text(value)
        if code.isascii() and code.isdigit() and str(int(code)) == code:
            lookup[int(code)] = text(value)  # numeric codes come as JSON numbers too
    return lookup


def _fast_text(get: Decode, slow: Decode, lookup: dict[Any, str] | None) -> Decode:
    """Most fields are text, or a code found in its table: answer those in a line or two and
    leave everything else (absent, defaults, other types, errors) to the full decoder."""
    if lookup is None:

        def decode_text(doc: dict[str, Any]) -> Any:
            try:
                raw = get(doc)
            except ValueError:
                return slow(doc)  # which says what is wrong
            return raw if type(raw) is str else slow(doc)

        return decode_text

    def decode_code(doc: dict[str, Any]) -> Any:
        try:
            raw = get(doc)
        except ValueError:
            return slow(doc)
        kind = type(raw)
        if kind is str or kind is int:  # not bool: True would find code 1
            found = lookup.get(raw)
            if found is not None:
                return found
        return slow(doc)

    return decode_code


def _first(codes: list[Any], label: str, value: Any) -> Any:
    if not codes:
        raise ValueError(f"{label}: no code gives {value!r}")
    return codes[0]


def _shown(value: Any) -> str:
    if type(value) is dict and "value" in value:
        value = value["value"]
    return repr(value)


def _constant(target: Target, rule: Rule, value: Any, attr: str) -> Any:
    """A ``value`` or ``default`` of the mapping: already canonical, so no table or unit."""
    kind = target.kind
    try:
        if kind == "pair":
            canonical: Any = {"valueName": rule.value_name, "value": text(value)}
        elif kind == "geocode":
            canonical = {"valueName": geo.GB2260, "value": geo.gb2260(value)}
        elif kind == "number":
            canonical = geo.number(value)
        elif kind == "int":
            canonical = _integer(value)
        elif kind == "bool":
            canonical = _boolean(value)
        else:
            canonical = text(value)
    except ValueError as exc:
        raise Problem(str(exc), attr) from None
    if target.choices is not None and canonical not in target.choices:
        raise Problem(f"'{value}' is not one of {', '.join(sorted(target.choices))}", attr)
    return [canonical] if target.many else canonical


def _fits(target: Target, rule: Rule) -> Callable[[Any], bool]:
    if target.kind == "pair":
        name = rule.value_name
        return lambda item: type(item) is dict and item.get("valueName") == name
    if target.kind == "geocode":
        return lambda item: type(item) is dict and item.get("valueName") == geo.GB2260
    if rule.value is not None:
        constant = _constant(target, rule, rule.value, "value")
        return lambda item: bool(item == constant)
    return always


Backward = Callable[[Any], tuple[Any, Codes | None]]


def _converters(ctx: Context, target: Target, rule: Rule) -> tuple[Forward, Backward]:
    """Native item → canonical item, and canonical item → (exact native value | codes)."""
    kind = target.kind
    if rule.time is not None and kind != "time":
        raise Problem(f"'time' belongs to a time field; {target.name} is not one", "time")
    if rule.unit is not None and target.unit is None:
        raise Problem(f"'unit' belongs to a length; {target.name} is not one", "unit")
    if (rule.value_name is not None) != (kind == "pair"):
        raise Problem("'value_name' is required for eventCode/parameter, and only there")
    table = _table(ctx, target, rule)
    scale = factor(rule.unit, target.unit)
    name = rule.value_name
    lookup: Forward = table.decode if table else _same

    def back_code(canonical: Any) -> tuple[Any, Codes | None]:
        return (None, Codes(table, canonical)) if table else (canonical, None)

    if kind == "time":
        if table is not None:
            raise Problem("a time field takes no table", "table")
        zone = ctx.native_zone
        if rule.zone is not None:
            zone = _or_problem(zone_named, rule.zone, "zone")
        codec = _or_problem(lambda f: TimeCodec(f, zone, ctx.cap_zone), rule.time or "iso", "time")
        return codec.decode, lambda v: (codec.encode(v), None)
    if kind == "number":
        if table:
            return lambda raw: geo.number(lookup(raw)) * scale, back_code
        if scale == 1.0:
            return geo.number, lambda v: (tidy(float(v)), None)

        def scaled(raw: Any) -> float:
            kind = type(raw)
            # geo.number's usual case in line: a finite JSON number (int * float is float)
            usual = (kind is float or kind is int) and -1e300 < raw < 1e300
            value: float = raw if usual else geo.number(raw)
            # rounded to 1e-9 so that 304.8 m is 1000 ft, not 999.9999999999999
            return round(value * scale, 9)

        return scaled, lambda v: (tidy(round(float(v) / scale, 9)), None)
    if kind == "int":
        return lambda raw: _integer(lookup(raw)), back_code
    if kind == "bool":
        return lambda raw: _boolean(lookup(raw)), back_code
    if kind == "pair":
        if table is None:  # the common case, without a call to look nothing up

            def pair(raw: Any) -> dict[str, Any]:
                return {"valueName": name, "value": raw if type(raw) is str else text(raw)}

            return pair, lambda v: back_code(v["value"])
        return (
            lambda raw: {"valueName": name, "value": text(lookup(raw))},
            lambda v: back_code(v["value"]),
        )
    if kind == "geocode":
        if table is None:

            def geocode(raw: Any) -> dict[str, str]:
                if type(raw) is not str or not geo.is_gb2260(raw):
                    raw = geo.gb2260(raw)  # a number, or what is wrong
                return {"valueName": geo.GB2260, "value": raw}

            return geocode, lambda v: back_code(v["value"])
        return (
            lambda raw: {"valueName": geo.GB2260, "value": geo.gb2260(lookup(raw))},
            lambda v: back_code(v["value"]),
        )
    if table:
        return lambda raw: text(table.decode(raw)), back_code
    return text, back_code


def _table(ctx: Context, target: Target, rule: Rule) -> CodeTable | None:
    if rule.table is None:
        return None
    table = ctx.tables.get(rule.table)
    if table is None:
        known = ", ".join(ctx.tables) or "none"
        raise Problem(f"no table named '{rule.table}' (tables: {known})", "table")
    if target.choices is not None:
        bad = sorted({text(v) for v in table.values()} - target.choices)
        if bad:
            allowed = ", ".join(sorted(target.choices))
            raise Problem(
                f"table '{rule.table}' gives {', '.join(bad)}, not values of {target.name} "
                f"({allowed})",
                "table",
            )
    return table


def _or_problem(make: Callable[[str], Any], value: str, attr: str) -> Any:
    try:
        return make(value)
    except ValueError as exc:
        raise Problem(str(exc), attr) from None


def _same(value: Any) -> Any:
    return value


def _integer(value: Any) -> int:
    number = geo.number(value)
    if not number.is_integer():
        raise ValueError(f"{value} is not a whole number")
    return int(number)


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(f"true or false was expected, not {value!r}")
    return bool(value)
