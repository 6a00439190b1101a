"""CAP 1.2 element tree ↔ canonical incident.

The canonical incident keeps CAP's names, so the mapping is structural: CAP's sequences
(``cap_xml.ALERT`` and the others, in CAP's order) become objects, repeated elements arrays, text
stays text. Strings are kept
verbatim (whitespace included); only the dateTime elements and the numbers (``size``,
``altitude``, ``ceiling``) are whitespace-collapsed, as their XML Schema types are. An empty
element is the empty string.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError

from hub.codecs.cap_xml import (
    ALERT,
    AREA,
    CAP12,
    DATETIME_ELEMENTS,
    INFO,
    PAIR,
    RESOURCE,
    CapError,
    Node,
)
from hub.model.incident import Incident

# Elements that hold a nested sequence, and the elements CAP lets repeat within each sequence.
NESTED = {"info": INFO, "resource": RESOURCE, "area": AREA, "eventCode": PAIR,
          "parameter": PAIR, "geocode": PAIR}  # fmt: skip
REPEATED = frozenset(
    {"code", "info", "category", "responseType", "eventCode", "parameter", "resource", "area",
     "polygon", "circle", "geocode"}
)  # fmt: skip
_NUMBERS = frozenset({"size", "altitude", "ceiling"})
_PREFIX = f"{{{CAP12}}}"
_PREFIX_LEN = len(_PREFIX)
_DATETIMES = DATETIME_ELEMENTS
_ITEM_PREFIX = re.compile(r"^(?:Value error, )?(?:(?:polygon|circle) (\d+): )?")

Loc = tuple[str | int, ...]


def _read(element: Node) -> dict[str, Any]:
    """A schema-valid CAP 1.2 sequence → plain data (lines are looked up only on error)."""
    out: dict[str, Any] = {}
    for child in element:
        tag = child.tag
        if not tag.startswith(_PREFIX):
            continue  # the xmldsig Signature the schema allows after the last info
        name = tag[_PREFIX_LEN:]
        if name in NESTED:
            value: Any = _read(child)
        elif name in _DATETIMES:
            value = (child.text or "").strip()
        elif name in _NUMBERS:
            value = _number((child.text or "").strip(), name, child.sourceline)
        else:
            value = child.text or ""
        if name in REPEATED:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def _number(text: str, name: str, line: int | None) -> int | float:
    """A schema-valid xs:integer or xs:decimal; refused if Python cannot hold it usefully."""
    shown = text if len(text) <= 40 else text[:39] + "…"
    try:
        value: int | float = int(text) if name == "size" else float(text)
    except ValueError:  # more digits than int() converts
        raise CapError(f"'{shown}' is out of range", line=line, element=name) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise CapError(f"'{shown}' is out of range", line=line, element=name)
    return value


def tree_to_incident(root: Node) -> Incident:
    """A schema-valid CAP 1.2 ``alert`` → the canonical incident (CAP's rules checked too)."""
    try:
        return Incident.model_validate(_read(root))
    except ValidationError as exc:
        raise _model_error(exc, root) from None


def _model_error(exc: ValidationError, root: Node) -> CapError:
    first = exc.errors(include_url=False)[0]
    loc: Loc = tuple(first["loc"])
    m = _ITEM_PREFIX.match(str(first["msg"]))
    problem = str(first["msg"])[m.end() if m else 0 :]
    if m and m.group(1) is not None:
        loc = (*loc, int(m.group(1)))  # "polygon 1: ..." → the second polygon's own line
    names = [part for part in loc if isinstance(part, str)]
    more = len(exc.errors()) - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    line = _locate(root, loc).sourceline
    return CapError(problem, line=line, element=names[-1] if names else "alert")


def _locate(root: Node, loc: Loc) -> Node:
    """The element a model error's location points at (as deep as the location resolves)."""
    element, parts = root, list(loc)
    while parts and isinstance(parts[0], str):
        tag = _PREFIX + str(parts.pop(0))
        index = int(parts.pop(0)) if parts and isinstance(parts[0], int) else 0
        found = [child for child in element if child.tag == tag]
        if not found:
            break
        element = found[min(index, len(found) - 1)]
    return element


def incident_to_tree(incident: Incident) -> Node:
    """The canonical incident → a CAP 1.2 ``alert`` element (not yet validated)."""
    root: Node = etree.Element(_PREFIX + "alert", nsmap={None: CAP12})
    _write(root, incident, ALERT)
    return root


def _write(parent: Node, model: BaseModel, order: tuple[str, ...]) -> None:
    for name in order:
        value = getattr(model, name)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            child = etree.SubElement(parent, _PREFIX + name)
            if isinstance(item, BaseModel):
                _write(child, item, NESTED[name])
                continue
            try:
                child.text = _text(item)
            except ValueError as exc:  # control characters, lone surrogates, non-finite numbers
                raise CapError(f"cannot be written as XML: {exc}", element=name) from None


def _text(value: object) -> str:
    if isinstance(value, str):
        return str(value)  # a StrEnum member gives its CAP value
    if isinstance(value, bool):
        raise ValueError("not a CAP value")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a decimal number")
        exact = Decimal(repr(value))  # the shortest text that reads back as the same float
        if exact == exact.to_integral_value():
            return str(int(exact))
        return format(exact, "f")
    raise ValueError(f"unsupported value {value!r}")
