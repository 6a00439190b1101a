"""What every compiled rule is made of: the Leaf (decode, encode, fits), the errors, and
``Writes``, where encoding collects what each rule wants written.

Encoding cannot always write a value directly: one native code may decode to two canonical
fields (a city's incident type gives both the CAP category and the event), so a rule *states*
what the native field may hold (this exact value, or one of these codes) and the native value
is settled once every rule has spoken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from adapters.codecs import geo
from adapters.codecs.dialect_paths import MISSING, Target
from adapters.codecs.dialect_values import CodeTable, text

Decode = Callable[[dict[str, Any]], Any]
"""Native message → canonical value, or MISSING."""
Forward = Callable[[Any], Any]


class Problem(ValueError):
    """A rule that does not fit its target; ``attr`` is the rule's key at fault."""

    def __init__(self, message: str, attr: str | None = None) -> None:
        super().__init__(message)
        self.attr = attr


class Failure(ValueError):
    """A native value a rule cannot translate: names the native path and the canonical field."""

    def __init__(self, native: str, label: str, message: str) -> None:
        super().__init__(f"native field '{native}' ({label}): {message}")
        self.native = native


@dataclass(frozen=True)
class Context:
    """What every rule of a dialect shares."""

    tables: dict[str, CodeTable]
    native_zone: ZoneInfo
    cap_zone: ZoneInfo
    order: geo.Order
    form: str
    label: str  # "CAP", "task" or "answer": how error messages name the canonical side


class Codes:
    """The native codes of a table that decode to one canonical value. A code the table does
    not know decodes to the table's default, so it fits when the value is that default."""

    def __init__(self, table: CodeTable, value: Any) -> None:
        self.codes = table.codes_for(value)
        self._keys = {CodeTable.key(c) for c in self.codes}
        self._table = table
        self._any_unknown = table.default is not None and text(table.default) == text(value)

    def accepts(self, code: Any) -> bool:
        key = CodeTable.key(code)
        return key in self._keys or (self._any_unknown and key not in self._table.forward)


class Writes:
    """What encoding wants written at each native path; ``settle`` picks the values."""

    def __init__(self) -> None:
        self._wants: dict[str, tuple[Callable[[dict[str, Any], Any], None], list[Any]]] = {}

    def want(self, native: str, put: Any, exact: Any, codes: Codes | None, why: str) -> None:
        self._wants.setdefault(native, (put, []))[1].append((exact, codes, why))

    def settle(self, doc: dict[str, Any]) -> dict[str, Any]:
        for native, (put, wants) in self._wants.items():
            put(doc, _settle(native, wants))
        return doc


def _settle(native: str, wants: list[tuple[Any, Codes | None, str]]) -> Any:
    exact = [(value, why) for value, codes, why in wants if codes is None]
    tables = [(codes, why) for _, codes, why in wants if codes is not None]
    if exact:
        value, first = exact[0]
        for other, why in exact[1:]:
            if other != value:
                raise ValueError(f"native field '{native}' cannot hold {first} and {why} at once")
        for codes, why in tables:
            if not codes.accepts(value):
                raise ValueError(f"native field '{native}': {first} is no code that gives {why}")
        return value
    candidates = [c for codes, _ in tables for c in codes.codes]
    for code in candidates:
        if all(codes.accepts(code) for codes, _ in tables):
            return code
    raise ValueError(f"native field '{native}': no code gives {' and '.join(w for _, w in tables)}")


@dataclass(frozen=True)
class Inline:
    """How the generated decoder reads a rule in line, without calling its ``decode``: the
    value at a path of object keys, then a code lookup (text and numeric codes → canonical
    text), or a conversion (``many``: of each item), or neither (text as it is). Anything else
    (absent, another type, a value the conversion refuses) goes to the rule's ``decode``, which
    gives the default or says what is wrong; except that an absent value of an optional rule
    without a default (``absent_is_missing``) is MISSING at once."""

    keys: tuple[str, ...]
    lookup: dict[Any, str] | None = None
    convert: Callable[[Any], Any] | None = None
    many: bool = False
    absent_is_missing: bool = False


CONVERT_ERRORS = (ValueError, TypeError, OverflowError, OSError)
"""What a rule's conversion raises for a value it refuses (its ``decode`` names the field)."""


@dataclass
class Leaf:
    """A compiled rule: ``decode`` reads it, ``encode`` states what to write, ``fits`` says
    whether a canonical list item is this rule's (a parameter's valueName, say)."""

    target: Target
    native: str
    decode: Decode
    encode: Callable[[Any, Writes], None]
    fits: Callable[[Any], bool]
    constant: Any = MISSING  # an immutable constant the decoder may write as it is
    # read in line by the generated decoder, which calls ``decode`` only for anything else
    inline: Inline | None = None


def always(_: Any) -> bool:
    return True


def quick(leaf: Leaf) -> Decode:
    """The rule's decode, reading the value in line when it can (a rule decoded outside the
    generated decoder, such as a circle's radius); anything unusual goes to ``leaf.decode``."""
    inline = leaf.inline
    if inline is None or inline.convert is None or inline.many or len(inline.keys) > 2:
        return leaf.decode
    first, second = inline.keys[0], inline.keys[1] if len(inline.keys) == 2 else None
    convert, slow = inline.convert, leaf.decode

    def decode(doc: dict[str, Any]) -> Any:
        value = doc.get(first)
        if second is not None:
            value = value.get(second) if type(value) is dict else None
        if value is not None:
            try:
                return convert(value)
            except CONVERT_ERRORS:
                pass
        return slow(doc)  # the default, MISSING, or what is wrong

    return decode
