"""The decoder of a section's tree of rules, generated as the source of one Python function.

Calling a closure per node of the tree cost a third of a decode; one generated function that
builds the canonical dict top-down, calling each rule's compiled function in turn (constants
written as they are), costs almost nothing beyond the rules themselves. The same technique
``dataclasses`` uses for ``__init__``; the source is kept on the function (``__source__``)
for reading and debugging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.codecs.dialect_leaf import CONVERT_ERRORS, Leaf
from adapters.codecs.dialect_paths import MISSING

Tree = dict[Any, Any]


class _Bad(dict[str, Any]):
    """Stands for an object on a path that is something else (text, an array...): reads as
    empty, and the rule's own decoder, called then, says what is wrong."""


EMPTY: dict[str, Any] = {}
BAD = _Bad()


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "MISSING": MISSING,
            "EMPTY": EMPTY,
            "BAD": BAD,
            "CONVERT_ERRORS": CONVERT_ERRORS,
        }
        self._names = 0
        self._parents: dict[tuple[str, ...], str] = {(): "doc"}

    def name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def bind(self, prefix: str, value: Any) -> str:
        name = self.name(prefix)
        self.namespace[name] = value
        return name

    def parent(self, keys: tuple[str, ...], indent: str) -> str:
        """The variable holding the object at ``keys``: read once, at its first use (every
        rule's lines sit at the function's top level, so later uses see it). EMPTY when it is
        absent, BAD when it is no object (or lies under one that is none)."""
        known = self._parents.get(keys)
        if known is not None:
            return known
        above = self.parent(keys[:-1], indent)
        var = self.name("p")
        self.lines.append(f"{indent}{var} = {above}.get({keys[-1]!r})")
        self.lines.append(f"{indent}if type({var}) is not dict:")
        if above == "doc":
            self.lines.append(f"{indent}    {var} = EMPTY if {var} is None else BAD")
        else:
            self.lines.append(
                f"{indent}    {var} = EMPTY if {var} is None and {above} is not BAD else BAD"
            )
        self._parents[keys] = var
        return var

    def node(self, tree: Tree, target: str, indent: str) -> None:
        """Fill ``target`` (a dict or list variable) from ``tree``."""
        is_list = all(isinstance(k, int) for k in tree)
        keys = sorted(tree) if is_list else list(tree)
        for key in keys:
            child = tree[key]
            store = f"{target}.append({{}})" if is_list else f"{target}[{key!r}] = {{}}"
            if isinstance(child, Leaf):
                self.leaf(child, store, indent)
                continue
            only = child.get(0) if len(child) == 1 else None
            if isinstance(only, Leaf):  # a list of one rule's value: written in one go
                self.leaf(only, store.format("[{}]"), indent)
                continue
            inner = self.name("n")
            empty = "[]" if all(isinstance(k, int) for k in child) else "{}"
            self.lines.append(f"{indent}{inner} = {empty}")
            self.node(child, inner, indent)
            self.lines.append(f"{indent}if {inner}:")
            self.lines.append(f"{indent}    " + store.format(inner))

    def leaf(self, leaf: Leaf, store: str, indent: str) -> None:
        add = self.lines.append
        if leaf.constant is not MISSING:
            add(f"{indent}" + store.format(self.bind("c", leaf.constant)))
            return
        call = self.bind("f", leaf.decode)
        inline = leaf.inline
        if inline is None:
            add(f"{indent}v = {call}(doc)")
        else:
            above = self.parent(inline.keys[:-1], indent)
            add(f"{indent}v = {above}.get({inline.keys[-1]!r})")
            absent = f"{call}(doc)"
            if inline.absent_is_missing:
                clean = "" if above == "doc" else f" and {above} is not BAD"
                absent = f"MISSING if v is None{clean} else {call}(doc)"
            if inline.convert is not None:
                convert = self.bind("g", inline.convert)
                add(f"{indent}if v is not None:")
                add(f"{indent}    try:")
                if inline.many:
                    items = "(v if type(v) is list else [v])"
                    add(f"{indent}        v = [{convert}(i) for i in {items}]")
                else:
                    add(f"{indent}        v = {convert}(v)")
                add(f"{indent}    except CONVERT_ERRORS:")
                add(f"{indent}        v = {call}(doc)")  # which says what is wrong
                add(f"{indent}else:")
                add(f"{indent}    v = {absent}")
            elif inline.lookup is None:
                add(f"{indent}if type(v) is not str:")
                add(f"{indent}    v = {absent}")
            else:
                table = self.bind("t", inline.lookup)
                add(f"{indent}t = type(v)")
                # not bool (True would find code 1); the lookup knows text and numeric codes
                add(f"{indent}w = {table}.get(v) if t is str or t is int else None")
                add(f"{indent}v = w if w is not None else {absent}")
        if inline is not None and not inline.absent_is_missing:
            add(f"{indent}" + store.format("v"))  # required, or a default: never MISSING
            return
        add(f"{indent}if v is not MISSING:")
        add(f"{indent}    " + store.format("v"))


def generate_decoder(tree: Tree) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """One function: native message → canonical dict, for the whole tree."""
    writer = _Writer()
    writer.lines.append("def decode(doc):")
    writer.lines.append("    out = {}")
    writer.node(tree, "out", "    ")
    writer.lines.append("    return out")
    source = "\n".join(writer.lines) + "\n"
    exec(compile(source, "<dialect decoder>", "exec"), writer.namespace)
    decode: Callable[[dict[str, Any]], dict[str, Any]] = writer.namespace["decode"]
    decode.__source__ = source  # type: ignore[attr-defined]
    return decode
