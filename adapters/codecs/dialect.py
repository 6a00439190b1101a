"""City JSON dialects by declarative mapping: one YAML file per city system, no Python.

``Dialect.load(path)`` reads a mapping (format: ``dialect_spec.py``; JSON Schema:
``schemas/dialect.schema.json``; examples: ``examples/``) and compiles it once into plain
functions, so that decoding a message is orjson, a walk of prepared closures, and one pydantic
``model_validate``. What a mapping can say: where each canonical field is in the city's JSON
(dotted paths with list indices), constants and defaults, code tables (with a ``default`` or an
error naming the unknown code), length units (metres → CAP km; CAP altitude is in feet), time
formats and zones, coordinate order, and the field naming the coordinates' datum (GCJ-02 and
BD-09 are refused, never shifted; see ``geo.py``).

Every problem is a ``DialectError`` (an ``InvalidInput``): in a mapping file it names
``file:line``; in a message it names the native field path, the canonical field and what is
wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.codecs.dialect_check import differences
from adapters.codecs.dialect_compile import Compiled, compile_section, datum_target
from adapters.codecs.dialect_leaf import Context, Failure, Leaf, Problem, Writes
from adapters.codecs.dialect_rules import compile_rule
from adapters.codecs.dialect_spec import DialectError, DialectSpec, load_source, parse_spec
from adapters.codecs.dialect_values import CodeTable, zone
from adapters.codecs.geo import refuse_datum
from hub.model.events import TaskIssued
from hub.model.incident import Incident
from hub.model.task import Task

__all__ = ["Answer", "Dialect", "DialectError", "TaskAnswerNative"]

Answer = Literal["acknowledge", "accept", "decline", "done"]


@dataclass(frozen=True, slots=True)
class TaskAnswerNative:
    """A city's answer to a task, read from its own message."""

    task_id: str
    answer: Answer
    reason: str | None = None


