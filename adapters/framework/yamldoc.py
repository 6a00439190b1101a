"""YAML files of an adapter (manifest, fixture cases) read with their line numbers.

ruamel.yaml's round-trip loader keeps where each key and item was written, and refuses duplicate
keys (a setting pasted twice is an error, not a silent override). :func:`load_yaml` returns the
document as plain Python data together with a :class:`Lines` lookup, so a validation error can
say "line 12: transport.deliver.url: ...".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from hub.errors import InvalidInput


@dataclass(frozen=True)
class Lines:
    """Where the parts of a loaded document were written (1-based line numbers)."""

    root: Any

    def line(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest part of ``loc`` (a pydantic error location) found."""
        node, found = self.root, None
        for part in loc:
            try:
                if isinstance(node, CommentedMap) and part in node:
                    found = node.lc.key(part)[0] + 1
                    node = node[part]
                elif isinstance(node, CommentedSeq) and isinstance(part, int):
                    found = node.lc.item(part)[0] + 1
                    node = node[part]
                else:
                    break
            except (KeyError, IndexError, TypeError, AttributeError):
                break
        if found is None and isinstance(self.root, CommentedMap | CommentedSeq):
            found = self.root.lc.line + 1
        return found


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def load_yaml(path: Path) -> tuple[Any, Lines]:
    """Read ``path``; raises ``InvalidInput`` naming the file and line of a YAML error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise InvalidInput(f"{path}: {where}{problem}") from None
    except YAMLError as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    return _plain(document), Lines(document)


def describe_errors(path: Path, exc: ValidationError, lines: Lines, limit: int = 5) -> str:
    """Pydantic errors as ``FILE: line N: field.path: problem``, one per line (at most
    ``limit``), with a hint where a code was written as a number."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        # A discriminated union adds the tag ("http") to the path; it is not a key in the file.
        shown = [p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] == "transport")]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            shown.append(err.get("ctx", {}).get("discriminator", "kind").strip("'"))
        field_path = ".".join(str(p) for p in shown) or "(document)"
        line = lines.line(shown)
        message = err["msg"]
        if err["type"] == "string_type" and isinstance(err.get("input"), int):
            message += f' (write it quoted: "{err["input"]}")'
        prefix = f"line {line}: " if line is not None else ""
        parts.append(f"{path}: {prefix}{field_path}: {message}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"{path}: ... and {more} more")
    return "\n".join(parts)
