"""The EDXL-DE distribution as data: one model for EDXL-DE 1.0 and 2.0.

A distribution is the envelope (who sent it, when, its status and kind, whom it is for) and its
content objects. A content object that carries a CAP alert holds the decoded canonical
``Incident``; any other content is kept, never dropped: embedded XML that is not CAP and the
locations of a DE 2.0 target area verbatim (exclusive XML canonicalisation, so the same element
always gives the same text), non-XML content by its description (MIME type, size, digest, URI and
inline data). Names follow EDXL-DE in snake case; fields that exist in only one version say so,
and the model refuses a field the distribution's version does not have.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hub.model.incident import Incident, Status

DE10 = "urn:oasis:names:tc:emergency:EDXL:DE:1.0"
DE20 = "urn:oasis:names:tc:emergency:EDXL:DE:2.0"
CT10 = "urn:oasis:names:tc:emergency:edxl:ct:1.0"


class DistributionStatus(StrEnum):
    """The envelope's status; DE 2.0 adds Unknown and NoAppropriateDefault."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    UNKNOWN = "Unknown"
    NO_APPROPRIATE_DEFAULT = "NoAppropriateDefault"


class DistributionType(StrEnum):
    """DE 1.0 ``distributionType`` / DE 2.0 ``distributionKind`` (2.0 adds the sensor kinds)."""

    REPORT = "Report"
    UPDATE = "Update"
    CANCEL = "Cancel"
    REQUEST = "Request"
    RESPONSE = "Response"
    DISPATCH = "Dispatch"
    ACK = "Ack"
    ERROR = "Error"
    SENSOR_CONFIGURATION = "SensorConfiguration"
    SENSOR_CONTROL = "SensorControl"
    SENSOR_STATUS = "SensorStatus"
    SENSOR_DETECTION = "SensorDetection"
    UNKNOWN = "Unknown"
    NO_APPROPRIATE_DEFAULT = "NoAppropriateDefault"


_S = DistributionStatus
_T = DistributionType
STATUSES = {
    "1.0": (_S.ACTUAL, _S.EXERCISE, _S.SYSTEM, _S.TEST),
    "2.0": tuple(_S),
}
TYPES = {
    "1.0": (
        _T.REPORT,
        _T.UPDATE,
        _T.CANCEL,
        _T.REQUEST,
        _T.RESPONSE,
        _T.DISPATCH,
        _T.ACK,
        _T.ERROR,
    ),
    "2.0": tuple(_T),
}
# DE 2.0's closed lists (DE 1.0 leaves confidentiality free text and has no urgency & co).
_NAD = ("Unknown", "NoAppropriateDefault")
CONFIDENTIALITY_20 = ("Unclassified", "Classified")
URGENCY_20 = ("Immediate", "Expected", "Future", "Past", *_NAD)
SEVERITY_20 = ("Extreme", "Severe", "Moderate", "Minor", *_NAD)
CERTAINTY_20 = ("Observed", "Likely", "Possible", "Unlikely", *_NAD)
AREA_KIND_20 = ("SourceTargetArea", "DistributionTargetArea", "OtherTargetArea", *_NAD)
AREA_GROUPING_20 = (
    "Intersection",
    "Union",
    "ExclusiveOr",
    "Complement",
    "OtherGroupingType",
    *_NAD,
)

# xs:dateTime with a time zone: EDXL-DE wants the sender's offset (or Z) on every time.
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATETIME_HINT = "is not a dateTime with a time zone, e.g. 2026-07-01T08:30:00+08:00"


