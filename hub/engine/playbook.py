"""The playbook format and its loader.

A playbook (one YAML file in ``playbooks/``) is Home Assistant-shaped: a ``trigger`` (the event
types it listens to), ``conditions`` combined with explicit ``all`` / ``any`` / ``not``, and
``steps`` run in order, with a ``mode`` saying what happens when it triggers again on the same
incident. The shape is checked by pydantic models that forbid unknown fields; conditions are
compiled by :mod:`hub.engine.conditions`. Every fault is reported as ``file:line: what is wrong``
(duplicate keys included). ``hub/engine/schemas/playbook.schema.json`` is the same format as a
JSON Schema, generated from these models (:mod:`hub.engine.schema`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.engine import catalogue
from hub.engine.conditions import Node, categories, min_severity, parse, parse_root
from hub.engine.duration import duration_ms
from hub.engine.operators import Context
from hub.engine.source import Document, PlaybookError, Problem, Where, read_yaml
from hub.engine.spatial import Zone, load_zones
from hub.model.region import ClauseKind, RungLevel
from hub.region import Region, load_region

Mode = Literal["once_per_incident", "on_every_update", "restart"]
StepKind = Literal["task", "request_resources", "notify", "approval", "escalate"]
STEP_KINDS: tuple[StepKind, ...] = ("task", "request_resources", "notify", "approval", "escalate")
_ID = r"^[a-z0-9][a-z0-9-]*$"


def _positive_duration(value: str) -> str:
    if duration_ms(value) <= 0:
        raise ValueError("the duration must be longer than zero")
    return value


def _known_item(value: str) -> str:
    catalogue.item(value)
    return value


Duration = Annotated[str, AfterValidator(_positive_duration)]
Code = Annotated[str, Field(pattern=r"^[1-9][0-9]{5}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Spec):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class AgreementFilter(_Spec):
    """The kind of clause that must authorise the request (the step kind's default if absent)."""

    kind: ClauseKind


class Targets(_Spec):
    """Who a step addresses: the union of the sources given, never the sender's own
    jurisdiction unless ``sender`` is set, each kept only where an agreement in force binds
    the sender and the target with a clause of the right kind covering the hazard."""

    neighbours: bool = Field(default=False, description="districts bordering the sender")
    within_km: float | None = Field(
        default=None, gt=0, le=200, description="districts within this many km of the area"
    )
    agreement_parties: bool = Field(
        default=False, description="parties of the agreements covering the hazard category"
    )
    jurisdictions: list[Code] = Field(default_factory=list, description="an explicit list")
    sender: bool = Field(default=False, description="the sender itself")
    agreement: AgreementFilter | None = None

    @model_validator(mode="after")
    def _some_source(self) -> Targets:
        if not (
            self.neighbours
            or self.within_km
            or self.agreement_parties
            or self.jurisdictions
            or self.sender
        ):
            raise ValueError(
                "name at least one source: neighbours, within_km, agreement_parties, "
                "jurisdictions or sender"
            )
        return self


OnDecline = Literal["stand", "next_candidate"]


class _Reassignable(_Spec):
    """What a step that can be declined may add: ask only the first ``at_most`` candidates
    (in code order), and on a decline ask the next candidate not yet asked."""

    at_most: int | None = Field(
        default=None, ge=1, description="ask only the first N authorised targets, in code order"
    )
    on_decline: OnDecline = Field(
        default="stand",
        description="next_candidate: when a target declines, ask the next authorised target "
        "(in code order) this step has not asked yet",
    )

    @model_validator(mode="after")
    def _reserve_to_draw_on(self) -> _Reassignable:
        if self.on_decline == "next_candidate" and self.at_most is None:
            raise ValueError(
                "on_decline: next_candidate needs at_most (otherwise every candidate is asked "
                "at once and there is nobody left to ask)"
            )
        return self


class TaskSpec(_Reassignable):
    targets: Targets
    action: Text
    response: Literal["acknowledge", "accept"] = "acknowledge"
    ack_deadline: Duration


class ItemLine(_Spec):
    item: Annotated[str, AfterValidator(_known_item)]
    quantity: int = Field(gt=0)


class ResourceRequestSpec(_Reassignable):
    """Ask the targets to lend items; recorded as a task to accept until the registry
    fulfils requests (its own issue)."""

    targets: Targets
    items: list[ItemLine] = Field(min_length=1)
    purpose: Text
    ack_deadline: Duration


class NotifySpec(_Spec):
    """Information only: the target is asked to confirm receipt, nothing more."""

    targets: Targets
    message: Text
    ack_deadline: Duration = "PT1H"


class ApprovalSpec(_Spec):
    """A coordinator must approve before the following steps run."""

    approver: Literal["regional_coordinator"] = "regional_coordinator"
    question: Text
    ttl: Duration
    on_expiry: Literal["proceed", "cancel"]


class Rung(_Spec):
    level: RungLevel
    wait: Duration


class EscalateSpec(_Spec):
    """Which steps' tasks climb which ladder when unacknowledged: the authorising agreement's
    (what the hub's escalator runs) or the playbook's own rungs."""

    steps: list[str] = Field(min_length=1)
    ladder: Literal["agreement"] | list[Rung] = "agreement"


class Step(_Spec):
    id: str = Field(pattern=_ID)
    when: Any = Field(default=None, description="a condition; the step is skipped unless it holds")
    task: TaskSpec | None = None
    request_resources: ResourceRequestSpec | None = None
    notify: NotifySpec | None = None
    approval: ApprovalSpec | None = None
    escalate: EscalateSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a step is exactly one of {', '.join(STEP_KINDS)}")
        return self

    @property
    def kind(self) -> StepKind:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)


