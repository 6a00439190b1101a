"""A mapping section compiled once into two plain functions: ``decode`` (native message →
canonical dict) and ``encode`` (canonical dict → native message).

The rules' canonical paths form a tree (``info.0.area.0.circle.0`` sits under ``info.0``).
Decoding is one generated function that builds the canonical dict down that tree, calling the
rules' prepared functions (``dialect_codegen``): no interpretation of the mapping is left. Lists
are compacted: an optional item that is absent leaves no hole. Encoding walks the canonical dict
down the same tree with closures and matches list items to rules in order (a parameter by its
valueName).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel

from adapters.codecs.dialect_codegen import generate_decoder
from adapters.codecs.dialect_leaf import Context, Leaf, Problem, Writes
from adapters.codecs.dialect_paths import Target, resolve, setter, unwrap
from adapters.codecs.dialect_rules import compile_rule
from adapters.codecs.dialect_spec import Section, Source
from adapters.codecs.geo import DATUMS

Encode = Callable[[Any, Writes], None]
Fits = Callable[[Any], bool]
Tree = dict[str | int, Union["Tree", Leaf]]


@dataclass(frozen=True)
class Compiled:
    """A compiled section; ``origin`` maps a canonical path to the native path(s) it reads."""

    decode: Callable[[dict[str, Any]], dict[str, Any]]
    encode: Callable[[dict[str, Any]], dict[str, Any]]
    origin: dict[str, str]
    leaves: tuple[Leaf, ...]


def compile_section(
    ctx: Context,
    source: Source,
    name: str,
    model: type[BaseModel],
    section: Section,
    *,
    check_required: bool,
) -> Compiled:
    """Compile one section; a problem raises DialectError naming the file and line."""
    tree: Tree = {}
    leaves: list[Leaf] = []
    for text, rule in section.fields.items():
        loc: tuple[str | int, ...] = (name, "fields", text)
        try:
            target = resolve(model, text)
            leaf = compile_rule(ctx, target, rule)
        except Problem as exc:
            raise source.error(loc + ((exc.attr,) if exc.attr else ()), str(exc)) from None
        except ValueError as exc:
            raise source.error(loc, str(exc)) from None
        _insert(tree, leaf, source, loc)
        leaves.append(leaf)
    if check_required:
        _required(model, tree, source, (name, "fields"), "")
    constants = []
    for path, value in section.native_constants.items():
        try:
            constants.append((setter(path), value))
        except ValueError as exc:
            raise source.error((name, "native_constants", path), str(exc)) from None
    decode = generate_decoder(tree)
    encode_tree, _ = _encoder(tree)

    def encode(canonical: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for put, value in constants:
            put(doc, value)
        writes = Writes()
        encode_tree(canonical, writes)
        return writes.settle(doc)

    origin = {leaf.target.name: leaf.native for leaf in leaves}
    return Compiled(decode, encode, origin, tuple(leaves))


def _insert(tree: Tree, leaf: Leaf, source: Source, loc: tuple[str | int, ...]) -> None:
    node: Tree = tree
    path = leaf.target.path
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        child = node.get(key)
        clash = isinstance(child, Leaf) or (last and child is not None)
        if clash or (isinstance(key, int) and any(isinstance(k, str) for k in node)):
            shown = ".".join(str(p) for p in path[: depth + 1])
            raise source.error(loc, f"overlaps another rule at '{shown}'")
        if last:
            node[key] = leaf
        else:
            node = node.setdefault(key, {})  # type: ignore[assignment]


def _required(
    model: type[BaseModel], node: Tree, source: Source, loc: tuple[str | int, ...], at: str
) -> None:
    for field_name, field in model.model_fields.items():
        child = node.get(field_name)
        if child is None:
            if field.is_required():
                raise source.error(loc, f"the mapping gives no rule for {at}{field_name}")
            continue
        sub, is_list = unwrap(field.annotation)
        if isinstance(child, Leaf) or not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            continue
        items = child.items() if is_list else [(None, child)]
        for index, item in items:
            if isinstance(item, dict):
                where = f"{at}{field_name}." + (f"{index}." if index is not None else "")
                _required(sub, item, source, loc, where)


def _encoder(node: Tree | Leaf) -> tuple[Encode, Fits]:
    if isinstance(node, Leaf):
        return node.encode, node.fits
    if all(isinstance(key, int) for key in node):
        items = [_encoder(node[key]) for key in sorted(node, key=int)]

        def encode_list(value: Any, writes: Writes) -> None:
            if type(value) is not list:
                return
            at = 0
            for encode, fits in items:
                if at < len(value) and fits(value[at]):
                    encode(value[at], writes)
                    at += 1

        return encode_list, _any
    children = [(key, _encoder(child)[0]) for key, child in node.items()]

    def encode_dict(value: Any, writes: Writes) -> None:
        if type(value) is not dict:
            return
        for key, encode in children:
            item = value.get(key)
            if item is not None:
                encode(item, writes)

    return encode_dict, _any


def _any(_: Any) -> bool:
    return True


def datum_target() -> Target:
    """The pseudo-field the ``coordinates.datum`` rule fills."""
    return Target(("datum",), "text", False, frozenset(DATUMS), None)