def check_datetime(value: str) -> str:
    """An xs:dateTime with a zone, kept as written; ValueError otherwise."""
    if not _DATETIME.match(value):
        raise ValueError(f"'{value[:40]}' {DATETIME_HINT}")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{value[:40]}' is not a real date and time") from None
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_non_empty)]
DateTime = Annotated[str, AfterValidator(check_datetime)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ValueList(_Model):
    """Values from a named list: sender/recipient roles, keywords (``valueListUrn`` + values)."""

    value_list_urn: Text
    values: list[Text] = Field(min_length=1)


class ExplicitAddress(_Model):
    """Addresses in one scheme (``explicitAddressScheme`` + ``explicitAddressValue``)."""

    scheme: Text
    values: list[Text] = Field(min_length=1)


class TargetArea(_Model):
    """Where the distribution is for.

    DE 1.0 lists CAP-style ``circles`` ("lat,lon radius_km") and ``polygons``, ISO 3166
    ``countries``, ``subdivisions`` and UN/LOCODE ``loc_codes_un``. DE 2.0 groups locations
    under an ``area_kind`` and ``area_grouping``; each location (a GML geometry or a
    geo-political location) is kept verbatim in ``locations``.
    """

    circles: list[Text] = []
    polygons: list[Text] = []
    countries: list[Text] = []
    subdivisions: list[Text] = []
    loc_codes_un: list[Text] = []
    area_kind: str | None = None
    area_grouping: str | None = None
    locations: list[Text] = []


class OtherContent(_Model):
    """Content that is not XML, kept by reference: DE 1.0 ``nonXMLContent``, DE 2.0
    ``otherContent``. ``digest`` and ``content_data`` are the base64 text as sent."""

    mime_type: Text
    size: int | None = Field(default=None, ge=0)
    digest: str | None = None
    uri: str | None = None
    content_data: str | None = None


class EmbeddedXml(_Model):
    """One embedded XML document: a CAP alert as the canonical incident, or other XML verbatim."""

    incident: Incident | None = None
    xml: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> EmbeddedXml:
        if (self.incident is None) == (self.xml is None):
            raise ValueError("an embedded XML item holds either an incident or xml, not both")
        return self


class ContentObject(_Model):
    """One content object: its description and metadata, and either XML or other content."""

    description: str | None = None
    keywords: list[ValueList] = []
    incident_id: str | None = None  # DE 1.0
    incident_description: str | None = None  # DE 1.0
    originator_roles: list[ValueList] = []
    consumer_roles: list[ValueList] = []
    content_ids: list[Text] = []  # DE 2.0
    confidentiality: str | None = None
    language: str | None = None  # DE 2.0 contentLanguage
    key_xml: list[Text] = []
    embedded: list[EmbeddedXml] = []
    other_content: OtherContent | None = None

    @property
    def incident(self) -> Incident | None:
        """The CAP alert this content object carries, if any (the first one)."""
        return next((e.incident for e in self.embedded if e.incident is not None), None)

    @model_validator(mode="after")
    def _xml_or_other(self) -> ContentObject:
        has_xml = bool(self.embedded or self.key_xml)
        if has_xml == (self.other_content is not None):
            raise ValueError("a content object carries either XML content or other content")
        return self


class Distribution(_Model):
    """An EDXL-DE distribution (1.0 or 2.0): the envelope and what it carries."""

    version: Literal["1.0", "2.0"]
    distribution_id: Text
    sender_id: Text
    date_time_sent: DateTime
    date_time_expires: DateTime | None = None  # DE 2.0, required there
    distribution_status: DistributionStatus
    distribution_type: DistributionType
    combined_confidentiality: str | None = None  # required in DE 1.0
    language: str | None = None
    sender_role: list[ValueList] = []
    recipient_role: list[ValueList] = []
    keyword: list[ValueList] = []
    distribution_reference: list[Text] = []  # DE 1.0
    explicit_address: list[ExplicitAddress] = []
    target_area: list[TargetArea] = []
    urgency: str | None = None  # DE 2.0
    severity: str | None = None  # DE 2.0
    certainty: str | None = None  # DE 2.0
    incident_ids: list[Text] = []  # DE 2.0
    incident_descriptions: list[Text] = []  # DE 2.0
    contents: list[ContentObject] = []

    @property
    def incidents(self) -> list[Incident]:
        """Every CAP alert the distribution carries, in document order."""
        return [e.incident for c in self.contents for e in c.embedded if e.incident is not None]

    @model_validator(mode="after")
    def _rules(self) -> Distribution:
        for problem in version_problems(self):
            raise ValueError(problem)
        for number, content in enumerate(self.contents, 1):
            for incident in (e.incident for e in content.embedded if e.incident):
                disagreement = status_disagreement(incident.status, self.distribution_status)
                if disagreement:
                    raise ValueError(f"content object {number}: {disagreement}")
        return self


def status_disagreement(cap: Status, envelope: DistributionStatus) -> str | None:
    """Why a CAP status cannot travel in this envelope, or None when they agree.

    They agree only when equal: an Actual alert in an Exercise distribution (or the reverse)
    would be acted on in the wrong lane, and a Draft alert is no distribution at all.
    """
    if cap.value == envelope.value:
        return None
    return (
        f"CAP status '{cap.value}' disagrees with the envelope's distributionStatus "
        f"'{envelope.value}'"
    )


def version_problems(d: Distribution) -> list[str]:
    """What the distribution holds that its EDXL-DE version cannot express."""
    v = d.version
    problems = []
    if d.distribution_status not in STATUSES[v]:
        problems.append(f"distribution_status '{d.distribution_status}' is not in EDXL-DE {v}")
    if d.distribution_type not in TYPES[v]:
        problems.append(f"distribution_type '{d.distribution_type}' is not in EDXL-DE {v}")
    if v == "1.0":
        problems += _only_in(d, "2.0", ("date_time_expires", "urgency", "severity", "certainty",
                                        "incident_ids", "incident_descriptions"))  # fmt: skip
        if d.combined_confidentiality is None:
            problems.append("combined_confidentiality is required in EDXL-DE 1.0")
        for area in d.target_area:
            problems += _only_in(area, "2.0", ("area_kind", "area_grouping", "locations"))
        for content in d.contents:
            problems += _only_in(content, "2.0", ("content_ids", "language"))
            if content.key_xml and not content.embedded:
                problems.append("EDXL-DE 1.0 XML content needs embedded XML, not only keys")
    else:
        problems += _only_in(d, "1.0", ("distribution_reference",))
        if d.date_time_expires is None:
            problems.append("date_time_expires is required in EDXL-DE 2.0")
        problems += _closed_lists_20(d)
    return problems


def _closed_lists_20(d: Distribution) -> list[str]:
    checks: list[tuple[str, str | None, tuple[str, ...]]] = [
        ("combined_confidentiality", d.combined_confidentiality, CONFIDENTIALITY_20),
        ("urgency", d.urgency, URGENCY_20),
        ("severity", d.severity, SEVERITY_20),
        ("certainty", d.certainty, CERTAINTY_20),
    ]
    for area in d.target_area:
        checks += [("area_kind", area.area_kind, AREA_KIND_20),
                   ("area_grouping", area.area_grouping, AREA_GROUPING_20)]  # fmt: skip
        problems = _only_in(area, "1.0", ("circles", "polygons", "countries", "subdivisions",
                                          "loc_codes_un"))  # fmt: skip
        if problems or area.area_kind is None or area.area_grouping is None or not area.locations:
            return [*problems, "an EDXL-DE 2.0 target area needs area_kind, area_grouping "
                    "and at least one location"]  # fmt: skip
    for content in d.contents:
        checks.append(("confidentiality", content.confidentiality, CONFIDENTIALITY_20))
        problems = _only_in(content, "1.0", ("incident_id", "incident_description"))
        if problems:
            return problems
        if len(content.embedded) > 1 or (content.key_xml and not content.embedded):
            return ["EDXL-DE 2.0 XML content is exactly one embedded document (and one key)"]
        if len(content.key_xml) > 1:
            return ["EDXL-DE 2.0 XML content has at most one key"]
        other = content.other_content
        if other is not None and other.uri is None and other.content_data is None:
            return ["EDXL-DE 2.0 other content needs a uri or content_data"]
    return [
        f"{name} '{value}' is not one of {', '.join(allowed)}"
        for name, value, allowed in checks
        if value is not None and value not in allowed
    ]


def _only_in(model: BaseModel, version: str, names: tuple[str, ...]) -> list[str]:
    return [f"{name} exists only in EDXL-DE {version}" for name in names if getattr(model, name)]
