"""Exercise scenarios: timed injects per jurisdiction, and their expansion into canonical CAP.

A scenario scripts what the cities do during an exercise, the timed-inject model of exercise
tools: at an offset from the start, a jurisdiction reports an incident (the canonical CAP
incident, or the compact form below), updates or cancels one it reported, stays silent on its
tasks for a while, or declines its tasks for an incident with a reason. Every incident is
forced to CAP status ``Exercise``. ``expand`` is pure: the same scenario always gives the same
messages, identifiers included (``{scenario}.{inject}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from hub.engine.duration import duration_ms
from hub.model.envelope import parse_time
from hub.model.incident import (
    Category,
    Certainty,
    Incident,
    Info,
    MsgType,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be lowercase letters, digits and '-', e.g. pingwang-spill")
    return value


def _duration(value: str) -> str:
    duration_ms(value)
    return value


def _timestamp(value: str) -> str:
    parse_time(value)
    return value


def _code(value: str) -> str:
    if not re.fullmatch(r"\d{6}", value):
        raise ValueError("must be a six-digit GB/T 2260 code, quoted, e.g. '320509'")
    return value


Name = Annotated[str, AfterValidator(_name)]
Duration = Annotated[str, AfterValidator(_duration)]
Timestamp = Annotated[str, AfterValidator(_timestamp)]
Code = Annotated[str, AfterValidator(_code)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Title(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class CompactArea(_Strict):
    """A CAP area: ``desc`` is its areaDesc, ``geocode`` maps valueName to value."""

    desc: str = Field(min_length=1)
    circle: list[str] = Field(default_factory=list)
    polygon: list[str] = Field(default_factory=list)
    geocode: dict[str, str] = Field(default_factory=dict)

    def cap(self) -> dict[str, Any]:
        area: dict[str, Any] = {"areaDesc": self.desc}
        if self.polygon:
            area["polygon"] = list(self.polygon)
        if self.circle:
            area["circle"] = list(self.circle)
        if self.geocode:
            area["geocode"] = [{"valueName": k, "value": v} for k, v in self.geocode.items()]
        return area


class _InfoChanges(_Strict):
    """Info fields an update may change (snake_case names for CAP's camelCase ones)."""

    urgency: Urgency | None = None
    severity: Severity | None = None
    certainty: Certainty | None = None
    response: list[ResponseType] | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    expires: Duration | None = Field(default=None, description="after the message's sent time")
    area: list[CompactArea] | None = Field(default=None, min_length=1)

    def apply(self, info: dict[str, Any], sent: datetime) -> dict[str, Any]:
        out = dict(info)
        for name in ("urgency", "severity", "certainty", "headline", "description", "instruction"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.response is not None:
            out["responseType"] = [str(r) for r in self.response]
        if self.expires is not None:
            out["expires"] = _cap_time(sent + timedelta(milliseconds=duration_ms(self.expires)))
        if self.area is not None:
            out["area"] = [a.cap() for a in self.area]
        return out


class CompactIncident(_InfoChanges):
    """One CAP info block written short; expands to a CAP Alert from the inject's jurisdiction."""

    language: str = "zh-CN"
    event: str = Field(min_length=1)
    category: list[Category] = Field(min_length=1)
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    sender_name: str | None = None
    contact: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    area: list[CompactArea] = Field(min_length=1)

    def info(self, sent: datetime) -> dict[str, Any]:
        info: dict[str, Any] = {
            "language": self.language,
            "category": [str(c) for c in self.category],
            "event": self.event,
        }
        if self.sender_name is not None:
            info["senderName"] = self.sender_name
        if self.contact is not None:
            info["contact"] = self.contact
        if self.parameters:
            info["parameter"] = [{"valueName": k, "value": v} for k, v in self.parameters.items()]
        return self.apply(info, sent)


class CapAlert(_Strict):
    """The canonical incident, with what the inject decides left out: ``sent`` is the inject's
    time, ``sender`` its jurisdiction (if given it must agree), ``status`` always Exercise."""

    identifier: str | None = None
    sender: str | None = None
    status: Status | None = None
    msgType: MsgType = MsgType.ALERT  # noqa: N815 - CAP's name
    source: str | None = None
    scope: Scope = Scope.PUBLIC
    restriction: str | None = None
    addresses: str | None = None
    code: list[str] = Field(default_factory=list)
    note: str | None = None
    incidents: str | None = None
    info: list[Info] = Field(min_length=1)


class UpdateInject(_InfoChanges):
    of: Name = Field(description="the inject that reported the incident")
    note: str | None = None


class CancelInject(_Strict):
    of: Name
    note: str | None = None


class DeclineInject(_Strict):
    of: Name = Field(description="the inject that reported the incident whose tasks are declined")
    reason: str = Field(min_length=1)


def _incident_form(value: Any) -> str:
    return "cap" if isinstance(value, dict | CapAlert) and "info" in _keys(value) else "compact"


def _keys(value: Any) -> set[str]:
    return set(value) if isinstance(value, dict) else set(type(value).model_fields)


IncidentSpec = Annotated[
    Annotated[CompactIncident, Tag("compact")] | Annotated[CapAlert, Tag("cap")],
    Discriminator(_incident_form),
]

KINDS = ("incident", "update", "cancel", "silence", "decline")


class Inject(_Strict):
    """One timed inject; exactly one of ``incident``, ``update``, ``cancel``, ``silence`` (an
    ISO 8601 duration: the jurisdiction answers no task for that long) and ``decline``."""

    id: Name
    at: Duration = Field(description="ISO 8601 duration from the start, e.g. PT15M")
    jurisdiction: Code
    incident: IncidentSpec | None = None
    update: UpdateInject | None = None
    cancel: CancelInject | None = None
    silence: Duration | None = None
    decline: DeclineInject | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Inject:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of {', '.join(KINDS)} (has {given or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def offset_ms(self) -> int:
        return duration_ms(self.at)


class Scenario(_Strict):
    id: Name
    title: Title
    description: str | None = None
    start: Timestamp = Field(description="ISO 8601 with a UTC offset; a run may start elsewhen")
    speed: float = Field(default=1.0, gt=0, description="hint: scenario time runs this fast")
    injects: list[Inject] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class TimedIncident:
    offset_ms: int
    inject: str
    jurisdiction: str
    incident: Incident


@dataclass(frozen=True, slots=True)
class Silence:
    offset_ms: int
    inject: str
    jurisdiction: str
    until_ms: int


@dataclass(frozen=True, slots=True)
class Decline:
    offset_ms: int
    inject: str
    jurisdiction: str
    incident: str  # the thread: "sender,identifier" of the incident's Alert
    reason: str


Timed = TimedIncident | Silence | Decline


class InjectError(ValueError):
    """An inject that does not expand: ``inject`` is its id, ``where`` the path inside it."""

    def __init__(self, inject: str, where: tuple[str | int, ...], message: str) -> None:
        self.inject = inject
        self.where = where
        super().__init__(message)


class _Unresolved(ValueError):
    """An ``of`` that names no usable incident inject."""


def _cap_time(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat()


def _start(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"start '{text}' has no UTC offset")
    return value


def expand(scenario: Scenario, start: str | None = None) -> list[Timed]:
    """The scenario as timed canonical incidents and answers, in time order (file order among
    equal times). ``start`` moves the whole scenario; the default is its own start.

    Raises ``InjectError`` naming the inject (and the path inside it) when one does not make a
    valid CAP message or refers to an inject it cannot; ``load_scenario`` reports it with the
    file's line.
    """
    origin = _start(start or scenario.start)
    alerts: dict[str, Incident] = {}
    latest: dict[str, Incident] = {}
    out: list[Timed] = []
    ordered = sorted(enumerate(scenario.injects), key=lambda p: (p[1].offset_ms, p[0]))
    for _, inject in ordered:
        try:
            out.append(_expand_one(inject, scenario.id, origin, alerts, latest))
        except ValidationError as exc:
            err = exc.errors()[0]
            message = err["msg"].removeprefix("Value error, ")
            raise InjectError(inject.id, (inject.kind, *err["loc"]), message) from None
        except _Unresolved as exc:
            raise InjectError(inject.id, (inject.kind, "of"), str(exc)) from None
        except ValueError as exc:
            raise InjectError(inject.id, (inject.kind,), str(exc)) from None
    return out


def _expand_one(
    inject: Inject,
    scenario_id: str,
    origin: datetime,
    alerts: dict[str, Incident],
    latest: dict[str, Incident],
) -> Timed:
    sent = origin + timedelta(milliseconds=inject.offset_ms)
    identifier = f"{scenario_id}.{inject.id}"
    if inject.incident is not None:
        alert = _alert(inject, inject.incident, identifier, sent)
        alerts[inject.id] = latest[inject.id] = alert
        return TimedIncident(inject.offset_ms, inject.id, inject.jurisdiction, alert)
    if inject.silence is not None:
        until = inject.offset_ms + duration_ms(inject.silence)
        return Silence(inject.offset_ms, inject.id, inject.jurisdiction, until)
    if inject.decline is not None:
        first = _referenced(alerts, inject, inject.decline.of, same_sender=False)
        reason = inject.decline.reason
        return Decline(inject.offset_ms, inject.id, inject.jurisdiction, first.key, reason)
    change = inject.update or inject.cancel
    assert change is not None
    first = _referenced(alerts, inject, change.of, same_sender=True)
    message = _follow_up(inject, first, latest[change.of], identifier, sent)
    latest[change.of] = message
    return TimedIncident(inject.offset_ms, inject.id, inject.jurisdiction, message)


def _referenced(
    alerts: dict[str, Incident], inject: Inject, of: str, *, same_sender: bool
) -> Incident:
    first = alerts.get(of)
    if first is None:
        raise _Unresolved(f"'{of}' is not an incident inject at or before {inject.at}")
    if same_sender and first.sender != inject.jurisdiction:
        raise _Unresolved(f"only {first.sender}, which reported '{of}', may {inject.kind} it")
    if not same_sender and first.sender == inject.jurisdiction:
        raise _Unresolved(f"{inject.jurisdiction} reported '{of}'; it gets no tasks to decline")
    return first


def _alert(
    inject: Inject, spec: CompactIncident | CapAlert, identifier: str, sent: datetime
) -> Incident:
    if isinstance(spec, CompactIncident):
        message: dict[str, Any] = {"scope": "Public", "info": [spec.info(sent)]}
    else:
        if spec.msgType is not MsgType.ALERT:
            raise ValueError("an incident inject is an Alert; use update or cancel to follow up")
        if spec.sender is not None and spec.sender != inject.jurisdiction:
            raise ValueError(f"sender {spec.sender} is not the inject's {inject.jurisdiction}")
        message = spec.model_dump(mode="json", exclude_none=True, exclude={"status"})
        identifier = spec.identifier or identifier
    message.update(
        identifier=identifier,
        sender=inject.jurisdiction,
        sent=_cap_time(sent),
        status=Status.EXERCISE.value,
        msgType=MsgType.ALERT.value,
    )
    return Incident.model_validate(message)


def _follow_up(
    inject: Inject, first: Incident, last: Incident, identifier: str, sent: datetime
) -> Incident:
    base = last.model_dump(mode="json", exclude_none=True)
    base.pop("note", None)
    base.update(
        identifier=identifier,
        sent=_cap_time(sent),
        references=f"{first.sender},{first.identifier},{first.sent}",
    )
    if inject.update is not None:
        base["msgType"] = MsgType.UPDATE.value
        base["info"] = [inject.update.apply(info, sent) for info in base.get("info", [])]
        note = inject.update.note
    else:
        assert inject.cancel is not None
        base["msgType"] = MsgType.CANCEL.value
        note = inject.cancel.note
    if note is not None:
        base["note"] = note
    return Incident.model_validate(base)
