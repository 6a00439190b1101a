"""The condition operators: a table of pure functions, each with the JSON Schema of its argument.

An operator compiles its argument once when the playbook loads (``ValueError`` says what is
wrong), tests it against the facts of one incident, and says in words why it held or failed.
``cost`` orders the cheap tests first, so a spatial question is asked only of an incident that
passed the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.engine.fields import FieldRef, field_ref
from hub.engine.operator_types import (
    Context,
    Facts,
    Operator,
    choices,
    mapping,
    one_of,
    pattern,
    text,
)
from hub.engine.spatial_operators import SPATIAL
from hub.model.incident import (
    CERTAINTY_RANK,
    SEVERITY_RANK,
    URGENCY_RANK,
    Category,
    Certainty,
    MsgType,
    Severity,
    Urgency,
)

__all__ = ["OPERATORS", "Context", "Facts", "Operator"]

_CATEGORIES = tuple(c.value for c in Category)
_MSG_TYPES = tuple(m.value for m in MsgType)

# -- CAP values --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Among:
    values: tuple[str, ...]
    members: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", frozenset(self.values))


def _category_in(f: Facts, arg: Among) -> bool:
    return any(c in arg.members for c in f.info.category)


def _explain_category(f: Facts, arg: Among, ok: bool) -> str:
    have = "/".join(f.info.category)
    return f"category {have} {'in' if ok else 'not in'} {'/'.join(arg.values)}"


def _msg_type_in(f: Facts, arg: Among) -> bool:
    return f.incident.msgType in arg.members


def _explain_msg_type(f: Facts, arg: Among, ok: bool) -> str:
    return f"msgType {f.incident.msgType} {'in' if ok else 'not in'} {'/'.join(arg.values)}"


@dataclass(frozen=True, slots=True)
class AtLeast:
    field: str
    level: str
    rank: int
    ranks: Mapping[str, int]


def _at_least(field_name: str, ranks: Mapping[Any, int], levels: tuple[str, ...]) -> Operator:
    by_name = {str(k): v for k, v in ranks.items()}

    def compile_(value: Any, _: Context) -> AtLeast:
        level = one_of(value, levels, field_name)
        return AtLeast(field_name, level, by_name[level], by_name)

    return Operator(
        f"{field_name}_at_least",
        f"the info block's {field_name} is at least this ({' < '.join(reversed(levels))})",
        {"enum": list(levels)},
        compile_,
        _rank_holds,
        _explain_rank,
        0,
    )


def _rank_holds(f: Facts, arg: AtLeast) -> bool:
    return arg.ranks[getattr(f.info, arg.field)] >= arg.rank


def _explain_rank(f: Facts, arg: AtLeast, ok: bool) -> str:
    return f"{arg.field} {getattr(f.info, arg.field)} {'>=' if ok else '<'} {arg.level}"


# -- any CAP field -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldTest:
    ref: FieldRef
    values: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None


def _field_values(f: Facts, arg: FieldTest) -> tuple[str, ...]:
    return arg.ref.values(f.incident, f.info)


def _compile_equals(value: Any, _: Context) -> FieldTest:
    spec = mapping(value, {"field", "value"})
    return FieldTest(field_ref(str(spec["field"])), (text(spec["value"], "value"),))


def _compile_in(value: Any, _: Context) -> FieldTest:
    spec = mapping(value, {"field", "values"})
    values = spec["values"]
    if not isinstance(values, list) or not values:
        raise ValueError("values must be a non-empty list")
    return FieldTest(field_ref(str(spec["field"])), tuple(text(v, "value") for v in values))


def _field_among(f: Facts, arg: FieldTest) -> bool:
    return any(v in arg.values for v in _field_values(f, arg))


def _explain_among(f: Facts, arg: FieldTest, ok: bool) -> str:
    have = "/".join(_field_values(f, arg)) or "(absent)"
    verb = ("=" if ok else "≠") if len(arg.values) == 1 else ("in" if ok else "not in")
    return f"{arg.ref.path} {have} {verb} {'/'.join(arg.values)}"


def _compile_matches(value: Any, _: Context) -> FieldTest:
    spec = mapping(value, {"field", "pattern"})
    return FieldTest(field_ref(str(spec["field"])), pattern=pattern(spec["pattern"]))


def _compile_event(value: Any, _: Context) -> FieldTest:
    return FieldTest(field_ref("info.event"), pattern=pattern(value))


def _field_matches(f: Facts, arg: FieldTest) -> bool:
    assert arg.pattern is not None
    return any(arg.pattern.search(v) for v in _field_values(f, arg))


def _explain_matches(f: Facts, arg: FieldTest, ok: bool) -> str:
    assert arg.pattern is not None
    have = " / ".join(_field_values(f, arg)) or "(absent)"
    return (
        f"{arg.ref.path} '{have}' {'matches' if ok else 'does not match'} /{arg.pattern.pattern}/"
    )


# -- the table (CAP values and fields here, space from hub.engine.spatial_operators) -------------

_FIELD = {"type": "string", "description": "a CAP field path, e.g. sender or info.event"}

OPERATORS: Mapping[str, Operator] = {
    op.name: op
    for op in (
        Operator(
            "category_in",
            "one of the info block's categories is listed",
            {"type": "array", "items": {"enum": list(_CATEGORIES)}, "minItems": 1},
            lambda v, _: Among(choices(v, _CATEGORIES, "CAP category")),
            _category_in,
            _explain_category,
            0,
        ),
        Operator(
            "msg_type_in",
            "the message's msgType is listed",
            {"type": "array", "items": {"enum": list(_MSG_TYPES)}, "minItems": 1},
            lambda v, _: Among(choices(v, _MSG_TYPES, "CAP msgType")),
            _msg_type_in,
            _explain_msg_type,
            0,
        ),
        _at_least("severity", SEVERITY_RANK, tuple(s.value for s in Severity)),
        _at_least("urgency", URGENCY_RANK, tuple(u.value for u in Urgency)),
        _at_least("certainty", CERTAINTY_RANK, tuple(c.value for c in Certainty)),
        Operator(
            "field_equals",
            "a CAP field (any element of a list field) equals the value",
            {
                "type": "object",
                "properties": {"field": _FIELD, "value": {"type": ["string", "number"]}},
                "required": ["field", "value"],
                "additionalProperties": False,
            },
            _compile_equals,
            _field_among,
            _explain_among,
            1,
        ),
        Operator(
            "field_in",
            "a CAP field (any element of a list field) is one of the values",
            {
                "type": "object",
                "properties": {
                    "field": _FIELD,
                    "values": {
                        "type": "array",
                        "items": {"type": ["string", "number"]},
                        "minItems": 1,
                    },
                },
                "required": ["field", "values"],
                "additionalProperties": False,
            },
            _compile_in,
            _field_among,
            _explain_among,
            1,
        ),
        Operator(
            "field_matches",
            "a CAP text field matches the regular expression (case-insensitive)",
            {
                "type": "object",
                "properties": {"field": _FIELD, "pattern": {"type": "string", "minLength": 1}},
                "required": ["field", "pattern"],
                "additionalProperties": False,
            },
            _compile_matches,
            _field_matches,
            _explain_matches,
            2,
        ),
        Operator(
            "event_matches",
            "the info block's event matches the regular expression (case-insensitive)",
            {"type": "string", "minLength": 1},
            _compile_event,
            _field_matches,
            _explain_matches,
            2,
        ),
        *SPATIAL,
    )
}
