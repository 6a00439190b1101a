"""OASIS EDXL-RM 1.0 resource messages ⇄ ``RmMessage``.

The seven messages a request goes through between two jurisdictions: RequestResource,
ResponseToRequestResource, RequisitionResource, CommitResource, ReportResourceDeploymentStatus,
ReleaseResource and RequestReturn. The message root and its message-level elements (MessageID,
SentDateTime, MessageContentType, OriginatingMessageID, ContactInformation, ResourceInformation
and the elements the message schemas declare inside it: ResourceInfoElementID,
ResponseInformation, Resource, AssignmentInformation, Quantity, ScheduleInformation,
ScheduleType, Location) are in the message namespace; the common types' leaves
(ContactDescription, ContactRole, ResponseType, PrecedingResourceInfoElementID, TypeStructure,
Keyword, ResourceStatus, DeploymentStatus, ValueListURN, Value, Name, QuantityText, DateTime,
LocationDescription) in the common namespace. No official XSD could be obtained, so the
structure is checked in code, and on input an element is accepted in either EDXL-RM namespace
(implementations differ on the split); an element in any other namespace where an EDXL-RM
element is expected is refused.

What the registry needs and EDXL-RM leaves to value lists travels as ValueListURN/Value pairs:
the item (``Resource/TypeStructure``, list ``urn:liandong:registry:supply``) and, in
``Resource/Keyword``, the depot, the agreement and its clause; in a
ReportResourceDeploymentStatus, each line's deployment status in
``Resource/ResourceStatus/DeploymentStatus`` (list ``urn:liandong:registry:deployment``, values
EnRoute and Arrived; a line without one, or with another, is refused). Parties are GB/T 2260
codes in ``ContactInformation/ContactDescription``, with ``ContactRole`` Requester (the
requesting jurisdiction) or RespondingOrg (the owner that sends a response, commitment,
deployment status or return request; a status report without one is the requester's).

Input goes through ``cap_xml.parse_untrusted``: oversize, empty, DTD-bearing (billion laughs,
XXE) and malformed documents are refused before anything is read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from hub.codecs.cap_xml import CapError, Node, local_name, namespace, parse_untrusted, serialise

MSG = "urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg"
RM = "urn:oasis:names:tc:emergency:EDXL:RM:1.0"
SUPPLY_LIST = "urn:liandong:registry:supply"
DEPOT_LIST = "urn:liandong:registry:depot"
AGREEMENT_LIST = "urn:liandong:registry:agreement"
CLAUSE_LIST = "urn:liandong:registry:clause"
DEPLOYMENT_LIST = "urn:liandong:registry:deployment"
REQUESTED_ARRIVAL = "RequestedArrival"
MAX_BYTES = 1 << 20
_NAMESPACES = (MSG, RM)


class RmError(CapError):
    """EDXL-RM input that cannot be decoded, or a message that cannot be written; like
    ``CapError`` it names the line and the element where it can."""


class MessageType(StrEnum):
    REQUEST = "RequestResource"
    RESPONSE = "ResponseToRequestResource"
    REQUISITION = "RequisitionResource"
    COMMIT = "CommitResource"
    REPORT_STATUS = "ReportResourceDeploymentStatus"
    RELEASE = "ReleaseResource"
    RETURN = "RequestReturn"


RESPONSE_TYPES = ("Accept", "Decline", "Provisional")
DEPLOYMENT_STATUSES = ("EnRoute", "Arrived")


@dataclass(frozen=True, slots=True)
class RmLine:
    """One ResourceInformation: ``element`` is its ResourceInfoElementID (the line number)."""

    element: int
    item: str
    quantity: int
    depot: str | None = None
    agreement: str | None = None
    clause: str | None = None
    needed_by: str | None = None
    deliver_to: str | None = None
    response: str | None = None
    """ResponseToRequestResource only: Accept, Decline or Provisional."""
    status: str | None = None
    """ReportResourceDeploymentStatus only: EnRoute or Arrived."""


@dataclass(frozen=True, slots=True)
class RmMessage:
    type: MessageType
    message_id: str
    sent: str
    requester: str
    lines: tuple[RmLine, ...]
    responder: str | None = None
    originating: str | None = None
    """The MessageID of the RequestResource this message follows (None on the request)."""


# --- writing -------------------------------------------------------------------------------


def _el(parent: Any, ns: str, name: str, text: str | None = None) -> Any:
    node = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        node.text = text
    return node


def _pair(parent: Any, wrapper: str, urn: str, value: str) -> None:
    node = _el(parent, RM, wrapper)
    _el(node, RM, "ValueListURN", urn)
    _el(node, RM, "Value", value)


def _contact(root: Any, code: str, role: str) -> None:
    contact = _el(root, MSG, "ContactInformation")
    _el(contact, RM, "ContactDescription", code)
    _el(contact, RM, "ContactRole", role)


def _write_line(root: Any, line: RmLine, kind: MessageType) -> None:
    response = kind is MessageType.RESPONSE
    info = _el(root, MSG, "ResourceInformation")
    _el(info, MSG, "ResourceInfoElementID", str(line.element))
    if response:
        if line.response not in RESPONSE_TYPES:
            raise RmError(f"line {line.element}: a response needs Accept, Decline or Provisional")
        answer = _el(info, MSG, "ResponseInformation")
        _el(answer, RM, "PrecedingResourceInfoElementID", str(line.element))
        _el(answer, RM, "ResponseType", line.response)
    resource = _el(info, MSG, "Resource")
    _pair(resource, "TypeStructure", SUPPLY_LIST, line.item)
    for urn, value in (
        (DEPOT_LIST, line.depot),
        (AGREEMENT_LIST, line.agreement),
        (CLAUSE_LIST, line.clause),
    ):
        if value is not None:
            _pair(resource, "Keyword", urn, value)
    if kind is MessageType.REPORT_STATUS:
        if line.status not in DEPLOYMENT_STATUSES:
            raise RmError(
                f"line {line.element}: a deployment status needs "
                f"{' or '.join(DEPLOYMENT_STATUSES)}, not {line.status}"
            )
        _pair(_el(resource, RM, "ResourceStatus"), "DeploymentStatus", DEPLOYMENT_LIST, line.status)
    quantity = _el(_el(info, MSG, "AssignmentInformation"), MSG, "Quantity")
    _el(quantity, RM, "QuantityText", str(line.quantity))
    if line.needed_by is not None or line.deliver_to is not None:
        schedule = _el(info, MSG, "ScheduleInformation")
        _el(schedule, MSG, "ScheduleType", REQUESTED_ARRIVAL)
        if line.needed_by is not None:
            _el(schedule, RM, "DateTime", line.needed_by)
        if line.deliver_to is not None:
            _el(_el(schedule, MSG, "Location"), RM, "LocationDescription", line.deliver_to)


def encode(message: RmMessage) -> bytes:
    """The message as EDXL-RM 1.0 XML (UTF-8, indented)."""
    if not message.lines:
        raise RmError(f"{message.type.value} {message.message_id}: a message needs a line")
    root = etree.Element(f"{{{MSG}}}{message.type.value}", nsmap={None: MSG, "rm": RM})
    _el(root, MSG, "MessageID", message.message_id)
    _el(root, MSG, "SentDateTime", message.sent)
    _el(root, MSG, "MessageContentType", message.type.value)
    if message.originating is not None:
        _el(root, MSG, "OriginatingMessageID", message.originating)
    _contact(root, message.requester, "Requester")
    if message.responder is not None:
        _contact(root, message.responder, "RespondingOrg")
    for line in message.lines:
        _write_line(root, line, message.type)
    out: bytes = serialise(root)
    return out


# --- reading -------------------------------------------------------------------------------


def _rm_children(node: Node) -> Iterator[Node]:
    for child in node:
        if namespace(child.tag) in _NAMESPACES:
            yield child


def _all(node: Node, name: str) -> list[Node]:
    return [c for c in _rm_children(node) if local_name(c.tag) == name]


def _one(node: Node, name: str, *, required: bool = True) -> Node | None:
    found = _all(node, name)
    if len(found) > 1:
        raise RmError(f"'{name}' appears {len(found)} times", line=found[1].sourceline)
    if not found and required:
        raise RmError(f"'{name}' is missing", line=node.sourceline, element=local_name(node.tag))
    return found[0] if found else None


def _text(node: Node, name: str, *, required: bool = True) -> str | None:
    child = _one(node, name, required=required)
    if child is None:
        return None
    text = (child.text or "").strip()
    if not text and required:
        raise RmError("is empty", line=child.sourceline, element=name)
    return text or None


def _need(node: Node, name: str) -> str:
    text = _text(node, name)
    assert text is not None  # required=True raises instead
    return text


def _int(node: Node, name: str, *, positive: bool) -> int:
    text = _need(node, name)
    child = _one(node, name)
    line = None if child is None else child.sourceline
    if not text.isdigit() or len(text) > 12:
        raise RmError(f"'{text}' is not a whole number", line=line, element=name)
    value = int(text)
    if positive and value <= 0:
        raise RmError(f"{value} is not a positive number", line=line, element=name)
    return value


def _pairs(node: Node, wrapper: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in _all(node, wrapper):
        urn, value = _need(pair, "ValueListURN"), _need(pair, "Value")
        if urn in found:
            raise RmError(f"value list '{urn}' given twice", line=pair.sourceline, element=wrapper)
        found[urn] = value
    return found


def _time(text: str, where: Node, name: str) -> str:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RmError(
            f"'{text}' is not an ISO 8601 date and time", line=where.sourceline, element=name
        ) from None
    if when.tzinfo is None:
        raise RmError(f"'{text}' has no UTC offset", line=where.sourceline, element=name)
    return text


def _deployment(resource: Node, element: int) -> str:
    """Line ``element``'s Resource/ResourceStatus/DeploymentStatus: EnRoute or Arrived."""
    status = _one(resource, "ResourceStatus", required=False)
    found = None if status is None else _one(status, "DeploymentStatus", required=False)
    if status is None or found is None:
        where = resource if status is None else status
        raise RmError(
            f"line {element}: no ResourceStatus/DeploymentStatus (a deployment status report "
            f"needs {' or '.join(DEPLOYMENT_STATUSES)} from the value list {DEPLOYMENT_LIST})",
            line=where.sourceline,
            element=local_name(where.tag),
        )
    urn, value = _need(found, "ValueListURN"), _need(found, "Value")
    if urn != DEPLOYMENT_LIST:
        raise RmError(
            f"line {element}: the value list '{urn}' is not {DEPLOYMENT_LIST}",
            line=found.sourceline,
            element="DeploymentStatus",
        )
    if value not in DEPLOYMENT_STATUSES:
        raise RmError(
            f"line {element}: '{value}' is not one of {', '.join(DEPLOYMENT_STATUSES)}",
            line=found.sourceline,
            element="DeploymentStatus",
        )
    return value


