"""What an operator is made of: the facts it tests, what it may consult when its argument is
compiled, and the checks arguments go through (each raises ValueError saying what is wrong).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.engine.spatial import Area, Zone
from hub.model.incident import Incident, Info
from hub.region import Region


class Facts:
    """What conditions are tested against: the incident, one of its info blocks, its area."""

    __slots__ = ("area", "incident", "info")

    def __init__(self, incident: Incident, info: Info, area: Area) -> None:
        self.incident = incident
        self.info = info
        self.area = area


@dataclass(frozen=True, slots=True)
class Context:
    """What compiling an argument may consult: the named zones and the region."""

    zones: Mapping[str, Zone]
    region: Region


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    summary: str
    schema: dict[str, Any]
    compile: Callable[[Any, Context], Any]
    test: Callable[[Facts, Any], bool]
    explain: Callable[[Facts, Any, bool], str]
    cost: int

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickled by name: the table is the same in every process, its functions need not travel.
        return (operator_named, (self.name,))

    def __repr__(self) -> str:
        return f"Operator({self.name})"


def operator_named(name: str) -> Operator:
    from hub.engine.operators import OPERATORS  # the table is built from this module's types

    return OPERATORS[name]


# -- arguments ---------------------------------------------------------------------------------


def choices(values: Any, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not values:
        raise ValueError(f"expected a non-empty list of {what}")
    for v in values:
        if v not in allowed:
            raise ValueError(f"'{v}' is not a {what}; use one of {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} listed twice")
    return tuple(str(v) for v in values)


def one_of(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"'{value}' is not a {what}; use one of {', '.join(allowed)}")
    return str(value)


def mapping(
    value: Any, required: set[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping with {', '.join(sorted(required))}")
    if missing := required - set(value):
        raise ValueError(f"missing {', '.join(sorted(missing))}")
    if extra := set(value) - required - set(optional):
        raise ValueError(f"unknown {', '.join(sorted(extra))}")
    return value


def km(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 200:
        raise ValueError("km must be a number from 0 to 200")
    return float(value)


def pattern(value: Any) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a regular expression")
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None


def text(value: Any, what: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"{what} must be text")
    return str(value)
