"""``Distribution`` → EDXL-DE XML (1.0 or 2.0, by the distribution's ``version``).

The envelope is built as a tree and indented for people. Carried content (CAP alerts, verbatim
XML) is spliced into the serialised envelope as text, in place of a placeholder: moved into the
tree, lxml would rename its namespace prefixes after the envelope's and indent it, and the
verbatim text would no longer read back the same.
"""

from __future__ import annotations

import secrets
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from hub.codecs.cap import encode_cap
from hub.codecs.cap_xml import CapError, parse, serialise
from hub.codecs.edxl_de_mapping import EdxlError, verbatim
from hub.codecs.edxl_de_model import (
    CT10,
    DE10,
    DE20,
    ContentObject,
    Distribution,
    EmbeddedXml,
    ExplicitAddress,
    OtherContent,
    TargetArea,
    ValueList,
)

XLINK = "http://www.w3.org/1999/xlink"
Node = Any  # an lxml element being built (lxml ships no type hints)


class Writer:
    """Writes one distribution; ``write`` returns the XML bytes."""

    def __init__(self, dist: Distribution) -> None:
        self.d = dist
        self.v10 = dist.version == "1.0"
        self.ns = DE10 if self.v10 else DE20
        self.carried: list[bytes] = []  # spliced in place of the placeholders, in order
        self.nonce = secrets.token_hex(8)  # so no carried text can pose as a placeholder

    def write(self) -> bytes:
        d = self.d
        if self.v10:
            root = etree.Element(self._q("EDXLDistribution"), nsmap={None: DE10})
        else:
            nsmap = {None: DE20, "ct": CT10, "xlink": XLINK}
            root = etree.Element(self._q("edxlDistribution"), nsmap=nsmap)
            root.set(f"{{{XLINK}}}type", "extended")
        self._leaf(root, "distributionID", d.distribution_id)
        self._leaf(root, "senderID", d.sender_id)
        self._leaf(root, "dateTimeSent", d.date_time_sent)
        self._leaf(root, "dateTimeExpires", d.date_time_expires)
        self._leaf(root, "distributionStatus", d.distribution_status.value)
        kind = "distributionType" if self.v10 else "distributionKind"
        self._leaf(root, kind, d.distribution_type.value)
        if self.v10:
            self._envelope_10(root)
        else:
            self._envelope_20(root)
        etree.indent(root, space="  ")
        out = serialise(root)
        for number, text in enumerate(self.carried):
            out = out.replace(self._marker(number), text, 1)
        return out

    def _carry(self, holder: Node, text: bytes) -> None:
        """Reserve the place of one carried element inside ``holder``."""
        number = len(self.carried)
        self.carried.append(text)
        holder.append(etree.ProcessingInstruction("liandong-slot", f"{self.nonce}-{number}"))

    def _marker(self, number: int) -> bytes:
        return f"<?liandong-slot {self.nonce}-{number}?>".encode()

    def _envelope_10(self, root: Node) -> None:
        d = self.d
        self._leaf(root, "combinedConfidentiality", d.combined_confidentiality)
        self._leaf(root, "language", d.language)
        self._roles(root, d.sender_role, d.recipient_role, d.keyword)
        for reference in d.distribution_reference:
            self._leaf(root, "distributionReference", reference)
        self._addresses(root, d.explicit_address)
        for area in d.target_area:
            self._area_10(self._sub(root, "targetArea"), area)
        for number, content in enumerate(d.contents, 1):
            self._object_10(self._sub(root, "contentObject"), content, number)

    def _envelope_20(self, root: Node) -> None:
        d = self.d
        descriptor = self._sub(root, "descriptor")
        descriptor.set(f"{{{XLINK}}}type", "resource")
        self._leaf(descriptor, "combinedConfidentiality", d.combined_confidentiality)
        self._leaf(descriptor, "language", d.language)
        self._roles(descriptor, d.sender_role, d.recipient_role, d.keyword)
        self._addresses(descriptor, d.explicit_address)
        for area in d.target_area:
            self._areas_20(self._sub(descriptor, "targetAreas"), area)
        self._leaf(descriptor, "urgency", d.urgency)
        self._leaf(descriptor, "severity", d.severity)
        self._leaf(descriptor, "certainty", d.certainty)
        for incident_id in d.incident_ids:
            self._leaf(descriptor, "incidentID", incident_id)
        for description in d.incident_descriptions:
            self._leaf(descriptor, "incidentDescription", description)
        if len(descriptor) == 0:
            root.remove(descriptor)
        if d.contents:
            content = self._sub(root, "content")
            content.set(f"{{{XLINK}}}type", "resource")
            for number, item in enumerate(d.contents, 1):
                self._object_20(self._sub(content, "contentObject"), item, number)

    def _roles(
        self, parent: Node, senders: list[ValueList], recipients: list[ValueList],
        keywords: list[ValueList],
    ) -> None:  # fmt: skip
        for name, lists in (("senderRole", senders), ("recipientRole", recipients),
                            ("keyword", keywords)):  # fmt: skip
            for values in lists:
                self._values(parent, name, values)

    def _values(self, parent: Node, name: str, values: ValueList) -> None:
        node = self._sub(parent, name)
        if self.v10:
            self._leaf(node, "valueListUrn", values.value_list_urn)
            for value in values.values:
                self._leaf(node, "value", value)
        else:
            self._text(etree.SubElement(node, f"{{{CT10}}}ValueListURI"), values.value_list_urn)
            for value in values.values:
                self._text(etree.SubElement(node, f"{{{CT10}}}Value"), value)

    def _addresses(self, parent: Node, addresses: list[ExplicitAddress]) -> None:
        for address in addresses:
            node = self._sub(parent, "explicitAddress")
            self._leaf(node, "explicitAddressScheme", address.scheme)
            for value in address.values:
                self._leaf(node, "explicitAddressValue", value)

    def _area_10(self, node: Node, area: TargetArea) -> None:
        for name, values in (("circle", area.circles), ("polygon", area.polygons),
                             ("country", area.countries), ("subdivision", area.subdivisions),
                             ("locCodeUN", area.loc_codes_un)):  # fmt: skip
            for value in values:
                self._leaf(node, name, value)

    def _areas_20(self, node: Node, area: TargetArea) -> None:
        self._leaf(node, "areaKind", area.area_kind)
        self._leaf(node, "areaGrouping", area.area_grouping)
        for location in area.locations:
            self._carry(self._sub(node, "targetArea"), _element(location, "location"))

    def _object_10(self, node: Node, content: ContentObject, number: int) -> None:
        self._leaf(node, "contentDescription", content.description)
        for values in content.keywords:
            self._values(node, "contentKeyword", values)
        self._leaf(node, "incidentID", content.incident_id)
        self._leaf(node, "incidentDescription", content.incident_description)
        for values in content.originator_roles:
            self._values(node, "originatorRole", values)
        for values in content.consumer_roles:
            self._values(node, "consumerRole", values)
        self._leaf(node, "confidentiality", content.confidentiality)
        if content.other_content is not None:
            self._other(self._sub(node, "nonXMLContent"), content.other_content)
        else:
            self._xml(self._sub(node, "xmlContent"), content, number)

    def _object_20(self, node: Node, content: ContentObject, number: int) -> None:
        node.set(f"{{{XLINK}}}type", "resource")
        descriptor = self._sub(node, "contentDescriptor")
        self._leaf(descriptor, "contentDescription", content.description)
        for name, lists in (("contentKeyword", content.keywords),
                            ("originatorRole", content.originator_roles),
                            ("consumerRole", content.consumer_roles)):  # fmt: skip
            for values in lists:
                self._values(descriptor, name, values)
        for content_id in content.content_ids:
            self._leaf(descriptor, "contentID", content_id)
        self._leaf(descriptor, "confidentiality", content.confidentiality)
        self._leaf(descriptor, "contentLanguage", content.language)
        if len(descriptor) == 0:
            node.remove(descriptor)
        if content.other_content is not None:
            self._other(self._sub(node, "otherContent"), content.other_content)
        else:
            self._xml(self._sub(node, "contentXML"), content, number)

    def _other(self, node: Node, other: OtherContent) -> None:
        self._leaf(node, "mimeType", other.mime_type)
        self._leaf(node, "size", None if other.size is None else str(other.size))
        self._leaf(node, "digest", other.digest)
        self._leaf(node, "uri", other.uri)
        self._leaf(node, "contentData", other.content_data)

    def _xml(self, node: Node, content: ContentObject, number: int) -> None:
        for key in content.key_xml:
            self._carry(self._sub(node, "keyXMLContent"), _element(key, "key_xml"))
        for item in content.embedded:
            self._carry(self._sub(node, "embeddedXMLContent"), _carried(item, number))

    def _q(self, name: str) -> str:
        return f"{{{self.ns}}}{name}"

    def _sub(self, parent: Node, name: str) -> Node:
        node: Node = etree.SubElement(parent, self._q(name))
        return node

    def _leaf(self, parent: Node, name: str, value: str | None) -> None:
        if value is not None:
            self._text(self._sub(parent, name), value)

    def _text(self, node: Node, value: str) -> None:
        try:
            node.text = value
        except ValueError as exc:  # control characters, lone surrogates
            raise EdxlError(f"cannot be written as XML: {exc}", element=node.tag) from None


def _carried(item: EmbeddedXml, number: int) -> bytes:
    if item.incident is not None:
        try:
            alert = parse(encode_cap(item.incident))[0]
        except CapError as exc:
            raise EdxlError(
                f"content object {number}: {exc.problem}", element=exc.element
            ) from None
        out = etree.tostring(alert, encoding="UTF-8", xml_declaration=False)
        assert isinstance(out, bytes)
        return out
    assert item.xml is not None  # the model holds one of the two
    return _element(item.xml, "xml")


def _element(text: str, field: str) -> bytes:
    """Verbatim XML kept in the model: checked with the hardened parser, written canonical."""
    try:
        element = parse(text.encode("utf-8"))[0]
    except CapError as exc:
        raise EdxlError(f"{field} is not well-formed XML: {exc.problem}") from None
    return verbatim(element).encode("utf-8")