def _read_line(info: Node, kind: MessageType) -> RmLine:
    element = _int(info, "ResourceInfoElementID", positive=True)
    resource = _one(info, "Resource")
    assert resource is not None
    types = _pairs(resource, "TypeStructure")
    item = types.get(SUPPLY_LIST)
    if item is None:
        raise RmError(
            f"line {element}: no TypeStructure from the value list {SUPPLY_LIST}",
            line=resource.sourceline,
            element="Resource",
        )
    keywords = _pairs(resource, "Keyword")
    assignment = _one(info, "AssignmentInformation")
    assert assignment is not None
    quantity_node = _one(assignment, "Quantity")
    assert quantity_node is not None
    quantity = _int(quantity_node, "QuantityText", positive=kind is not MessageType.RESPONSE)
    needed_by = deliver_to = None
    for schedule in _all(info, "ScheduleInformation"):
        if _text(schedule, "ScheduleType", required=False) != REQUESTED_ARRIVAL:
            continue
        when = _text(schedule, "DateTime", required=False)
        needed_by = None if when is None else _time(when, schedule, "DateTime")
        place = _one(schedule, "Location", required=False)
        deliver_to = None if place is None else _text(place, "LocationDescription")
    response = None
    if kind is MessageType.RESPONSE:
        answer = _one(info, "ResponseInformation")
        assert answer is not None
        response = _need(answer, "ResponseType")
        if response not in RESPONSE_TYPES:
            raise RmError(
                f"'{response}' is not one of {', '.join(RESPONSE_TYPES)}",
                line=answer.sourceline,
                element="ResponseType",
            )
    status = _deployment(resource, element) if kind is MessageType.REPORT_STATUS else None
    return RmLine(
        element, item, quantity, keywords.get(DEPOT_LIST), keywords.get(AGREEMENT_LIST),
        keywords.get(CLAUSE_LIST), needed_by, deliver_to, response, status,
    )  # fmt: skip


