"""The canonical incident: CAP 1.2 rendered as JSON.

Element names and value formats are CAP's own (``msgType``, ``areaDesc``, ``polygon`` as
"lat,lon lat,lon ...", ``circle`` as "lat,lon radius_km"), so a CAP XML message converts to this
model and back without loss. Repeated CAP elements are JSON arrays; space-separated CAP lists
(``addresses``, ``references``, ``incidents``) stay strings, exactly as CAP writes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import SchemaValidator, core_schema

from hub.model.envelope import Lane


def _fast_yes(pattern: str) -> Callable[[object], bool]:
    """True when a str matches ``pattern`` whole, in pydantic-core's Rust regex engine (linear
    time, a fraction of the cost of ``re`` here). Only a fast "yes": each pattern below matches
    less than the check it stands before (ASCII only, ``[0-9]`` for ``\\d``, no trailing
    newline), and what it does not match goes through that check, which decides and says why."""
    schema = core_schema.str_schema(pattern=f"^(?:{pattern})$", strict=True)
    return SchemaValidator(schema).isinstance_python


# CAP's dateTime: offset required, "Z" and fractions not allowed ("2003-04-02T14:39:01-05:00").
_CAP_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
_PLAIN_DATETIME = _fast_yes(
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}"
)
# CAP identifiers and senders: no spaces, commas or restricted characters (& and <).
_CAP_TOKEN = re.compile(r"^[^\s,&<]+$")
_PLAIN_TOKEN = _fast_yes(r"[!-%'-+\--;=-~]+")  # printable ASCII but space , & <


def _cap_datetime(value: str) -> str:
    if not (_PLAIN_DATETIME(value) or _CAP_DATETIME.match(value)):
        raise ValueError(
            "must be a CAP dateTime with a numeric UTC offset, e.g. 2026-07-01T08:30:00+08:00"
        )
    datetime.fromisoformat(value)  # rejects 2026-13-40 and the like
    return value


def _cap_token(value: str) -> str:
    if not (_PLAIN_TOKEN(value) or (value and _CAP_TOKEN.match(value))):
        raise ValueError("must be non-empty, without spaces, commas, '&' or '<'")
    return value


CapDateTime = Annotated[str, AfterValidator(_cap_datetime)]
CapToken = Annotated[str, AfterValidator(_cap_token)]


class Status(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class Scope(StrEnum):
    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class Category(StrEnum):
    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class ResponseType(StrEnum):
    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class Urgency(StrEnum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


# Ranks for "at least" comparisons; Unknown ranks lowest so it never satisfies a threshold.
SEVERITY_RANK = {
    Severity.UNKNOWN: 0,
    Severity.MINOR: 1,
    Severity.MODERATE: 2,
    Severity.SEVERE: 3,
    Severity.EXTREME: 4,
}
URGENCY_RANK = {
    Urgency.UNKNOWN: 0,
    Urgency.PAST: 1,
    Urgency.FUTURE: 2,
    Urgency.EXPECTED: 3,
    Urgency.IMMEDIATE: 4,
}
CERTAINTY_RANK = {
    Certainty.UNKNOWN: 0,
    Certainty.UNLIKELY: 1,
    Certainty.POSSIBLE: 2,
    Certainty.LIKELY: 3,
    Certainty.OBSERVED: 4,
}


# for Incident._cap_rules: module constants are quicker to reach than enum attributes
_PUBLIC, _RESTRICTED, _PRIVATE = Scope.PUBLIC, Scope.RESTRICTED, Scope.PRIVATE
_ALERT = MsgType.ALERT


class _Cap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValuePair(_Cap):
    """CAP's valueName/value pair (eventCode, parameter, geocode)."""

    valueName: str = Field(min_length=1)
    value: str


class Resource(_Cap):
    """A CAP resource, kept by reference (``uri``/``digest``) or inline (``derefUri``)."""

    resourceDesc: str = Field(min_length=1)
    mimeType: str = Field(min_length=1)
    size: int | None = Field(default=None, ge=0)
    uri: str | None = None
    derefUri: str | None = None
    digest: str | None = None


# The usual polygon and circle, in range: one Rust regex call instead of a split and two float()
# per point. Only a fast "yes": what they do not match goes through parse_polygon / parse_circle,
# which decide, and say what is wrong.
_LAT = r"[-+]?(?:90(?:\.0+)?|[1-8]?[0-9](?:\.[0-9]+)?)"
_LON = r"[-+]?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]+)?)"
_PAIR = f"{_LAT},{_LON}"
_PLAIN_POLYGON = _fast_yes(f"{_PAIR}(?: {_PAIR}){{3,}}")
_PLAIN_CIRCLE = _fast_yes(rf"{_PAIR} [0-9]+(?:\.[0-9]+)?")


def _plain_polygon(text: str) -> bool:
    # closed: the text starts with its last pair, then a space, so the first pair is the last
    # ("31.0" and "31" differ as text, not as points: parse_polygon decides those)
    return _PLAIN_POLYGON(text) and text.startswith(text[text.rindex(" ") + 1 :] + " ")


def check_polygon(text: str) -> None:
    """ValueError unless ``text`` is a CAP polygon (what ``parse_polygon`` accepts)."""
    if not _plain_polygon(text):
        parse_polygon(text)


