"""EDXL-DE element tree → ``Distribution``, with the structure checked in code.

No OASIS schema for EDXL-DE is shipped (see ``schemas/NOTICE.md``), so the reader checks what
the schema would: each element's children in the standard's order and cardinality, text where
text belongs, closed lists, dateTimes. Every refusal is an ``EdxlError`` naming the line, the
element and the problem. Embedded CAP alerts go through the CAP codec (schema-validated there)
and must agree with the envelope's ``distributionStatus``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from pydantic import ValidationError

from hub.codecs.cap import decode_cap
from hub.codecs.cap_xml import CAP10, CAP11, CAP12, CapError, Node, local_name, namespace
from hub.codecs.edxl_de_model import (
    AREA_GROUPING_20,
    AREA_KIND_20,
    CERTAINTY_20,
    CONFIDENTIALITY_20,
    CT10,
    DE10,
    DE20,
    SEVERITY_20,
    STATUSES,
    TYPES,
    URGENCY_20,
    ContentObject,
    Distribution,
    DistributionStatus,
    EmbeddedXml,
    ExplicitAddress,
    OtherContent,
    TargetArea,
    ValueList,
    check_datetime,
    status_disagreement,
)
from hub.model.incident import Incident

EXT10 = "urn:oasis:names:tc:emergency:edxl:extension:1.0"
_NOT_SUPPORTED = {"extension", "link", "other"}  # DE 2.0 elements the hub cannot carry yet


class EdxlError(CapError):
    """EDXL-DE input that cannot be decoded, or a distribution that cannot be written.

    Like ``CapError`` (which it extends, so one ``except`` catches both codecs), it carries
    ``problem``, ``line`` and ``element``: "line 12: element 'distributionStatus': 'Real' is
    not one of Actual, Exercise, System, Test".
    """


Spec = tuple[tuple[str, str], ...]  # (local name, occurrence: "1", "?", "*" or "+")


def _spec(text: str) -> Spec:
    return tuple((item.split()[0], item.split()[1]) for item in text.split(","))


ROOT_10 = _spec("distributionID 1, senderID 1, dateTimeSent 1, distributionStatus 1, "
                "distributionType 1, combinedConfidentiality 1, language ?, senderRole *, "
                "recipientRole *, keyword *, distributionReference *, explicitAddress *, "
                "targetArea *, contentObject *")  # fmt: skip
ROOT_20 = _spec("distributionID 1, senderID 1, dateTimeSent 1, dateTimeExpires 1, "
                "distributionStatus 1, distributionKind 1, extension *, descriptor ?, "
                "content ?, other *")  # fmt: skip
DESCRIPTOR_20 = _spec("combinedConfidentiality ?, language ?, senderRole *, recipientRole *, "
                      "keyword *, explicitAddress *, targetAreas *, urgency ?, severity ?, "
                      "certainty ?, incidentID *, incidentDescription *, link *, "
                      "extension *")  # fmt: skip
CONTENT_20 = _spec("contentObject +, link *")
OBJECT_10 = _spec("contentDescription ?, contentKeyword *, incidentID ?, incidentDescription ?, "
                  "originatorRole *, consumerRole *, confidentiality ?, nonXMLContent ?, "
                  "xmlContent ?")  # fmt: skip
OBJECT_20 = _spec("contentDescriptor ?, contentXML ?, otherContent ?, other *")
CONTENT_DESCRIPTOR_20 = _spec("contentDescription ?, contentKeyword *, originatorRole *, "
                              "consumerRole *, contentID *, confidentiality ?, "
                              "contentLanguage ?, extension *")  # fmt: skip
XML_10 = _spec("keyXMLContent *, embeddedXMLContent *")
XML_20 = _spec("keyXMLContent ?, embeddedXMLContent 1")
OTHER = _spec("mimeType 1, size ?, digest ?, uri ?, contentData ?")
AREA_10 = _spec("circle *, polygon *, country *, subdivision *, locCodeUN *")
AREAS_20 = _spec("areaKind 1, areaGrouping 1, targetArea +")
ADDRESS = _spec("explicitAddressScheme 1, explicitAddressValue +")
VALUES_10 = _spec("valueListUrn 1, value +")
VALUES_20 = _spec("ValueListURI 1, Value +")


class Children:
    """An element's children grouped by local name, after checking them against a ``Spec``."""

    def __init__(self, parent: Node, ns: str, spec: Spec) -> None:
        self.parent = parent
        self.found: dict[str, list[Node]] = {name: [] for name, _ in spec}
        _no_text(parent)
        names = [name for name, _ in spec]
        at = 0
        for child in parent:
            name = _name_in(child, ns, names)
            if name is None:
                raise _error(f"not allowed here; expected {_listing(self._next(spec, at))}", child)
            index = names.index(name)
            if index < at:
                raise _error(f"out of order: it must come before '{names[at]}'", child)
            for skipped, occurs in spec[at:index]:
                if occurs in "1+" and not self.found[skipped]:
                    raise _error(f"missing required element '{skipped}' before it", child)
            at = index
            if spec[index][1] in "1?" and self.found[name]:
                raise _error("appears more than once (at most once allowed)", child)
            self.found[name].append(child)
        for name, occurs in spec:
            if occurs in "1+" and not self.found[name]:
                raise _error(f"missing required element '{name}'", parent)

    def _next(self, spec: Spec, at: int) -> list[str]:
        """What may come next: from the current position up to the first required element."""
        out = []
        for name, occurs in spec[at:]:
            if occurs in "1?" and self.found[name]:
                continue
            out.append(name)
            if occurs in "1+" and not self.found[name]:
                break
        return out

    def one(self, name: str) -> Node | None:
        items = self.found[name]
        return items[0] if items else None

    def all(self, name: str) -> list[Node]:
        return self.found[name]

    def text(self, name: str) -> str | None:
        node = self.one(name)
        return None if node is None else text_of(node)

    def texts(self, name: str) -> list[str]:
        return [text_of(node) for node in self.found[name]]


