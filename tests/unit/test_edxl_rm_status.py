"""EDXL-RM 1.0 ReportResourceDeploymentStatus as XML: each line's deployment status travels in
Resource/ResourceStatus/DeploymentStatus from the hub's own value list, round-trips, and a
missing or unknown status is refused naming the line and the element."""

from __future__ import annotations

import pytest

from hub.codecs.edxl_rm import (
    DEPLOYMENT_LIST,
    MSG,
    RM,
    MessageType,
    RmError,
    RmLine,
    RmMessage,
    decode,
    encode,
)

SENT = "2026-07-01T14:00:00+08:00"
EN_ROUTE = RmLine(1, "sandbag", 150, "jiashan-1", status="EnRoute")
ARRIVED = RmLine(2, "water-pump", 4, "jiashan-2", status="Arrived")


def _report(*lines: RmLine, responder: str | None = "330421") -> RmMessage:
    kind = MessageType.REPORT_STATUS
    return RmMessage(kind, f"r-1:{kind.value}", SENT, "320509", lines, responder, "r-1")


@pytest.mark.parametrize(
    "message",
    [_report(EN_ROUTE), _report(EN_ROUTE, ARRIVED), _report(ARRIVED, responder=None)],
    ids=["owner-en-route", "owner-both", "requester-arrived"],
)
def test_a_status_report_round_trips(message: RmMessage) -> None:
    xml = encode(message)
    assert decode(xml) == message
    assert encode(decode(xml)) == xml


def test_the_status_sits_in_the_resource_as_a_value_list_pair() -> None:
    xml = encode(_report(EN_ROUTE)).decode()
    assert f'<ReportResourceDeploymentStatus xmlns="{MSG}" xmlns:rm="{RM}">' in xml
    assert "<MessageContentType>ReportResourceDeploymentStatus</MessageContentType>" in xml
    status = (
        "<rm:ResourceStatus>\n"
        "        <rm:DeploymentStatus>\n"
        f"          <rm:ValueListURN>{DEPLOYMENT_LIST}</rm:ValueListURN>\n"
        "          <rm:Value>EnRoute</rm:Value>\n"
        "        </rm:DeploymentStatus>\n"
        "      </rm:ResourceStatus>\n"
        "    </Resource>"
    )
    assert status in xml
    assert DEPLOYMENT_LIST == "urn:liandong:registry:deployment"


def test_the_status_is_read_in_either_edxl_rm_namespace() -> None:
    message = _report(EN_ROUTE, ARRIVED)
    xml = encode(message).decode().replace("rm:", "").replace(f' xmlns:rm="{RM}"', "")
    assert decode(xml.encode()) == message


def test_other_messages_carry_no_status() -> None:
    commit = RmMessage(
        MessageType.COMMIT, "c", SENT, "320509", (RmLine(1, "sandbag", 150),), "330421", "r-1"
    )
    assert "ResourceStatus" not in encode(commit).decode()
    # A status given on another message's line is not written, so it does not come back.
    stray = RmMessage(MessageType.COMMIT, "c", SENT, "320509", (EN_ROUTE,), "330421", "r-1")
    assert decode(encode(stray)).lines[0].status is None


def _broken(old: str, new: str, message: RmMessage | None = None) -> bytes:
    xml = encode(message or _report(EN_ROUTE, ARRIVED)).decode()
    assert old in xml, old
    return xml.replace(old, new, 1).encode()


def _without(element: str, message: RmMessage) -> bytes:
    """The document with the first ``rm:element`` (and what it holds) taken out."""
    xml = encode(message).decode()
    start = xml.index(f"<rm:{element}>")
    end = xml.index(f"</rm:{element}>") + len(f"</rm:{element}>")
    return (xml[:start] + xml[end:]).encode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            _without("ResourceStatus", _report(EN_ROUTE)),
            r"element 'Resource': line 1: no ResourceStatus/DeploymentStatus",
        ),
        (
            _without("DeploymentStatus", _report(ARRIVED)),
            r"element 'ResourceStatus': line 2: no ResourceStatus/DeploymentStatus",
        ),
        (
            _broken("<rm:Value>Arrived", "<rm:Value>OnScene"),
            r"element 'DeploymentStatus': line 2: 'OnScene' is not one of EnRoute, Arrived",
        ),
        (
            _broken("<rm:Value>EnRoute", "<rm:Value>"),
            r"element 'Value': is empty",
        ),
        (
            _broken(DEPLOYMENT_LIST, "urn:example:status"),
            r"element 'DeploymentStatus': line 1: the value list 'urn:example:status' is not "
            r"urn:liandong:registry:deployment",
        ),
        (
            _broken(
                f"<rm:ValueListURN>{DEPLOYMENT_LIST}</rm:ValueListURN>",
                "",
            ),
            r"'ValueListURN' is missing",
        ),
        (
            _broken("<OriginatingMessageID>r-1</OriginatingMessageID>", ""),
            "'OriginatingMessageID' is missing",
        ),
    ],
    ids=[
        "no-resource-status", "no-deployment-status", "unknown-status", "empty-status",
        "other-value-list", "no-value-list", "no-originating-message",
    ],
)  # fmt: skip
def test_a_missing_or_unknown_status_is_refused_naming_the_line(data: bytes, error: str) -> None:
    with pytest.raises(RmError, match=error):
        decode(data)


def test_a_report_line_without_a_status_cannot_be_written() -> None:
    with pytest.raises(RmError, match="line 3: a deployment status needs EnRoute or Arrived"):
        encode(_report(EN_ROUTE, RmLine(3, "sandbag", 5)))
    with pytest.raises(RmError, match="not Returned"):
        encode(_report(RmLine(1, "sandbag", 5, status="Returned")))


def test_a_message_type_the_hub_does_not_read_is_still_refused() -> None:
    # ReportResourceDeploymentStatus is read now; an EDXL-RM message the hub has no use for is not.
    with pytest.raises(RmError, match="not a resource message this hub reads"):
        decode(b'<RequestQuote xmlns="' + MSG.encode() + b'"/>')
    with pytest.raises(RmError, match="ReportResourceDeploymentStatus, ReleaseResource"):
        decode(b'<OfferUnsolicitedResource xmlns="' + MSG.encode() + b'"/>')