def _contacts(root: Node) -> dict[str, str]:
    found: dict[str, str] = {}
    for contact in _all(root, "ContactInformation"):
        role = _text(contact, "ContactRole", required=False)
        if role not in ("Requester", "RespondingOrg"):
            continue
        if role in found:
            raise RmError(f"two contacts with the role {role}", line=contact.sourceline)
        found[role] = _need(contact, "ContactDescription")
    return found


def decode(data: bytes, *, max_bytes: int = MAX_BYTES) -> RmMessage:
    """Untrusted EDXL-RM XML → ``RmMessage``, or ``RmError`` naming what is wrong."""
    root = parse_untrusted(data, max_bytes, error=RmError, kind="EDXL-RM")
    name = local_name(root.tag)
    if namespace(root.tag) != MSG:
        raise RmError(
            f"the root element must be in the namespace {MSG}, not {namespace(root.tag)}",
            line=root.sourceline,
            element=name,
        )
    try:
        kind = MessageType(name)
    except ValueError:
        known = ", ".join(t.value for t in MessageType)
        raise RmError(f"not a resource message this hub reads ({known})", element=name) from None
    content_type = _text(root, "MessageContentType", required=False)
    if content_type is not None and content_type != kind.value:
        raise RmError(f"says {content_type} in a {kind.value}", element="MessageContentType")
    contacts = _contacts(root)
    if "Requester" not in contacts:
        raise RmError("no ContactInformation with the ContactRole Requester", element=name)
    originating = _text(root, "OriginatingMessageID", required=kind is not MessageType.REQUEST)
    lines = tuple(_read_line(info, kind) for info in _all(root, "ResourceInformation"))
    if not lines:
        raise RmError("no ResourceInformation: a message needs a line", element=name)
    elements = [line.element for line in lines]
    if len(set(elements)) != len(elements):
        raise RmError("a ResourceInfoElementID appears twice", element="ResourceInfoElementID")
    sent = _need(root, "SentDateTime")
    return RmMessage(
        kind, _need(root, "MessageID"), _time(sent, root, "SentDateTime"), contacts["Requester"],
        lines, contacts.get("RespondingOrg"), originating,
    )  # fmt: skip
