"""Paths: reading and writing native JSON by dotted path, and the catalog of canonical fields a
mapping may target.

A path is dotted, with list indices either as segments or in brackets: ``weizhi.zuobiao.0`` and
``weizhi.zuobiao[0]`` are the same. A digit segment indexes a list and is a key in an object, so
``{"0": ...}`` is reachable too. JSON ``null`` counts as absent.
"""

from __future__ import annotations

import itertools
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from hub.model.incident import ValuePair


class Missing:
    """The marker of an absent value (``None`` is a value in canonical data)."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


class PathProblem(ValueError):
    """A native message whose shape does not fit a path (the message names the prefix)."""


Segment = tuple[str, int | None]
_BRACKET = re.compile(r"\[(\d+)\]")
_KIND = {dict: "an object", list: "an array", str: "text", bool: "a boolean", int: "a number"}


def parse_path(text: str) -> tuple[Segment, ...]:
    """``a.b[0].c`` → ``(("a", None), ("b", None), ("0", 0), ("c", None))``."""
    parts = _BRACKET.sub(r".\1", text).split(".")
    if not text or any(not p for p in parts):
        raise ValueError(f"'{text}' is not a path (empty segment)")
    return tuple((p, int(p) if p.isdigit() else None) for p in parts)


def show(segments: tuple[Segment, ...]) -> str:
    return ".".join(key for key, _ in segments)


def kind_of(value: Any) -> str:
    return _KIND.get(type(value), "a number" if isinstance(value, float) else "null")


def getter(text: str) -> Callable[[Any], Any]:
    """A function reading the path from a native message; MISSING when absent or null."""
    segments = parse_path(text)
    if len(segments) == 1:
        key = segments[0][0]

        def get_top(doc: Any) -> Any:
            value = doc.get(key)
            return MISSING if value is None else value

        return get_top

    if len(segments) == 2 and segments[1][1] is None:
        outer, inner = segments[0][0], segments[1][0]

        def get_nested(doc: Any) -> Any:
            node = doc.get(outer)
            if node is None:
                return MISSING
            if type(node) is not dict:
                raise PathProblem(f"'{outer}' is {kind_of(node)}, so '{text}' cannot be read")
            value = node.get(inner)
            return MISSING if value is None else value

        return get_nested

    def get(doc: Any) -> Any:
        node = doc
        for depth, (key, index) in enumerate(segments):
            if type(node) is dict:
                node = node.get(key)
            elif type(node) is list and index is not None:
                node = node[index] if index < len(node) else None
            else:
                where = show(segments[:depth])
                raise PathProblem(f"'{where}' is {kind_of(node)}, so '{text}' cannot be read")
            if node is None:
                return MISSING
        return node

    return get


def setter(text: str) -> Callable[[dict[str, Any], Any], None]:
    """A function writing a value at the path, creating objects (and arrays for digits)."""
    segments = parse_path(text)

    def put(doc: dict[str, Any], value: Any) -> None:
        node: Any = doc
        for (key, index), (_, next_index) in itertools.pairwise(segments):
            empty: Any = [] if next_index is not None else {}
            node = _step(node, key, index, empty)
        key, index = segments[-1]
        if isinstance(node, list) and index is not None:
            node.extend([None] * (index + 1 - len(node)))
            node[index] = value
        else:
            node[key] = value

    return put


def _step(node: Any, key: str, index: int | None, empty: Any) -> Any:
    if isinstance(node, list) and index is not None:
        node.extend([None] * (index + 1 - len(node)))
        if node[index] is None:
            node[index] = empty
        return node[index]
    if node.get(key) is None:
        node[key] = empty
    return node[key]


# -- the canonical side --------------------------------------------------------------------------

Kind = Literal["text", "time", "number", "int", "circle", "polygon", "pair", "geocode", "bool"]
TIME_FIELDS = frozenset({"sent", "effective", "onset", "expires", "issued", "due"})
FEET_FIELDS = frozenset({"altitude", "ceiling"})  # CAP altitude and ceiling are in feet
_ITEM_KINDS: dict[str, Kind] = {"circle": "circle", "polygon": "polygon", "geocode": "geocode"}


@dataclass(frozen=True)
class Target:
    """A canonical field a rule writes: its path, what kind of value it holds, and whether the
    rule fills a whole list (``many``) or one value."""

    path: tuple[str | int, ...]
    kind: Kind
    many: bool
    choices: frozenset[str] | None  # the allowed values of an enum or Literal
    unit: Literal["km", "ft"] | None

    @property
    def name(self) -> str:
        return ".".join(str(p) for p in self.path)


def resolve(model: type[BaseModel], text: str) -> Target:
    """The target of a canonical path in ``model``; ValueError names what is wrong."""
    segments = parse_path(text)
    current: type[BaseModel] = model
    path: list[str | int] = []
    i = 0
    while i < len(segments):
        name = segments[i][0]
        field = current.model_fields.get(name)
        if field is None:
            known = ", ".join(current.model_fields)
            raise ValueError(f"'{name}' is not a field of {current.__name__} (fields: {known})")
        path.append(name)
        tp, is_list = unwrap(field.annotation)
        i += 1
        if is_list and i < len(segments):
            index = segments[i][1]
            if index is None:
                raise ValueError(f"'{name}' is a list: '{segments[i][0]}' is not an index")
            path.append(index)
            i += 1
            is_list = False
        if isinstance(tp, type) and issubclass(tp, BaseModel) and tp is not ValuePair:
            if is_list or i == len(segments):
                raise ValueError(f"'{'.'.join(map(str, path))}' is a group, not a value")
            current = tp
            continue
        if i < len(segments):
            raise ValueError(f"'{name}' is a value; '{segments[i][0]}' cannot follow it")
        return _leaf(name, tp, tuple(path), is_list)
    raise ValueError(f"'{text}' names no value")


def unwrap(annotation: Any) -> tuple[Any, bool]:
    """A field's value type, and whether the field is a list of it."""
    tp, is_list = annotation, False
    if get_origin(tp) in (Union, types.UnionType):
        tp = next(a for a in get_args(tp) if a is not type(None))
    if get_origin(tp) is list:
        tp, is_list = get_args(tp)[0], True
    return tp, is_list


def _leaf(name: str, tp: Any, path: tuple[str | int, ...], many: bool) -> Target:
    choices: frozenset[str] | None = None
    kind: Kind = "text"
    if name in _ITEM_KINDS:
        kind = _ITEM_KINDS[name]
    elif tp is ValuePair:
        kind = "pair"
    elif name in TIME_FIELDS:
        kind = "time"
    elif tp is bool:
        kind = "bool"
    elif tp is float:
        kind = "number"
    elif tp is int:
        kind = "int"
    elif isinstance(tp, type) and issubclass(tp, Enum):
        choices = frozenset(str(m.value) for m in tp)
    elif get_origin(tp) is Literal:
        choices = frozenset(str(a) for a in get_args(tp))
    unit: Literal["km", "ft"] | None = "ft" if name in FEET_FIELDS else None
    return Target(path, kind, many, choices, unit)
