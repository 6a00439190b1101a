"""An adapter's fixtures, and ``liandong adapter check``: manifest, mapping, then every case.

``fixtures/cases.yaml`` lists cases; the files they name sit beside it::

    cases:
      - name: spill-report           # native in → canonical
        inbound: incident-spill.xml  # as the city sends it
        channel: incidents           # incidents (default) or answers
        expect: incident-spill.json  # the canonical incident (or answer) it must become
      - name: task-out               # canonical out → native
        task: task.json              # a task as GET /api/v1/tasks returns it
        expect: task.xml             # what the city must receive

An inbound incident is also sent back through the codec where the format can express it
(native → canonical → native → canonical must give the same incident). Native documents are
compared as documents, not bytes: JSON by value, XML in canonical form with whitespace-only
text dropped, so indentation in a fixture does not matter.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from lxml import etree  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.framework.codec import Codec, load_codec
from adapters.framework.discovery import Found
from adapters.framework.yamldoc import describe_errors, load_yaml
from adapters.links.mqtt_protocol import TaskAnswer
from hub.errors import HubError, InvalidInput
from hub.intake.service import parse_incident
from hub.model.incident import Incident

__all__ = ["CASES_FILE", "Check", "check_adapter", "same_document"]

CASES_FILE = "cases.yaml"


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    inbound: str | None = None
    channel: Literal["incidents", "answers", "any"] = "incidents"
    task: str | None = None
    expect: str

    @model_validator(mode="after")
    def _one_direction(self) -> Case:
        if (self.inbound is None) == (self.task is None):
            raise ValueError("a case has either `inbound` (native in) or `task` (native out)")
        return self


class Cases(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: what was checked, and the problem if it failed."""

    name: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _safe_parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
    )


def _canonical_xml(data: bytes) -> str:
    root = etree.fromstring(data, _safe_parser())
    text: str = etree.canonicalize(root, strip_text=True)
    return text


def _pretty(data: bytes) -> list[str]:
    stripped = data.lstrip()
    if stripped[:1] in (b"{", b"["):
        return (
            orjson.dumps(orjson.loads(data), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
            .decode()
            .splitlines()
        )
    root = etree.fromstring(
        data, etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    )
    return str(etree.tostring(root, pretty_print=True, encoding="unicode")).splitlines()


def same_document(produced: bytes, expected: bytes) -> str | None:
    """None if the two are the same document; else a short diff (expected → produced)."""
    try:
        if expected.lstrip()[:1] in (b"{", b"["):
            if orjson.loads(produced) == orjson.loads(expected):
                return None
        elif _canonical_xml(produced) == _canonical_xml(expected):
            return None
        diff = difflib.unified_diff(
            _pretty(expected), _pretty(produced), "expected", "produced", lineterm="", n=1
        )
        return "differs:\n" + "\n".join(list(diff)[:30])
    except (orjson.JSONDecodeError, etree.XMLSyntaxError) as exc:
        return f"not comparable: {exc}"


def _read(folder: Path, name: str) -> bytes:
    path = folder / name
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror or exc}") from None


def _inbound(codec: Codec, folder: Path, case: Case) -> str | None:
    assert case.inbound is not None
    decoded = codec.decode(_read(folder, case.inbound), case.channel)
    expected_raw = _read(folder, case.expect)
    if isinstance(decoded, TaskAnswer):
        expected_answer = TaskAnswer.model_validate_json(expected_raw)
        if decoded != expected_answer:
            return f"answer {decoded.model_dump()} != expected {expected_answer.model_dump()}"
        return None
    expected: Incident = parse_incident(expected_raw)
    if decoded != expected:
        produced = orjson.dumps(decoded.model_dump(mode="json", exclude_none=True))
        return same_document(produced, expected_raw) or "incident differs from expected"
    native = codec.encode_incident(decoded)
    if native is not None:
        again = codec.decode(native, case.channel)
        if again != decoded:
            return "native → canonical → native → canonical changed the incident"
    return None


def _outbound(codec: Codec, folder: Path, case: Case) -> str | None:
    assert case.task is not None
    task: dict[str, Any] = orjson.loads(_read(folder, case.task))
    return same_document(codec.encode_task(task), _read(folder, case.expect))


def load_cases(path: Path) -> Cases:
    document, lines = load_yaml(path)
    try:
        return Cases.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(describe_errors(path, exc, lines)) from None


def check_adapter(found: Found, *, known_jurisdiction: bool | None = None) -> list[Check]:
    """Every check of ``liandong adapter check``, in order; stops early only when a later
    check could not mean anything (no manifest, no codec). ``known_jurisdiction``: whether the
    region knows the manifest's code (None: not checked here)."""
    if found.manifest is None:
        return [Check("manifest", found.error or "does not load")]
    manifest = found.manifest
    checks = [Check("manifest")]
    if known_jurisdiction is not None:
        problem = None if known_jurisdiction else f"'{manifest.jurisdiction}' is not in the region"
        checks.append(Check(f"jurisdiction {manifest.jurisdiction}", problem))
    try:
        codec = load_codec(manifest.codec, found.folder)
    except HubError as exc:
        return [*checks, Check(f"codec {manifest.codec.kind}", str(exc))]
    checks.append(Check(f"codec {manifest.codec.kind}"))
    folder = found.folder / manifest.fixtures
    try:
        cases = load_cases(folder / CASES_FILE)
    except HubError as exc:
        return [*checks, Check("fixtures", str(exc))]
    for case in cases.cases:
        run = _inbound if case.inbound is not None else _outbound
        try:
            problem = run(codec, folder, case)
        except (HubError, ValidationError, orjson.JSONDecodeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        checks.append(Check(f"case {case.name}", problem))
    return checks