def _name_in(child: Node, ns: str, names: list[str]) -> str | None:
    name = local_name(child.tag)
    child_ns = namespace(child.tag)
    if name in ("ValueListURI", "Value"):
        return name if child_ns == CT10 and name in names else None
    if name == "extension" and child_ns == EXT10 and name in names:
        return name
    return name if child_ns == ns and name in names else None


def text_of(node: Node, *, keep_space: bool = False) -> str:
    """A leaf element's text (whitespace trimmed unless kept); refused if empty or nested."""
    for child in node:
        raise _error("must hold text, not elements", child)
    value = node.text or ""
    if not value.strip():
        raise _error("must not be empty", node)
    return value if keep_space else value.strip()


def _no_text(node: Any) -> None:
    if (node.text or "").strip():
        raise _error("text is not allowed here, only elements", node)
    for child in node:
        if (child.tail or "").strip():
            raise _error("text is not allowed here, only elements", node)


def _error(problem: str, node: Node) -> EdxlError:
    return EdxlError(problem, line=node.sourceline, element=_display(node.tag))


def _display(tag: str) -> str:
    if namespace(tag) in (DE10, DE20, CT10, EXT10):
        return local_name(tag)
    return tag


def _listing(names: Sequence[str]) -> str:
    if not names:
        return "nothing more"
    return f"'{names[0]}'" if len(names) == 1 else "one of (" + ", ".join(names) + ")"


def _enum(node: Node | None, allowed: Sequence[str]) -> str | None:
    if node is None:
        return None
    value = text_of(node)
    if value not in allowed:
        raise _error(f"'{value[:80]}' is not one of {', '.join(allowed)}", node)
    return value


def _datetime(node: Node | None) -> str | None:
    if node is None:
        return None
    try:
        return check_datetime(text_of(node))
    except ValueError as exc:
        raise _error(str(exc), node) from None