class _AnswerFields(BaseModel):
    """The canonical fields of an answer (what the ``answer`` section maps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str = Field(min_length=1)
    answer: Answer
    reason: str | None = None


class Dialect:
    """One city system's JSON dialect, compiled; build it with ``Dialect.load``."""

    def __init__(self, spec: DialectSpec, sections: dict[str, Compiled], datum: Leaf | None):
        self.spec = spec
        self.name = spec.dialect
        self._sections = sections
        self._incident = sections["incident"]
        self._datum = datum
        # what Incident.model_validate calls, without its Python frame and keyword handling
        self._validate_incident = Incident.__pydantic_validator__.validate_python

    @classmethod
    def load(cls, path: str | Path) -> Dialect:
        """Read and compile a mapping file; DialectError names ``file:line`` on a bad one."""
        source = load_source(Path(path))
        spec = parse_spec(source)

        def checked(loc: tuple[str, ...], make: Any, value: Any) -> Any:
            try:
                return make(value)
            except ValueError as exc:
                raise source.error(loc, str(exc)) from None

        tables = {}
        for name, table in spec.tables.items():
            tables[name] = checked(("tables", name), lambda t, n=name: CodeTable(n, t), table)
        native_zone = checked(("time_zone",), zone, spec.time_zone)
        cap_zone = checked(("cap_time_zone",), zone, spec.cap_time_zone or spec.time_zone)
        order = spec.coordinates.order if spec.coordinates else "lat,lon"
        form = spec.coordinates.format if spec.coordinates else "array"
        sections: dict[str, Compiled] = {}
        models: dict[str, type[BaseModel]] = {
            "incident": Incident,
            "task": Task,
            "answer": _AnswerFields,
        }
        labels = {"incident": "CAP", "task": "task", "answer": "answer"}
        for name, model in models.items():
            section = getattr(spec, name)
            if section is None:
                continue
            ctx = Context(tables, native_zone, cap_zone, order, form, labels[name])
            sections[name] = compile_section(
                ctx, source, name, model, section, check_required=name != "task"
            )
        datum = None
        if spec.coordinates and spec.coordinates.datum:
            ctx = Context(tables, native_zone, cap_zone, order, form, "coordinate")
            try:
                datum = compile_rule(ctx, datum_target(), spec.coordinates.datum)
            except Problem as exc:
                loc = ("coordinates", "datum", *((exc.attr,) if exc.attr else ()))
                raise source.error(loc, str(exc)) from None
        return cls(spec, sections, datum)

    # -- incidents ---------------------------------------------------------------------------

    def decode_incident(self, raw: bytes) -> Incident:
        """The city's incident message → the canonical incident (CAP 1.2 as JSON)."""
        doc = self._read(raw)
        try:
            if self._datum is not None:
                self._check_datum(doc)
            canonical = self._incident.decode(doc)
        except Failure as exc:
            raise DialectError(f"{self.name}: {exc}", path=exc.native) from None
        try:
            incident: Incident = self._validate_incident(canonical)
        except ValidationError as exc:
            raise self._invalid(exc, self._incident, "CAP") from None
        return incident

    def encode_incident(self, incident: Incident, *, allow_loss: bool = False) -> bytes:
        """The canonical incident → the city's message. Unless ``allow_loss``, anything the
        dialect cannot carry (a second info block, a field it has no place for, a value its
        constants fix otherwise) is a DialectError listing what would be lost."""
        canonical = incident.model_dump(mode="json", exclude_none=True)
        native = self._encode(self._incident, canonical)
        if self._datum is not None:
            writes = Writes()
            self._datum.encode("WGS-84", writes)
            writes.settle(native)
        raw = orjson.dumps(native)
        if allow_loss:
            return raw
        try:
            back = self.decode_incident(raw).model_dump(mode="json", exclude_none=True)
        except DialectError as exc:
            raise DialectError(f"{self.name}: cannot encode this incident: {exc}") from None
        lost = differences(canonical, back)
        if lost:
            shown = "; ".join(lost[:6]) + ("; ..." if len(lost) > 6 else "")
            raise DialectError(f"{self.name}: the dialect cannot carry all of it: {shown}")
        return raw

    # -- tasks and answers -------------------------------------------------------------------

    def encode_task(self, task: Mapping[str, Any]) -> bytes:
        """A ``task.issued`` event's ``data`` (``{"task": {...}}``; a bare task dict is taken
        too) → the city's task message."""
        compiled = self._section("task")
        try:
            data = dict(task)
            model = TaskIssued.model_validate(data).task if "task" in data else None
            model = model or Task.model_validate(data)
        except (ValidationError, TypeError, ValueError) as exc:
            raise DialectError(f"{self.name}: not a task.issued payload: {_first(exc)}") from None
        return orjson.dumps(self._encode(compiled, model.model_dump(mode="json")))

    def decode_task(self, raw: bytes) -> dict[str, Any]:
        """The city's task message → the task fields the mapping covers (for simulators)."""
        compiled = self._section("task")
        doc = self._read(raw)
        try:
            return compiled.decode(doc)
        except Failure as exc:
            raise DialectError(f"{self.name}: {exc}", path=exc.native) from None

    def decode_answer(self, raw: bytes) -> TaskAnswerNative:
        """The city's acknowledge/accept/decline/done message → ``TaskAnswerNative``."""
        compiled = self._section("answer")
        doc = self._read(raw)
        try:
            fields = _AnswerFields.model_validate(compiled.decode(doc))
        except Failure as exc:
            raise DialectError(f"{self.name}: {exc}", path=exc.native) from None
        except ValidationError as exc:
            raise self._invalid(exc, compiled, "answer") from None
        return TaskAnswerNative(fields.task_id, fields.answer, fields.reason)

    def encode_answer(self, answer: TaskAnswerNative) -> bytes:
        """An answer → the city's answer message (for simulators of city systems)."""
        compiled = self._section("answer")
        canonical = {"task_id": answer.task_id, "answer": answer.answer}
        if answer.reason is not None:
            canonical["reason"] = answer.reason
        return orjson.dumps(self._encode(compiled, canonical))

    # -- plumbing ----------------------------------------------------------------------------

    def _section(self, name: str) -> Compiled:
        compiled = self._sections.get(name)
        if compiled is None:
            raise DialectError(
                f"{self.name}: the mapping has no '{name}' section, so it cannot read or write "
                f"{name} messages"
            )
        return compiled

    def _read(self, raw: bytes) -> dict[str, Any]:
        if type(raw) is bytes:
            size = len(raw)
        elif isinstance(raw, bytearray | memoryview):
            size = raw.nbytes if isinstance(raw, memoryview) else len(raw)
        else:
            raise DialectError(f"{self.name}: a message must be bytes, not {type(raw).__name__}")
        if size > self.spec.max_bytes:
            raise DialectError(
                f"{self.name}: message is {size} bytes; the limit is {self.spec.max_bytes}"
            )
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DialectError(f"{self.name}: not JSON: {exc}") from None
        if type(doc) is not dict:
            raise DialectError(f"{self.name}: a message must be a JSON object, not {_kind(doc)}")
        return doc

    def _check_datum(self, doc: dict[str, Any]) -> None:
        assert self._datum is not None
        datum = self._datum.decode(doc)
        if isinstance(datum, str):
            try:
                refuse_datum(datum)
            except ValueError as exc:
                raise Failure(self._datum.native, "coordinate datum", str(exc)) from None

    def _encode(self, compiled: Compiled, canonical: dict[str, Any]) -> dict[str, Any]:
        try:
            return compiled.encode(canonical)
        except (ValueError, TypeError) as exc:
            raise DialectError(f"{self.name}: cannot encode: {exc}") from None

    def _invalid(self, exc: ValidationError, compiled: Compiled, label: str) -> DialectError:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        message = str(err["msg"])
        for end in range(len(loc), 0, -1):
            native = compiled.origin.get(".".join(loc[:end]))
            if native is not None:
                where = f"native field '{native}' ({label} {'.'.join(loc)})"
                return DialectError(f"{self.name}: {where}: {message}", path=native)
        where = f"{label} {'.'.join(loc)}" if loc else f"the {label} message as a whole"
        return DialectError(f"{self.name}: {where}: {message}")


def _kind(value: Any) -> str:
    return {list: "an array", str: "text", int: "a number", float: "a number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)
