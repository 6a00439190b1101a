"""What an encode would lose: the differences between a canonical incident and the same
incident after a trip through a dialect and back.

Values are compared by meaning where CAP allows several spellings: dateTimes as instants
(``2026-07-01T00:30:00+00:00`` is ``2026-07-01T08:30:00+08:00``), circles and polygons as
numbers (``31.03,120.90 2`` is ``31.03,120.9 2``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from hub.model.incident import parse_circle, parse_polygon

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


def differences(before: Any, after: Any, at: str = "") -> list[str]:
    """Each place where ``after`` differs from ``before``, as 'path: was → now'."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in [*before, *(k for k in after if k not in before)]:
            where = f"{at}.{key}" if at else str(key)
            if key not in after:
                found.append(f"{where}: has no place in the dialect (dropped)")
            elif key not in before:
                found.append(f"{where}: would appear as {_short(after[key])}")
            else:
                found += differences(before[key], after[key], where)
        return found
    if isinstance(before, list) and isinstance(after, list):
        found = []
        for i, (old, new) in enumerate(zip(before, after, strict=False)):
            found += differences(old, new, f"{at}.{i}")
        found += [f"{at}.{i}: has no place in the dialect (dropped)" for i in
                  range(len(after), len(before))]  # fmt: skip
        found += [f"{at}.{i}: would appear" for i in range(len(before), len(after))]
        return found
    if _same(before, after, at):
        return []
    return [f"{at}: {_short(before)} would become {_short(after)}"]


def _same(before: Any, after: Any, at: str) -> bool:
    if before == after:
        return True
    if not (isinstance(before, str) and isinstance(after, str)):
        return False
    if _DATETIME.match(before) and _DATETIME.match(after):
        return datetime.fromisoformat(before) == datetime.fromisoformat(after)
    field = at.rsplit(".", 2)[-2] if at.count(".") >= 1 else at
    try:
        if field == "circle":
            return _close(parse_circle(before), parse_circle(after))
        if field == "polygon":
            old, new = parse_polygon(before), parse_polygon(after)
            return len(old) == len(new) and all(map(_close, old, new))
    except ValueError:
        return False
    return False


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(math.isclose(x, y, rel_tol=0, abs_tol=1e-6) for x, y in zip(a, b, strict=True))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
