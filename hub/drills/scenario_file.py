"""Reading a scenario file: every fault reported as ``file:line: where: what``.

The YAML is read with its line numbers (``hub.engine.source``), validated against the
``Scenario`` model, checked against the region (known jurisdictions), and expanded once, so a
scenario that passes ``check`` also expands.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from hub.drills.scenario import InjectError, Scenario, expand
from hub.engine.source import Document, PlaybookError, Problem, read_yaml
from hub.errors import InvalidInput
from hub.region import Region

# pydantic puts these union tags into error locations; the file has no such keys.
_TAGS = frozenset({"compact", "cap"})


class ScenarioError(InvalidInput):
    """A scenario file that cannot be used; ``problems`` lists the faults found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_scenario(path: Path, region: Region | None = None) -> Scenario:
    """Read, validate and trial-expand ``path``; raises ``ScenarioError`` naming file:line."""
    try:
        doc = read_yaml(path)
    except PlaybookError as exc:
        raise ScenarioError(exc.problems) from None
    if not isinstance(doc.data, dict):
        raise ScenarioError([doc.problem((), "a scenario is a mapping (id, title, injects...)")])
    try:
        scenario = Scenario.model_validate(doc.data)
    except ValidationError as exc:
        raise ScenarioError(_problems(doc, exc)) from None
    problems = _region_problems(doc, scenario, region) if region is not None else []
    if problems:
        raise ScenarioError(problems)
    _check_unique(doc, scenario)
    try:
        expand(scenario)
    except InjectError as exc:
        index = next(i for i, j in enumerate(scenario.injects) if j.id == exc.inject)
        problem = doc.problem(("injects", index, *exc.where), str(exc))
        raise ScenarioError([problem]) from None
    return scenario


def _problems(doc: Document, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        where = [p for p in err["loc"] if p not in _TAGS]
        message = err["msg"].removeprefix("Value error, ")
        out.append(doc.problem(where, message))
    return out


def _region_problems(doc: Document, scenario: Scenario, region: Region) -> list[Problem]:
    return [
        doc.problem(
            ("injects", i, "jurisdiction"),
            f"'{inject.jurisdiction}' is not a jurisdiction of the region",
        )
        for i, inject in enumerate(scenario.injects)
        if not region.is_known(inject.jurisdiction)
    ]


def _check_unique(doc: Document, scenario: Scenario) -> None:
    seen: dict[str, int] = {}
    for i, inject in enumerate(scenario.injects):
        if inject.id in seen:
            first = doc.line_of(("injects", seen[inject.id]))
            raise ScenarioError(
                [doc.problem(("injects", i, "id"), f"'{inject.id}' is used at line {first}")]
            )
        seen[inject.id] = i
