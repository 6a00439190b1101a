"""The playbook format (minimal form: conditions on CAP fields, task steps to neighbours bound
by an agreement) and its loader.

YAML is read with ruamel.yaml in safe mode, which rejects duplicate keys; the document is then
validated by pydantic models that forbid unknown fields, so a typo is an error naming its place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from hub.engine.duration import duration_ms
from hub.errors import InvalidInput
from hub.model.incident import Category, Certainty, MsgType, Severity, Urgency


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Spec):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class CategoryIn(_Spec):
    category_in: list[Category] = Field(min_length=1)


class MsgTypeIn(_Spec):
    msg_type_in: list[MsgType] = Field(min_length=1)


class SeverityAtLeast(_Spec):
    severity_at_least: Severity


class UrgencyAtLeast(_Spec):
    urgency_at_least: Urgency


class CertaintyAtLeast(_Spec):
    certainty_at_least: Certainty


class AllOf(_Spec):
    all: list[Condition] = Field(min_length=1)


class AnyOf(_Spec):
    any: list[Condition] = Field(min_length=1)


class NotOf(_Spec):
    not_: Condition = Field(alias="not")


Condition = Annotated[
    CategoryIn
    | MsgTypeIn
    | SeverityAtLeast
    | UrgencyAtLeast
    | CertaintyAtLeast
    | AllOf
    | AnyOf
    | NotOf,
    Field(union_mode="left_to_right"),
]
for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()


class AgreementFilter(_Spec):
    """Targets must share an agreement with the sender whose clause covers the category."""

    kind: Literal["joint_response", "information", "joint_enforcement", "liaison", "resources"] = (
        "joint_response"
    )


class Targets(_Spec):
    within_km: float = Field(gt=0, le=200)
    agreement: AgreementFilter = AgreementFilter()


class TaskSpec(_Spec):
    targets: Targets
    action: Text
    response: Literal["acknowledge", "accept"] = "acknowledge"
    ack_deadline: str

    @field_validator("ack_deadline")
    @classmethod
    def _deadline(cls, value: str) -> str:
        if duration_ms(value) <= 0:
            raise ValueError("ack_deadline must be longer than zero")
        return value


class Step(_Spec):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    task: TaskSpec


class Trigger(_Spec):
    events: list[Literal["incident.reported"]] = Field(min_length=1)


class Playbook(_Spec):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    title: Text
    owners: list[str] = Field(min_length=1)
    mode: Literal["once_per_incident"] = "once_per_incident"
    trigger: Trigger
    conditions: AllOf | AnyOf | NotOf
    steps: list[Step] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[Step]) -> list[Step]:
        ids = [s.id for s in steps]
        if len(ids) != len(set(ids)):
            raise ValueError("step ids must be unique within a playbook")
        return steps


def load_playbook(path: Path) -> Playbook:
    """Parse and validate one playbook file; errors name the file and what is wrong."""
    yaml = YAML(typ="safe", pure=True)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    try:
        return Playbook.model_validate(document)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{path}: {where}: {err['msg']}") from None


def load_playbooks(directory: Path) -> list[Playbook]:
    """Every ``*.yaml`` playbook in ``directory`` (cases files excluded), sorted by id."""
    files = sorted(p for p in directory.glob("*.yaml") if not p.name.endswith(".cases.yaml"))
    playbooks = [load_playbook(p) for p in files]
    ids = [p.id for p in playbooks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidInput(f"{directory}: playbook ids used twice: {', '.join(duplicates)}")
    return sorted(playbooks, key=lambda p: p.id)
