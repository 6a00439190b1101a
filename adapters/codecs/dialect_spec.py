"""The dialect mapping file: its YAML format (pydantic models) and a loader whose errors say
``file:line: where: what is wrong``.

A mapping has sections (``incident``, ``task``, ``answer``); each maps a *canonical* field (a
dotted path into the CAP incident, the hub's task, or a task answer, list indices allowed:
``info.0.area.0.circle.0``) to a rule saying where that value lives in the city's JSON and how
to translate it. The same rules serve both directions: decoding reads them forward, encoding
inverts them. ``adapters/codecs/schemas/dialect.schema.json`` is the JSON Schema of this format,
generated from these models (``python -m adapters.codecs.dialect_spec``).

YAML is read with ruamel.yaml in round-trip mode, which rejects duplicate keys and keeps line
numbers, so every error can point at its line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from hub.errors import InvalidInput

Scalar = str | int | float | bool
TimeFormat = str
"""``iso`` (ISO 8601; no offset means the dialect's zone), ``epoch_s``, ``epoch_ms``, or a
pattern of ``%Y %m %d %H %M %S %%`` and literal text, e.g. ``%Y-%m-%d %H:%M:%S``."""


class DialectError(InvalidInput):
    """A mapping file that is wrong (the message names ``file:line``), or a native message the
    mapping cannot read or write (the message names the native field path and the problem)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        path: str | None = None,
    ) -> None:
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(where + message)
        self.file = file
        self.line = line
        self.path = path


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Rule(_Spec):
    """Where one canonical value comes from in the native message, and how it is translated.

    Exactly one source: ``from`` (a native path), ``value`` (a constant), ``point`` or
    ``lat`` + ``lon`` (a circle's centre), ``points`` (a polygon's ring).
    """

    from_: str | None = Field(
        default=None, alias="from", description="native path, dotted, list indices allowed"
    )
    value: Scalar | None = Field(default=None, description="a constant canonical value")
    default: Scalar | None = Field(
        default=None, description="canonical value when the native field is absent or null"
    )
    optional: bool = Field(default=False, description="an absent native field leaves it out")
    table: str | None = Field(default=None, description="code table: native code -> canonical")
    time: TimeFormat | None = Field(default=None, description="native time format")
    zone: str | None = Field(default=None, description="IANA zone of naive native times")
    unit: Literal["m", "km", "ft"] | None = Field(default=None, description="native length unit")
    value_name: str | None = Field(
        default=None, description="CAP valueName of an eventCode or parameter"
    )
    point: str | None = Field(default=None, description="native path of a coordinate pair")
    lat: str | None = Field(default=None, description="native path of a latitude")
    lon: str | None = Field(default=None, description="native path of a longitude")
    radius: Rule | None = Field(default=None, description="a circle's radius (unit: native)")
    points: str | None = Field(default=None, description="native path of a polygon ring")


class Table(_Spec):
    """A code table: native code -> canonical value; an unknown code takes ``default``, or is an
    error naming the code when there is none."""

    values: dict[str | int, Scalar] = Field(min_length=1)
    default: Scalar | None = None


class Coordinates(_Spec):
    """How the city writes coordinates, and which native field names their datum."""

    order: Literal["lat,lon", "lon,lat"]
    format: Literal["array", "string"] = Field(
        default="array", description="how encoding writes a pair: [x, y] or 'x,y'"
    )
    datum: Rule | None = Field(
        default=None,
        description="canonical values WGS-84, CGCS2000, GCJ-02, BD-09; absent: WGS-84",
    )


class Section(_Spec):
    """Canonical field -> rule; ``native_constants`` are written as they are when encoding."""

    fields: dict[str, Rule] = Field(min_length=1)
    native_constants: dict[str, Any] = Field(default_factory=dict)


class DialectSpec(_Spec):
    """One city system's JSON dialect."""

    dialect: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str | None = None
    time_zone: str = Field(default="Asia/Shanghai", description="zone of naive native times")
    cap_time_zone: str | None = Field(
        default=None, description="zone CAP dateTimes are written in; default: time_zone"
    )
    max_bytes: int = Field(default=1 << 20, gt=0, description="larger messages are refused")
    coordinates: Coordinates | None = None
    tables: dict[str, Table] = Field(default_factory=dict)
    incident: Section
    task: Section | None = None
    answer: Section | None = None


class Source:
    """The loaded YAML of a mapping file: plain data plus the line of every key."""

    def __init__(self, file: str, tree: Any) -> None:
        self.file = file
        self._tree = tree
        self.data = _plain(tree)

    def line(self, loc: tuple[str | int, ...]) -> int | None:
        """The line (1-based) of the deepest key of ``loc`` present in the file."""
        node, line = self._tree, None
        for key in loc:
            if isinstance(node, CommentedMap) and key in node:
                line = node.lc.key(key)[0] + 1
                node = node[key]
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
                line = node.lc.item(key)[0] + 1
                node = node[key]
        return line

    def error(self, loc: tuple[str | int, ...], message: str) -> DialectError:
        where = ".".join(str(k) for k in loc)
        text = f"{where}: {message}" if where else message
        return DialectError(text, file=self.file, line=self.line(loc))


def load_source(path: Path) -> Source:
    """Read a mapping file's YAML (no validation yet); DialectError names file and line."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DialectError(f"cannot read the mapping: {exc}", file=file) from None
    try:
        tree = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DialectError(f"not valid YAML: {problem}", file=file, line=line) from None
    if not isinstance(tree, CommentedMap):
        raise DialectError("a mapping file must be a YAML mapping", file=file, line=1)
    return Source(file, tree)


def parse_spec(source: Source) -> DialectSpec:
    """Validate the YAML against the format; the first problem is raised with its line."""
    try:
        return DialectSpec.model_validate(source.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(k for k in err["loc"] if isinstance(k, int) or k in _known(source, err))
        raise source.error(loc or tuple(err["loc"]), err["msg"]) from None


def _known(source: Source, err: Any) -> set[str]:
    # pydantic puts union branch names ("str", "int", "function-after[...]") into a location;
    # only the names that are really keys of the file locate anything.
    keys: set[str] = set()
    node: Any = source.data
    for key in err["loc"]:
        if isinstance(node, dict) and key in node:
            keys.add(str(key))
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
    return keys


def _plain(node: Any) -> Any:
    # ruamel's round-trip types (CommentedMap, ScalarFloat, ...) become plain Python, so that
    # pydantic and orjson see ordinary values.
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the mapping format (committed as ``schemas/dialect.schema.json``)."""
    schema = DialectSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://liandong.example/schemas/dialect.schema.json"
    return schema


def main() -> None:
    """Print the JSON Schema of the mapping format."""
    sys.stdout.buffer.write(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