class Trigger(_Spec):
    events: list[Literal["incident.reported"]] = Field(min_length=1)


class PlaybookSpec(_Spec):
    id: str = Field(pattern=_ID)
    version: int = Field(ge=1)
    title: Text
    owners: list[str] = Field(min_length=1)
    mode: Mode = "once_per_incident"
    fallback: bool = Field(
        default=False, description="runs only when no other playbook matched the incident"
    )
    trigger: Trigger
    conditions: Any
    steps: list[Step] = Field(min_length=1)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledStep:
    """A step with its ``when`` compiled and what the planner asks of it worked out once."""

    spec: Step
    when: Node | None
    id: str = field(init=False)
    kind: StepKind = field(init=False)
    body: Any = field(init=False)
    """The step's TaskSpec, ResourceRequestSpec, NotifySpec, ApprovalSpec or EscalateSpec."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", self.spec.id)
        object.__setattr__(self, "kind", self.spec.kind)
        object.__setattr__(self, "body", getattr(self.spec, self.spec.kind))


@dataclass(frozen=True, slots=True, eq=False)
class Playbook:
    """A loaded playbook: its validated spec and compiled conditions."""

    spec: PlaybookSpec
    conditions: Node
    steps: tuple[CompiledStep, ...]
    source: str
    categories: frozenset[str] | None = field(init=False)
    min_severity: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", categories(self.conditions))
        object.__setattr__(self, "min_severity", min_severity(self.conditions))

    def __repr__(self) -> str:
        return f"Playbook({self.spec.id} v{self.spec.version})"

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> int:
        return self.spec.version

    @property
    def mode(self) -> Mode:
        return self.spec.mode

    @property
    def fallback(self) -> bool:
        return self.spec.fallback


def compile_playbook(doc: Document, zones: Mapping[str, Zone], region: Region) -> Playbook:
    """Validate and compile one parsed playbook; every fault found raises ``PlaybookError``."""
    try:
        spec = PlaybookSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise PlaybookError([_pydantic_problem(doc, e) for e in exc.errors()]) from None
    ctx = Context(zones, region)
    faults = _step_faults(spec.steps)
    conditions = parse_root(spec.conditions, ("conditions",), ctx, faults)
    steps = []
    for i, step in enumerate(spec.steps):
        when = None if step.when is None else parse(step.when, ("steps", i, "when"), ctx, faults)
        steps.append(CompiledStep(step, when))
        targets: Targets | None = getattr(getattr(step, step.kind), "targets", None)
        for j, code in enumerate(targets.jurisdictions if targets else ()):
            if not region.is_known(code):
                where = ("steps", i, step.kind, "targets", "jurisdictions", j)
                faults.append((where, f"'{code}' is not a jurisdiction of the region"))
    if faults or conditions is None:
        raise PlaybookError([doc.problem(w, m) for w, m in faults])
    return Playbook(spec, conditions, tuple(steps), doc.file)


def _step_faults(steps: Sequence[Step]) -> list[tuple[Where, str]]:
    """What is wrong with the order of the steps: ids used twice, escalations of steps that are
    not earlier issuing steps, an approval with nothing after it."""
    faults: list[tuple[Where, str]] = []
    seen: set[str] = set()
    issuing: set[str] = set()
    for i, step in enumerate(steps):
        if step.id in seen:
            faults.append((("steps", i, "id"), f"step id '{step.id}' is used twice"))
        seen.add(step.id)
        if step.escalate is not None:
            if unknown := [s for s in step.escalate.steps if s not in issuing]:
                faults.append(
                    (
                        ("steps", i, "escalate", "steps"),
                        f"{', '.join(unknown)}: not earlier task, request_resources or notify "
                        "steps",
                    )
                )
        elif step.approval is None:
            issuing.add(step.id)
    if steps and steps[-1].approval is not None:
        where = ("steps", len(steps) - 1, "approval")
        faults.append((where, "an approval step must be followed by the steps it guards"))
    return faults


def _pydantic_problem(doc: Document, err: Any) -> Problem:
    message = str(err["msg"]).removeprefix("Value error, ")
    return doc.problem(tuple(err["loc"]), message)


def load_playbook(
    path: Path, *, zones: Mapping[str, Zone] | None = None, region: Region | None = None
) -> Playbook:
    """Parse, validate and compile one playbook file (zones from ``zones/`` beside it)."""
    found = zones if zones is not None else load_zones(path.parent / "zones")
    return compile_playbook(read_yaml(path), found, region or load_region())


def playbook_files(directory: Path) -> list[Path]:
    """The playbook files of a directory: ``*.yaml`` except ``*.cases.yaml``, sorted."""
    return sorted(p for p in directory.glob("*.yaml") if not p.name.endswith(".cases.yaml"))


def load_playbooks(directory: Path, region: Region | None = None) -> list[Playbook]:
    """Every playbook in ``directory``, sorted by id; all faults of all files are reported."""
    the_region = region or load_region()
    zones = load_zones(directory / "zones")
    playbooks: list[Playbook] = []
    problems: list[Problem] = []
    for path in playbook_files(directory):
        try:
            playbooks.append(load_playbook(path, zones=zones, region=the_region))
        except PlaybookError as exc:
            problems.extend(exc.problems)
    seen: dict[str, Playbook] = {}
    for playbook in playbooks:
        first = seen.setdefault(playbook.id, playbook)
        if first is not playbook:
            message = f"playbook id '{playbook.id}' is already used by {first.source}"
            problems.append(Problem(playbook.source, _id_line(playbook.source), "id", message))
    if problems:
        raise PlaybookError(problems)
    return sorted(playbooks, key=lambda p: p.id)


def _id_line(source: str) -> int:
    return read_yaml(Path(source)).line_of(("id",))


def step_spec(step: Step) -> Any:
    """The body of a step (its TaskSpec, NotifySpec, ...)."""
    return getattr(step, step.kind)