def check_circle(text: str) -> None:
    """ValueError unless ``text`` is a CAP circle (what ``parse_circle`` accepts)."""
    if not _PLAIN_CIRCLE(text):
        parse_circle(text)


def _point(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"'{text}' is not a 'lat,lon' pair")
    lat, lon = float(parts[0]), float(parts[1])
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"'{text}' is outside WGS-84 latitude/longitude ranges")
    return lat, lon


def parse_polygon(text: str) -> list[tuple[float, float]]:
    """Parse a CAP polygon ("lat,lon lat,lon ...", closed, at least four pairs)."""
    points = [_point(p) for p in text.split()]
    if len(points) < 4:
        raise ValueError("a CAP polygon needs at least four 'lat,lon' pairs")
    if points[0] != points[-1]:
        raise ValueError("a CAP polygon must end with its first point")
    return points


def parse_circle(text: str) -> tuple[float, float, float]:
    """Parse a CAP circle ("lat,lon radius_km") into (lat, lon, radius_km)."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"'{text}' is not 'lat,lon radius_km'")
    lat, lon = _point(parts[0])
    radius = float(parts[1])
    if radius < 0:
        raise ValueError("a circle's radius must not be negative")
    return lat, lon, radius


class Area(_Cap):
    """A CAP area: description plus any of polygons, circles and geocodes."""

    areaDesc: str = Field(min_length=1)
    polygon: list[str] = Field(default_factory=list)
    circle: list[str] = Field(default_factory=list)
    geocode: list[ValuePair] = Field(default_factory=list)
    altitude: float | None = None
    ceiling: float | None = None

    @field_validator("polygon")
    @classmethod
    def _polygons(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            try:
                check_polygon(text)
            except ValueError as exc:
                raise ValueError(f"polygon {i}: {exc}") from None
        return value

    @field_validator("circle")
    @classmethod
    def _circles(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            try:
                check_circle(text)
            except ValueError as exc:
                raise ValueError(f"circle {i}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _ceiling_needs_altitude(self) -> Area:
        if self.ceiling is not None and self.altitude is None:
            raise ValueError("ceiling is only allowed together with altitude")
        return self

    def polygons(self) -> list[list[tuple[float, float]]]:
        return [parse_polygon(p) for p in self.polygon]

    def circles(self) -> list[tuple[float, float, float]]:
        return [parse_circle(c) for c in self.circle]


class Info(_Cap):
    """A CAP info block (one per language)."""

    language: str = "en-US"
    category: list[Category] = Field(min_length=1)
    event: str = Field(min_length=1)
    responseType: list[ResponseType] = Field(default_factory=list)
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    audience: str | None = None
    eventCode: list[ValuePair] = Field(default_factory=list)
    effective: CapDateTime | None = None
    onset: CapDateTime | None = None
    expires: CapDateTime | None = None
    senderName: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameter: list[ValuePair] = Field(default_factory=list)
    resource: list[Resource] = Field(default_factory=list)
    area: list[Area] = Field(default_factory=list)


class Reference(_Cap):
    """One entry of CAP ``references``: an earlier message of the same incident."""

    sender: str
    identifier: str
    sent: str


class Incident(_Cap):
    """A CAP 1.2 alert message. ``sender`` is the GB/T 2260 code of the reporting jurisdiction."""

    identifier: CapToken
    sender: CapToken
    sent: CapDateTime
    status: Status
    msgType: MsgType
    source: str | None = None
    scope: Scope
    restriction: str | None = None
    addresses: str | None = None
    code: list[str] = Field(default_factory=list)
    note: str | None = None
    references: str | None = None
    incidents: str | None = None
    info: list[Info] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cap_rules(self) -> Incident:
        scope = self.scope
        if scope is not _PUBLIC:
            if scope is _RESTRICTED and not self.restriction:
                raise ValueError("restriction is required when scope is Restricted")
            if scope is _PRIVATE and not self.addresses:
                raise ValueError("addresses is required when scope is Private")
        if self.references:
            self.referenced()  # validates the format
        elif self.msgType is not _ALERT:  # Update, Cancel, Ack and Error name earlier messages
            raise ValueError(f"references is required when msgType is {self.msgType}")
        return self

    def referenced(self) -> list[Reference]:
        """The earlier messages named in ``references`` ("sender,identifier,sent ...")."""
        refs = []
        for item in (self.references or "").split():
            parts = item.split(",")
            if len(parts) != 3 or not all(parts):
                raise ValueError(f"references entry '{item}' is not 'sender,identifier,sent'")
            refs.append(Reference(sender=parts[0], identifier=parts[1], sent=parts[2]))
        return refs

    @property
    def key(self) -> str:
        """The hub-wide identity of this message: sender and identifier."""
        return f"{self.sender},{self.identifier}"


def lane_for(status: Status) -> Lane:
    """CAP status → the hub's lane: Exercise is drill traffic; Test, System, Draft not acted on."""
    if status is Status.ACTUAL:
        return Lane.ACTUAL
    if status is Status.EXERCISE:
        return Lane.EXERCISE
    return Lane.TEST
