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

from adapters.codecs.dialect_leaf import Leaf
from adapters.codecs.dialect_paths import MISSING

Tree = dict[Any, Any]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"MISSING": MISSING}
        self._names = 0

    def name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def bind(self, prefix: str, value: Any) -> str:
        name = self.name(prefix)
        self.namespace[name] = value
        return name

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
            inner = self.name("n")
            empty = "[]" if all(isinstance(k, int) for k in child) else "{}"
            self.lines.append(f"{indent}{inner} = {empty}")
            self.node(child, inner, indent)
            self.lines.append(f"{indent}if {inner}:")
            self.lines.append(f"{indent}    " + store.format(inner))

    def leaf(self, leaf: Leaf, store: str, indent: str) -> None:
        if leaf.constant is not MISSING:
            self.lines.append(f"{indent}" + store.format(self.bind("c", leaf.constant)))
            return
        call = self.bind("f", leaf.decode)
        if leaf.inline is None:
            self.lines.append(f"{indent}v = {call}(doc)")
            self.lines.append(f"{indent}if v is not MISSING:")
            self.lines.append(f"{indent}    " + store.format("v"))
            return
        keys, lookup = leaf.inline
        self.lines.append(f"{indent}v = doc.get({keys[0]!r})")
        for key in keys[1:]:
            self.lines.append(f"{indent}v = v.get({key!r}) if type(v) is dict else None")
        if lookup is None:
            self.lines.append(f"{indent}if type(v) is not str:")
        else:
            table = self.bind("t", lookup)
            self.lines.append(f"{indent}t = type(v)")
            # not bool (True would find code 1); the lookup knows text and numeric codes
            self.lines.append(f"{indent}v = {table}.get(v) if t is str or t is int else None")
            self.lines.append(f"{indent}if v is None:")
        self.lines.append(f"{indent}    v = {call}(doc)")
        self.lines.append(f"{indent}if v is not MISSING:")
        self.lines.append(f"{indent}    " + store.format("v"))


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
