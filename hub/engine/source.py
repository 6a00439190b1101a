"""YAML files read as plain data, remembering the line each part came from.

Playbooks and their cases are written by people; when one is wrong, the answer must point at
the line (``file:line: what is wrong``). ruamel.yaml's round-trip loader keeps positions and, like
the safe loader, refuses a duplicate key; the document is then copied into plain dicts, lists and
scalars (no ruamel types leak into the models) with a table from each path to its line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from hub.errors import InvalidInput

Where = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a file, at a line (1-based)."""

    file: str
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


class PlaybookError(InvalidInput):
    """A playbook or cases file that cannot be used; ``problems`` lists every fault found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Document:
    """A YAML document as plain data, with the line of every mapping key and list item."""

    file: str
    data: Any
    lines: dict[Where, int] = field(default_factory=dict)

    def line_of(self, where: Sequence[str | int]) -> int:
        """The line of the deepest part of ``where`` that the file has (1 if none)."""
        path = tuple(where)
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return 1

    def problem(self, where: Sequence[str | int], message: str) -> Problem:
        return Problem(self.file, self.line_of(where), dotted(where), message)


def dotted(where: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in where)


def read_yaml(path: Path) -> Document:
    """Parse ``path``; a syntax error or duplicate key raises ``PlaybookError`` with its line."""
    yaml = YAML(typ="rt", pure=True)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = " ".join(str(exc.problem or exc).split())
        raise PlaybookError([Problem(str(path), line, "", message)]) from None
    except (YAMLError, OSError, UnicodeDecodeError) as exc:
        raise PlaybookError([Problem(str(path), 1, "", str(exc))]) from None
    lines: dict[Where, int] = {}
    return Document(str(path), _plain(raw, (), lines), lines)


def _plain(node: Any, where: Where, lines: dict[Where, int]) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            name = str(key)
            line, _ = node.lc.key(key)
            lines[(*where, name)] = line + 1
            out[name] = _plain(value, (*where, name), lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            line, _ = node.lc.item(i)
            lines[(*where, i)] = line + 1
            items.append(_plain(value, (*where, i), lines))
        return items
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, dt.datetime | dt.date):
        # Unquoted timestamps: give them back as the text CAP expects.
        return node.isoformat()
    return node
