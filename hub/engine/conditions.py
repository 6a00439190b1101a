"""Conditions: operators combined with explicit ``all`` / ``any`` / ``not``.

A condition in YAML is a mapping with one key: ``all`` or ``any`` (a list of conditions), ``not``
(one condition), or an operator's name (its argument). Parsing compiles every operator's argument
and collects every fault with its path. Evaluation comes in two forms over the same tree:
:func:`holds` (the hot path: cheapest tests first, stops as soon as the answer is known) and
:func:`trace` (every test in the order written, with the reason each held or failed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.engine.operators import OPERATORS, Context, Facts, Operator
from hub.engine.source import Where, dotted

_COMBINERS = ("all", "any", "not")


@dataclass(frozen=True, slots=True, eq=False)
class Test:
    """An operator with its compiled argument."""

    op: Operator
    arg: Any

    @property
    def cost(self) -> int:
        return self.op.cost


@dataclass(frozen=True, slots=True, eq=False)
class AllOf:
    items: tuple[Node, ...]
    by_cost: tuple[Node, ...] = field(init=False)
    cost: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_cost", tuple(sorted(self.items, key=lambda n: n.cost)))
        object.__setattr__(self, "cost", max(n.cost for n in self.items))


@dataclass(frozen=True, slots=True, eq=False)
class AnyOf:
    items: tuple[Node, ...]
    by_cost: tuple[Node, ...] = field(init=False)
    cost: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_cost", tuple(sorted(self.items, key=lambda n: n.cost)))
        object.__setattr__(self, "cost", max(n.cost for n in self.items))


@dataclass(frozen=True, slots=True, eq=False)
class NotOf:
    item: Node

    @property
    def cost(self) -> int:
        return self.item.cost


Node = Test | AllOf | AnyOf | NotOf


@dataclass(frozen=True, slots=True)
class Trace:
    """How one condition came out: ``label`` is the combiner or the operator's reason."""

    label: str
    ok: bool
    children: tuple[Trace, ...] = ()

    def lines(self, depth: int = 0) -> list[str]:
        mark = "✓" if self.ok else "✗"
        out = [f"{'  ' * depth}{mark} {self.label}"]
        for child in self.children:
            out.extend(child.lines(depth + 1))
        return out

    def failed(self) -> list[str]:
        """The reasons of the tests that made this condition fail."""
        if self.ok:
            return []
        if not self.children:
            return [self.label]
        if self.label == "not":
            return [f"not ({'; '.join(c.label for c in self.children)})"]
        return [r for c in self.children for r in c.failed()]

    def held(self) -> list[str]:
        """The reasons of the tests that made this condition hold (for a task's why): every
        child of ``all``, the first child of ``any`` that held. Same as :func:`reasons`."""
        if not self.ok:
            return []
        if not self.children:
            return [self.label]
        if self.label == "not":
            return [f"not ({'; '.join(c.label for c in self.children)})"]
        if self.label == "any":
            return next(c.held() for c in self.children if c.ok)
        return [r for c in self.children for r in c.held()]


def parse(raw: Any, where: Where, ctx: Context, problems: list[tuple[Where, str]]) -> Node | None:
    """Compile a condition; faults are appended to ``problems`` as (path, message)."""
    if not isinstance(raw, dict) or len(raw) != 1:
        known = ", ".join([*_COMBINERS, *OPERATORS])
        problems.append((where, f"a condition is a mapping with exactly one key: {known}"))
        return None
    ((key, value),) = raw.items()
    at = (*where, key)
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            problems.append((at, f"'{key}' takes a non-empty list of conditions"))
            return None
        items = [parse(v, (*at, i), ctx, problems) for i, v in enumerate(value)]
        if any(i is None for i in items):
            return None
        nodes = tuple(i for i in items if i is not None)
        return AllOf(nodes) if key == "all" else AnyOf(nodes)
    if key == "not":
        item = parse(value, at, ctx, problems)
        return None if item is None else NotOf(item)
    op = OPERATORS.get(key)
    if op is None:
        known = ", ".join([*_COMBINERS, *OPERATORS])
        problems.append((at, f"unknown operator '{key}'; use one of {known}"))
        return None
    try:
        return Test(op, op.compile(value, ctx))
    except ValueError as exc:
        problems.append((at, str(exc)))
        return None


def parse_root(
    raw: Any, where: Where, ctx: Context, problems: list[tuple[Where, str]]
) -> Node | None:
    """Top-level conditions must say how they combine: ``all``, ``any`` or ``not``."""
    if not (isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in _COMBINERS):
        problems.append((where, "conditions must say how they combine: all:, any: or not:"))
        return None
    return parse(raw, where, ctx, problems)


