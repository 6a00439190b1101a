"""EDXL-RM 1.0 XML: every message the registry exchanges round-trips, elements are read in
either EDXL-RM namespace, and malformed or hostile input is refused naming what is wrong."""

from __future__ import annotations

import pytest

from hub.codecs import edxl_rm
from hub.codecs.edxl_rm import MSG, RM, MessageType, RmError, RmLine, RmMessage, decode, encode

SENT = "2026-07-01T08:00:00+08:00"
REQUEST_LINE = RmLine(
    1, "sandbag", 300, "jiashan-1", "yrd-demo-zone-emergency-linkage", "5",
    "2026-07-01T12:00:00+08:00", "Lili town flood post",
)  # fmt: skip
REQUEST = RmMessage(MessageType.REQUEST, "r-1", SENT, "320509", (REQUEST_LINE,))


def _follow(kind: MessageType, *lines: RmLine, responder: str | None = "330421") -> RmMessage:
    return RmMessage(kind, f"r-1:{kind.value}", SENT, "320509", lines, responder, "r-1")


@pytest.mark.parametrize(
    "message",
    [
        REQUEST,
        RmMessage(
            MessageType.REQUEST, "r-2", SENT, "310118",
            (REQUEST_LINE, RmLine(2, "water-pump", 4, "wujiang-1", "a-b", None, SENT, "Jinze")),
        ),
        _follow(
            MessageType.RESPONSE, RmLine(1, "sandbag", 200, "jiashan-1", response="Accept"),
            RmLine(2, "water-pump", 0, response="Decline"),
        ),
        _follow(MessageType.REQUISITION, RmLine(1, "sandbag", 200), responder=None),
        _follow(MessageType.COMMIT, RmLine(1, "sandbag", 150, "jiashan-1")),
        _follow(MessageType.RELEASE, RmLine(1, "sandbag", 150), responder=None),
        _follow(MessageType.RETURN, RmLine(1, "sandbag", 150)),
    ],
    ids=lambda m: m.type.value,
)  # fmt: skip
def test_round_trip(message: RmMessage) -> None:
    xml = encode(message)
    assert decode(xml) == message
    assert encode(decode(xml)) == xml


def test_the_document_uses_both_edxl_rm_namespaces() -> None:
    xml = encode(REQUEST).decode()
    assert f'<RequestResource xmlns="{MSG}" xmlns:rm="{RM}">' in xml
    assert "<MessageContentType>RequestResource</MessageContentType>" in xml
    assert "<rm:ContactRole>Requester</rm:ContactRole>" in xml
    assert "<ScheduleType>RequestedArrival</ScheduleType>" in xml
    assert "<rm:QuantityText>300</rm:QuantityText>" in xml


def test_elements_are_read_in_either_edxl_rm_namespace() -> None:
    # Some implementations put every element in the message namespace.
    xml = encode(REQUEST).decode().replace("rm:", "").replace(f' xmlns:rm="{RM}"', "")
    assert decode(xml.encode()) == REQUEST


def _broken(old: str, new: str, message: RmMessage = REQUEST) -> bytes:
    xml = encode(message).decode()
    assert old in xml, old
    return xml.replace(old, new, 1).encode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (_broken("<MessageID>r-1</MessageID>", ""), "'MessageID' is missing"),
        (_broken("<rm:QuantityText>300", "<rm:QuantityText>3e2"), "'3e2' is not a whole number"),
        (_broken("<rm:QuantityText>300", "<rm:QuantityText>0"), "0 is not a positive number"),
        (_broken(SENT, "yesterday"), "'yesterday' is not an ISO 8601 date and time"),
        (_broken("2026-07-01T12:00:00+08:00", "2026-07-01T12:00:00"), "has no UTC offset"),
        (_broken("Requester", "Bystander"), "no ContactInformation with the ContactRole Requester"),
        (_broken("urn:liandong:registry:supply", "urn:x:other"), "no TypeStructure from"),
        (
            _broken("<MessageContentType>RequestResource", "<MessageContentType>CommitResource"),
            "says CommitResource in a RequestResource",
        ),
        (
            _broken(
                "<ResourceInfoElementID>2", "<ResourceInfoElementID>1",
                RmMessage(MessageType.REQUEST, "r", SENT, "1", (REQUEST_LINE,
                          RmLine(2, "water-pump", 1, "d", "a", None, SENT, "x"))),
            ),
            "a ResourceInfoElementID appears twice",
        ),
        (
            _broken(
                "<rm:ResponseType>Accept", "<rm:ResponseType>Maybe",
                _follow(MessageType.RESPONSE, RmLine(1, "sandbag", 5, response="Accept")),
            ),
            "'Maybe' is not one of Accept, Decline, Provisional",
        ),
        (
            _broken("<OriginatingMessageID>r-1</OriginatingMessageID>", "",
                    _follow(MessageType.COMMIT, RmLine(1, "sandbag", 5))),
            "'OriginatingMessageID' is missing",
        ),
        (_broken(MSG, "urn:example:other"), "must be in the namespace"),
        (
            b'<RequestQuote xmlns="' + MSG.encode() + b'"/>',
            "not a resource message this hub reads",
        ),
        (
            _broken("<MessageID>r-1</MessageID>", "<MessageID>r-1</MessageID><MessageID>x</"
                    "MessageID>"),
            "'MessageID' appears 2 times",
        ),
    ],
)  # fmt: skip
def test_malformed_messages_are_refused_naming_the_fault(data: bytes, error: str) -> None:
    with pytest.raises(RmError, match=error):
        decode(data)


def test_a_message_without_lines_is_refused_both_ways() -> None:
    with pytest.raises(RmError, match="a message needs a line"):
        encode(RmMessage(MessageType.REQUEST, "r", SENT, "1", ()))
    xml = encode(REQUEST).decode()
    start, end = xml.index("<ResourceInformation>"), xml.index("</ResourceInformation>")
    stripped = xml[:start] + xml[end + len("</ResourceInformation>") :]
    with pytest.raises(RmError, match="no ResourceInformation"):
        decode(stripped.encode())


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b'<RequestResource xmlns="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg">'
    b"<MessageID>&lol2;</MessageID></RequestResource>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<RequestResource xmlns="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg">'
    b"<MessageID>&x;</MessageID></RequestResource>"
)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (BILLION_LAUGHS, "DTDs are not accepted"),
        (XXE, "DTDs are not accepted"),
        (XXE.decode().encode("utf-16"), "DTDs are not accepted"),
        (b"", "empty body"),
        (b"<RequestResource", "not well-formed XML"),
        (b"x" * (edxl_rm.MAX_BYTES + 1), "the limit is"),
    ],
    ids=["billion-laughs", "xxe", "xxe-utf16", "empty", "truncated", "oversize"],
)
def test_hostile_input_is_refused_before_it_is_read(data: bytes, error: str) -> None:
    with pytest.raises(RmError, match=error):
        decode(data)