class Reader:
    """Reads one distribution of a known version; ``read`` returns the ``Distribution``."""

    def __init__(self, version: str, max_bytes: int) -> None:
        self.version = version
        self.ns = DE10 if version == "1.0" else DE20
        self.max_bytes = max_bytes
        self.status = DistributionStatus.ACTUAL
        self.status_line: int | None = None

    def read(self, root: Node) -> Distribution:
        v10 = self.version == "1.0"
        top = Children(root, self.ns, ROOT_10 if v10 else ROOT_20)
        if not v10:
            self._refuse_unsupported(top)
        status_node = top.one("distributionStatus")
        status = _enum(status_node, STATUSES[self.version])
        assert status is not None  # Children checked it is there
        self.status = DistributionStatus(status)
        self.status_line = status_node.sourceline if status_node is not None else None
        kind = top.one("distributionType" if v10 else "distributionKind")
        fields: dict[str, object] = {
            "version": self.version,
            "distribution_id": top.text("distributionID"),
            "sender_id": top.text("senderID"),
            "date_time_sent": _datetime(top.one("dateTimeSent")),
            "date_time_expires": None if v10 else _datetime(top.one("dateTimeExpires")),
            "distribution_status": self.status,
            "distribution_type": _enum(kind, TYPES[self.version]),
        }
        if v10:
            fields |= self._envelope_10(top)
        else:
            descriptor = top.one("descriptor")
            if descriptor is not None:
                fields |= self._descriptor_20(descriptor)
            content = top.one("content")
            if content is not None:
                found = Children(content, self.ns, CONTENT_20)
                self._refuse_unsupported(found)
                objects = found.all("contentObject")
                fields["contents"] = [self._object_20(o, n) for n, o in enumerate(objects, 1)]
        try:
            return Distribution.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            problem = str(first["msg"]).removeprefix("Value error, ")
            raise EdxlError(f"{where}: {problem}" if where else problem) from None

    def _envelope_10(self, top: Children) -> dict[str, object]:
        objects = top.all("contentObject")
        return {
            "combined_confidentiality": top.text("combinedConfidentiality"),
            "language": top.text("language"),
            "sender_role": [self._values(n) for n in top.all("senderRole")],
            "recipient_role": [self._values(n) for n in top.all("recipientRole")],
            "keyword": [self._values(n) for n in top.all("keyword")],
            "distribution_reference": top.texts("distributionReference"),
            "explicit_address": [self._address(n) for n in top.all("explicitAddress")],
            "target_area": [self._area_10(n) for n in top.all("targetArea")],
            "contents": [self._object_10(o, n) for n, o in enumerate(objects, 1)],
        }

    def _descriptor_20(self, node: Node) -> dict[str, object]:
        d = Children(node, self.ns, DESCRIPTOR_20)
        self._refuse_unsupported(d)
        return {
            "combined_confidentiality": _enum(d.one("combinedConfidentiality"), CONFIDENTIALITY_20),
            "language": d.text("language"),
            "sender_role": [self._values(n) for n in d.all("senderRole")],
            "recipient_role": [self._values(n) for n in d.all("recipientRole")],
            "keyword": [self._values(n) for n in d.all("keyword")],
            "explicit_address": [self._address(n) for n in d.all("explicitAddress")],
            "target_area": [self._areas_20(n) for n in d.all("targetAreas")],
            "urgency": _enum(d.one("urgency"), URGENCY_20),
            "severity": _enum(d.one("severity"), SEVERITY_20),
            "certainty": _enum(d.one("certainty"), CERTAINTY_20),
            "incident_ids": d.texts("incidentID"),
            "incident_descriptions": d.texts("incidentDescription"),
        }

    def _refuse_unsupported(self, found: Children) -> None:
        for name in _NOT_SUPPORTED:
            for node in found.found.get(name, []):
                raise _error(
                    f"EDXL-DE 2.0 '{name}' elements are not supported yet; the distribution is "
                    "refused rather than passed on without them",
                    node,
                )

    def _values(self, node: Node) -> ValueList:
        v10 = self.version == "1.0"
        found = Children(node, self.ns, VALUES_10 if v10 else VALUES_20)
        return ValueList(
            value_list_urn=found.text("valueListUrn" if v10 else "ValueListURI") or "",
            values=found.texts("value" if v10 else "Value"),
        )

    def _address(self, node: Node) -> ExplicitAddress:
        found = Children(node, self.ns, ADDRESS)
        return ExplicitAddress(
            scheme=found.text("explicitAddressScheme") or "",
            values=found.texts("explicitAddressValue"),
        )

    def _area_10(self, node: Node) -> TargetArea:
        found = Children(node, self.ns, AREA_10)
        return TargetArea(
            circles=found.texts("circle"),
            polygons=found.texts("polygon"),
            countries=found.texts("country"),
            subdivisions=found.texts("subdivision"),
            loc_codes_un=found.texts("locCodeUN"),
        )

    def _areas_20(self, node: Node) -> TargetArea:
        found = Children(node, self.ns, AREAS_20)
        locations = []
        for area in found.all("targetArea"):
            _no_text(area)
            items = list(area)
            if len(items) != 1:
                raise _error("must hold exactly one location (a geo or geo-political one)", area)
            locations.append(verbatim(items[0]))
        return TargetArea(
            area_kind=_enum(found.one("areaKind"), AREA_KIND_20),
            area_grouping=_enum(found.one("areaGrouping"), AREA_GROUPING_20),
            locations=locations,
        )

    def _object_10(self, node: Node, number: int) -> ContentObject:
        found = Children(node, self.ns, OBJECT_10)
        fields: dict[str, object] = {
            "description": _kept(found.one("contentDescription")),
            "keywords": [self._values(n) for n in found.all("contentKeyword")],
            "incident_id": found.text("incidentID"),
            "incident_description": _kept(found.one("incidentDescription")),
            "originator_roles": [self._values(n) for n in found.all("originatorRole")],
            "consumer_roles": [self._values(n) for n in found.all("consumerRole")],
            "confidentiality": found.text("confidentiality"),
        }
        return self._payload(node, number, found, "nonXMLContent", "xmlContent", XML_10, fields)

    def _object_20(self, node: Node, number: int) -> ContentObject:
        found = Children(node, self.ns, OBJECT_20)
        self._refuse_unsupported(found)
        fields: dict[str, object] = {}
        descriptor = found.one("contentDescriptor")
        if descriptor is not None:
            d = Children(descriptor, self.ns, CONTENT_DESCRIPTOR_20)
            self._refuse_unsupported(d)
            fields = {
                "description": _kept(d.one("contentDescription")),
                "keywords": [self._values(n) for n in d.all("contentKeyword")],
                "originator_roles": [self._values(n) for n in d.all("originatorRole")],
                "consumer_roles": [self._values(n) for n in d.all("consumerRole")],
                "content_ids": d.texts("contentID"),
                "confidentiality": _enum(d.one("confidentiality"), CONFIDENTIALITY_20),
                "language": d.text("contentLanguage"),
            }
        return self._payload(node, number, found, "otherContent", "contentXML", XML_20, fields)

    def _payload(
        self,
        node: Node,
        number: int,
        found: Children,
        other_name: str,
        xml_name: str,
        xml_spec: Spec,
        fields: dict[str, object],
    ) -> ContentObject:
        other, xml = found.one(other_name), found.one(xml_name)
        if (other is None) == (xml is None):
            raise _error(f"must hold exactly one of '{other_name}' or '{xml_name}'", node)
        if other is not None:
            fields["other_content"] = self._other(other)
        if xml is not None:
            parts = Children(xml, self.ns, xml_spec)
            fields["key_xml"] = [verbatim(n) for k in parts.all("keyXMLContent") for n in _xml(k)]
            fields["embedded"] = [
                self._embedded(n, number) for e in parts.all("embeddedXMLContent") for n in _xml(e)
            ]
        try:
            return ContentObject.model_validate(fields)
        except ValidationError as exc:
            problem = str(exc.errors(include_url=False)[0]["msg"])
            raise _error(problem.removeprefix("Value error, "), node) from None

    def _other(self, node: Node) -> OtherContent:
        found = Children(node, self.ns, OTHER)
        size_node = found.one("size")
        size = None
        if size_node is not None:
            text = text_of(size_node)
            if not text.isdigit() or len(text) > 18:
                raise _error(f"'{text[:40]}' is not a size in bytes", size_node)
            size = int(text)
        if self.version == "2.0" and found.one("uri") is None and found.one("contentData") is None:
            raise _error("needs a 'uri' or 'contentData'", node)
        return OtherContent(
            mime_type=found.text("mimeType") or "",
            size=size,
            digest=found.text("digest"),
            uri=found.text("uri"),
            content_data=found.text("contentData"),
        )

    def _embedded(self, node: Node, number: int) -> EmbeddedXml:
        if namespace(node.tag) in (CAP12, CAP11, CAP10):
            return EmbeddedXml(incident=self._alert(node, number))
        return EmbeddedXml(xml=verbatim(node))

    def _alert(self, node: Node, number: int) -> Incident:
        """A CAP alert in the envelope, through the CAP codec; lines stay the envelope's."""
        offset = (node.sourceline or 1) - 1
        data = etree.tostring(node, encoding="UTF-8", xml_declaration=False, with_tail=False)
        try:
            incident = decode_cap(data, max_bytes=self.max_bytes)
        except CapError as exc:
            raise EdxlError(
                f"content object {number}: CAP alert: {exc.problem}",
                line=exc.line + offset if exc.line else node.sourceline,
                element=exc.element or "alert",
            ) from None
        problem = status_disagreement(incident.status, self.status)
        if problem:
            status = next((c for c in node if local_name(c.tag) == "status"), node)
            raise EdxlError(
                f"content object {number}: {problem} (line {self.status_line})",
                line=status.sourceline,
                element="status",
            )
        return incident


def _kept(node: Node | None) -> str | None:
    """Free text (descriptions) is kept exactly as sent, whitespace included."""
    return None if node is None else text_of(node, keep_space=True)


def _xml(holder: Node) -> list[Node]:
    """The elements an XML holder (keyXMLContent, embeddedXMLContent) carries: at least one."""
    _no_text(holder)
    items = list(holder)
    if not items:
        raise _error("holds no XML element", holder)
    return items


def verbatim(node: Node) -> str:
    """An element as exclusive canonical XML: the same element always gives the same text."""
    out = etree.tostring(node, method="c14n", exclusive=True, with_comments=False)
    assert isinstance(out, bytes)
    return out.decode("utf-8")