def holds(node: Node, facts: Facts) -> bool:
    """Whether the condition holds; cheapest tests first, short-circuiting."""
    if isinstance(node, Test):
        return node.op.test(facts, node.arg)
    if isinstance(node, AllOf):
        return all(holds(n, facts) for n in node.by_cost)
    if isinstance(node, AnyOf):
        return any(holds(n, facts) for n in node.by_cost)
    return not holds(node.item, facts)


def compile_node(node: Node) -> Callable[[Facts], bool]:
    """``holds`` as one closure per node (about three times faster than walking the tree); the
    commonest tests are specialised. Closures do not pickle: callers keep them beside the tree."""
    if isinstance(node, Test):
        op, arg = node.op, node.arg
        if op.name == "category_in":
            members = arg.members

            # Plain loops: a generator inside any()/all() costs more than the test itself.
            def category(f: Facts) -> bool:
                for c in f.info.category:  # noqa: SIM110
                    if c in members:
                        return True
                return False

            return category
        if op.name.endswith("_at_least"):
            field_name, rank, ranks = arg.field, arg.rank, arg.ranks
            return lambda f: bool(ranks[getattr(f.info, field_name)] >= rank)
        test = op.test
        return lambda f: test(f, arg)
    if isinstance(node, NotOf):
        inner = compile_node(node.item)
        return lambda f: not inner(f)
    parts = tuple(compile_node(n) for n in node.by_cost)
    if isinstance(node, AllOf):

        def every(f: Facts) -> bool:
            for part in parts:  # noqa: SIM110
                if not part(f):
                    return False
            return True

        return every

    def some(f: Facts) -> bool:
        for part in parts:  # noqa: SIM110
            if part(f):
                return True
        return False

    return some


def reasons(node: Node, facts: Facts) -> list[str]:
    """``trace(node, facts).held()`` for a condition known to hold, explaining only the tests
    that made it hold (the hot path explains a matched playbook, not every branch it tried)."""
    if isinstance(node, Test):
        return [node.op.explain(facts, node.arg, True)]
    if isinstance(node, NotOf):
        return trace(node, facts).held()
    if isinstance(node, AllOf):
        return [r for n in node.items for r in reasons(n, facts)]
    first = next(n for n in node.items if holds(n, facts))
    return reasons(first, facts)


def trace(node: Node, facts: Facts) -> Trace:
    """Evaluate every test, in the order written, with its reason."""
    if isinstance(node, Test):
        ok = node.op.test(facts, node.arg)
        return Trace(node.op.explain(facts, node.arg, ok), ok)
    if isinstance(node, NotOf):
        inner = trace(node.item, facts)
        return Trace("not", not inner.ok, (inner,))
    children = tuple(trace(n, facts) for n in node.items)
    if isinstance(node, AllOf):
        return Trace("all", all(c.ok for c in children), children)
    return Trace("any", any(c.ok for c in children), children)


# -- what a condition can possibly admit (for indexing playbooks) ------------------------------


def categories(node: Node) -> frozenset[str] | None:
    """The CAP categories outside which the condition can never hold; None: any category."""
    if isinstance(node, Test):
        if node.op.name == "category_in":
            members: frozenset[str] = node.arg.members
            return members
        return None
    if isinstance(node, AllOf):
        found = [c for c in (categories(n) for n in node.items) if c is not None]
        if not found:
            return None
        result = found[0]
        for c in found[1:]:
            result = result & c
        return result
    if isinstance(node, AnyOf):
        every = [categories(n) for n in node.items]
        if any(c is None for c in every):
            return None
        return frozenset().union(*(c for c in every if c is not None))
    return None  # under "not", a category test can only widen what is admitted


def min_severity(node: Node) -> int:
    """The lowest severity rank at which the condition can hold."""
    if isinstance(node, Test):
        if node.op.name == "severity_at_least":
            rank: int = node.arg.rank
            return rank
        return 0
    if isinstance(node, AllOf):
        return max(min_severity(n) for n in node.items)
    if isinstance(node, AnyOf):
        return min(min_severity(n) for n in node.items)
    return 0


def zone_names(node: Node) -> set[str]:
    """Zones a condition refers to (for ``liandong playbooks check``)."""
    if isinstance(node, Test):
        return {node.arg.zone.name} if node.op.name == "in_zone" else set()
    if isinstance(node, NotOf):
        return zone_names(node.item)
    return set().union(*(zone_names(n) for n in node.items))


def problems_text(problems: Sequence[tuple[Where, str]]) -> str:
    return "; ".join(f"{dotted(w)}: {m}" for w, m in problems)
