"""EDXL-DE 1.0 and 2.0 ⇄ Distribution: unwrapping CAP, addressing, structure, hostile input."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.codecs.cap import CapError, decode_cap
from hub.codecs.edxl_de import (
    ContentObject,
    Distribution,
    DistributionStatus,
    DistributionType,
    EdxlError,
    EmbeddedXml,
    ExplicitAddress,
    OtherContent,
    TargetArea,
    ValueList,
    decode_edxl_de,
    encode_edxl_de,
    looks_like_edxl_de,
)
from hub.errors import InvalidInput
from hub.model.incident import Certainty, Status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DE10_SPILL = (FIXTURES / "edxl" / "de10_taipu_spill.xml").read_bytes()
DE20_EXERCISE = (FIXTURES / "edxl" / "de20_taipu_exercise.xml").read_bytes()
MISMATCH = (FIXTURES / "edxl" / "de10_status_mismatch.xml").read_bytes()
CAP_FILES = sorted((FIXTURES / "cap").glob("*.xml"))


def line_of(data: bytes, needle: bytes) -> int:
    return data[: data.index(needle)].count(b"\n") + 1


# --- what a distribution carries -----------------------------------------------------------


def test_de10_unwraps_the_cap_alert_and_keeps_status_addressing_and_other_content() -> None:
    d = decode_edxl_de(DE10_SPILL)
    assert (d.version, d.distribution_id, d.sender_id) == (
        "1.0", "WJ-DE-2026-0701-001", "yjgl@wujiang.gov.cn"
    )  # fmt: skip
    assert d.distribution_status is DistributionStatus.ACTUAL
    assert d.distribution_type is DistributionType.REPORT
    assert d.combined_confidentiality == "UNCLASSIFIED AND NOT SENSITIVE"
    assert d.recipient_role == [
        ValueList(value_list_urn="urn:liandong:roles",
                  values=["district-command-centre", "water-authority"])
    ]  # fmt: skip
    assert d.explicit_address == [
        ExplicitAddress(scheme="urn:liandong:jurisdiction", values=["310118", "330421"])
    ]
    area = d.target_area[0]
    assert area.circles == ["31.03,120.90 2"] and area.subdivisions == ["CN-JS", "CN-SH"]
    alert, photo = d.contents
    assert alert.incident_id == "320509,WJ-2026-0701"
    assert alert.incident is not None and alert.incident.identifier == "WJ-2026-0701-001"
    assert [i.identifier for i in d.incidents] == ["WJ-2026-0701-001"]
    assert photo.incident is None and photo.other_content == OtherContent(
        mime_type="image/jpeg",
        size=482133,
        digest="LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=",
        uri="https://yjgl.wujiang.gov.cn/media/taipu-0701-1.jpg",
    )


def test_de20_reads_the_descriptor_upgrades_cap11_and_keeps_other_xml_verbatim() -> None:
    d = decode_edxl_de(DE20_EXERCISE)
    assert d.version == "2.0" and d.date_time_expires == "2026-09-15T18:00:00+08:00"
    assert d.distribution_status is DistributionStatus.EXERCISE
    assert (d.urgency, d.severity, d.certainty) == ("Expected", "Moderate", "Possible")
    assert d.keyword[0].values == ["taipu-2026-autumn"] and d.incident_ids == ["QP-EX-2026-0915"]
    area = d.target_area[0]
    assert (area.area_kind, area.area_grouping) == ("DistributionTargetArea", "Union")
    assert area.locations[0].startswith("<geoPoliticalLocation xmlns=")
    assert "<Value>310118</Value>" in area.locations[0]
    drill, report = d.contents
    assert drill.content_ids == ["QP-EX-2026-0915-001"] and drill.language == "zh-CN"
    assert drill.key_xml == ['<key xmlns="urn:liandong:keys">QP-EX-2026-0915-001</key>']
    incident = drill.incident
    assert incident is not None and incident.status is Status.EXERCISE
    assert incident.info[0].certainty is Certainty.LIKELY  # CAP 1.0's "Very Likely", as 1.1 says
    assert report.incident is None and report.embedded[0].xml is not None
    assert report.embedded[0].xml.startswith('<report xmlns="urn:liandong:drill-report"')
    assert "取水口关闭用时 14 分钟" in report.embedded[0].xml


@pytest.mark.parametrize("data", [DE10_SPILL, DE20_EXERCISE], ids=["1.0", "2.0"])
def test_fixtures_round_trip_and_encoding_is_stable(data: bytes) -> None:
    d = decode_edxl_de(data)
    out = encode_edxl_de(d)
    assert decode_edxl_de(out) == d
    assert encode_edxl_de(decode_edxl_de(out)) == out


def _everything(version: str) -> Distribution:
    """A distribution of ``version`` using every field it has, carrying every CAP fixture."""
    v10 = version == "1.0"
    status = DistributionStatus.ACTUAL
    alerts = [
        EmbeddedXml(incident=i)
        for i in (decode_cap(p.read_bytes()) for p in CAP_FILES)
        if i.status.value == status.value
    ]
    roles = [ValueList(value_list_urn="urn:x:roles", values=["a", "b c"])]
    other = OtherContent(mime_type="text/csv", size=12, uri="https://x.example/a.csv",
                         digest="AAAA", content_data="YSxiCg==")  # fmt: skip
    xml = EmbeddedXml(xml='<r xmlns="urn:x" k="v"><s>t &amp; u</s>\n</r>')
    contents = [
        ContentObject(description=" 说明 ", keywords=roles, originator_roles=roles,
                      consumer_roles=roles, confidentiality="Unclassified", embedded=[a],
                      **({"incident_id": "i-1", "incident_description": "d"} if v10 else
                         {"content_ids": ["c-1"], "language": "zh-CN"}))
        for a in alerts
    ]  # fmt: skip
    contents += [ContentObject(other_content=other),
                 ContentObject(embedded=[xml], key_xml=['<k xmlns="urn:x">1</k>'])]  # fmt: skip
    area = (
        TargetArea(circles=["31,121 5"], polygons=["1,1 1,2 2,2 1,1"], countries=["CN"],
                   subdivisions=["CN-SH"], loc_codes_un=["CNSHA"])
        if v10 else
        TargetArea(area_kind="SourceTargetArea", area_grouping="Intersection",
                   locations=['<g xmlns="urn:gml-like"><pos>31 121</pos></g>'])
    )  # fmt: skip
    extra: dict[str, object] = (
        {"distribution_reference": ["a,b,2026-01-01T00:00:00Z"],
         "combined_confidentiality": "UNCLASSIFIED"}
        if v10 else
        {"date_time_expires": "2026-07-02T00:00:00+08:00", "urgency": "Immediate",
         "severity": "Severe", "certainty": "Observed", "incident_ids": ["x"],
         "incident_descriptions": ["y"], "combined_confidentiality": "Classified"}
    )  # fmt: skip
    return Distribution.model_validate(
        {"version": version, "distribution_id": "d-1", "sender_id": "s@x",
         "date_time_sent": "2026-07-01T08:30:00.5+08:00", "distribution_status": status,
         "distribution_type": "Update", "language": "en-GB", "sender_role": roles,
         "recipient_role": roles, "keyword": roles,
         "explicit_address": [ExplicitAddress(scheme="urn:x", values=["1", "2"])],
         "target_area": [area], "contents": contents, **extra}
    )  # fmt: skip


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_every_field_round_trips(version: str) -> None:
    d = _everything(version)
    assert len(d.incidents) >= 5
    assert decode_edxl_de(encode_edxl_de(d)) == d


# --- the rules the envelope enforces -------------------------------------------------------


def test_a_cap_status_disagreeing_with_the_envelope_is_refused_naming_both() -> None:
    with pytest.raises(EdxlError) as caught:
        decode_edxl_de(MISMATCH)
    error = caught.value
    assert isinstance(error, InvalidInput) and isinstance(error, CapError)
    assert error.element == "status" and error.line == line_of(MISMATCH, b"<status>Actual")
    assert "CAP status 'Actual'" in str(error) and "distributionStatus 'Exercise'" in str(error)
    d = decode_edxl_de(DE10_SPILL)
    with pytest.raises(ValidationError, match="disagrees"):
        Distribution.model_validate({**d.model_dump(), "distribution_status": "Test"})
    draft = DE10_SPILL.replace(b"<status>Actual", b"<status>Draft")
    with pytest.raises(EdxlError, match="CAP status 'Draft' disagrees"):
        decode_edxl_de(draft)


def test_fields_a_version_does_not_have_are_refused_by_the_model() -> None:
    d = decode_edxl_de(DE10_SPILL).model_dump()
    cases = [
        ({"urgency": "Immediate"}, "urgency exists only in EDXL-DE 2.0"),
        ({"distribution_type": "SensorStatus"}, "not in EDXL-DE 1.0"),
        ({"combined_confidentiality": None}, "required in EDXL-DE 1.0"),
        ({"version": "2.0"}, "date_time_expires is required"),
        ({"date_time_sent": "2026-07-01T08:30:00"}, "time zone"),
    ]
    for change, message in cases:
        with pytest.raises(ValidationError, match=message):
            Distribution.model_validate({**d, **change})


# --- structure: every refusal names the line, the element and the problem ------------------


def _refusal(data: bytes) -> EdxlError:
    with pytest.raises(EdxlError) as caught:
        decode_edxl_de(data)
    return caught.value


@pytest.mark.parametrize(
    ("old", "new", "element", "message"),
    [
        (b"<senderID>yjgl@wujiang.gov.cn</senderID>", b"", "dateTimeSent",
         "missing required element 'senderID' before it"),
        (b"<distributionType>Report", b"<distributionType>Alert", "distributionType",
         "'Alert' is not one of Report, Update, Cancel"),
        (b"<dateTimeSent>2026-07-01T08:31:00+08:00", b"<dateTimeSent>2026-07-01 08:31",
         "dateTimeSent", "is not a dateTime with a time zone"),
        (b"<dateTimeSent>2026-07-01T08:31:00+08:00", b"<dateTimeSent>2026-13-01T08:31:00Z",
         "dateTimeSent", "is not a real date"),
        (b"<language>zh-CN</language>", b"<language>zh-CN</language><language>en</language>",
         "language", "appears more than once"),
        (b"<country>CN</country>", b"<country>CN</country><circle>1,1 1</circle>", "circle",
         "out of order: it must come before 'country'"),
        (b"<country>CN</country>", b"<country/>", "country", "must not be empty"),
        (b"<distributionID>WJ-DE-2026-0701-001</distributionID>",
         b"<distributionId>WJ-DE-2026-0701-001</distributionId>", "distributionId",
         "not allowed here; expected 'distributionID'"),
        (b"<xmlContent>", b"<nonXMLContent><mimeType>a/b</mimeType></nonXMLContent><xmlContent>",
         "contentObject", "exactly one of 'nonXMLContent' or 'xmlContent'"),
        (b"<size>482133</size>", b"<size>big</size>", "size", "is not a size in bytes"),
        (b"<urgency>Immediate</urgency>", b"<urgency>Soon</urgency>", "urgency",
         "content object 1: CAP alert: 'Soon' is not one of Immediate"),
        (b"<keyword>\n", b"<keyword>stray text\n", "keyword", "text is not allowed here"),
    ],
)  # fmt: skip
def test_structure_errors_name_line_element_and_problem(
    old: bytes, new: bytes, element: str, message: str
) -> None:
    assert old in DE10_SPILL
    data = DE10_SPILL.replace(old, new, 1)
    error = _refusal(data)
    assert error.element == element, str(error)
    assert message in str(error), str(error)
    assert error.line is not None and f"line {error.line}: element '{element}'" in str(error)
    at = b"<contentObject>" if element == "contentObject" else new or b"<dateTimeSent>"
    assert error.line == line_of(data, at)


def test_roots_namespaces_and_unsupported_de20_parts_are_refused_clearly() -> None:
    no_ns = DE10_SPILL.replace(b' xmlns="urn:oasis:names:tc:emergency:EDXL:DE:1.0"', b"", 1)
    assert "root element has no namespace" in str(_refusal(no_ns))
    wrong = DE10_SPILL.replace(b"EDXLDistribution", b"edxlDistribution")
    assert "root element must be 'EDXLDistribution'" in str(_refusal(wrong))
    capital = DE20_EXERCISE.replace(b"edxlDistribution", b"EDXLDistribution")
    assert decode_edxl_de(capital) == decode_edxl_de(DE20_EXERCISE)
    extension = DE20_EXERCISE.replace(
        b"  <descriptor",
        b'  <extension xmlns="urn:oasis:names:tc:emergency:edxl:extension:1.0"/>\n  <descriptor',
    )
    error = _refusal(extension)
    assert error.element == "extension" and "not supported yet" in str(error)
    no_expiry = DE20_EXERCISE.replace(b"<dateTimeExpires>2026-09-15T18:00:00+08:00"
                                      b"</dateTimeExpires>", b"")  # fmt: skip
    assert "missing required element 'dateTimeExpires'" in str(_refusal(no_expiry))
    assert "not well-formed" in str(_refusal(DE10_SPILL[:-30]))
    assert "limit is 1000 bytes" in str(_refusal_with(DE10_SPILL, max_bytes=1000))


def _refusal_with(data: bytes, *, max_bytes: int) -> EdxlError:
    with pytest.raises(EdxlError) as caught:
        decode_edxl_de(data, max_bytes=max_bytes)
    return caught.value


def test_the_sniff_tells_envelopes_from_alerts() -> None:
    assert looks_like_edxl_de(DE10_SPILL) and looks_like_edxl_de(DE20_EXERCISE)
    assert not any(looks_like_edxl_de(p.read_bytes()) for p in CAP_FILES)


# --- hostile XML: refused fast, nothing expanded, nothing read ------------------------------

DE_ROOT = b'<EDXLDistribution xmlns="urn:oasis:names:tc:emergency:EDXL:DE:1.0">'
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE EDXLDistribution [<!ENTITY l0 "lol">'
    + b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
    + b"]>" + DE_ROOT + b"<distributionID>&l9;</distributionID></EDXLDistribution>"
)  # fmt: skip


def test_dtds_entities_and_external_references_are_refused_fast(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    uri = secret.as_uri().encode()
    xxe = b'<!DOCTYPE x [<!ENTITY x SYSTEM "' + uri + b'">]>' + DE_ROOT + b"&x;</EDXLDistribution>"
    payloads = [
        LAUGHS,
        xxe,
        b'<?xml version="1.0"?>\n<!-- first a comment -->\n' + xxe,
        b'<!DOCTYPE EDXLDistribution SYSTEM "http://127.0.0.1:9/de.dtd">' + DE10_SPILL[39:],
        b'<!DOCTYPE x [<!ENTITY % p SYSTEM "'
        + uri
        + b'"> %p;]>'
        + DE_ROOT
        + b"</EDXLDistribution>",
        xxe.decode().encode("utf-16"),  # not caught by the byte scan: by the parse
    ]
    for payload in payloads:
        start = time.perf_counter()
        error = _refusal(payload)
        assert time.perf_counter() - start < 1.0
        assert "DTDs are not accepted" in str(error) and "TOP-SECRET" not in str(error)


def test_hostile_and_maximal_input_stays_under_50_mb() -> None:
    script = f"""
import resource
from hub.codecs.edxl_de import EdxlError, decode_edxl_de
spill = {DE10_SPILL!r}
decode_edxl_de(spill)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
many = spill.replace(b"<language>zh-CN</language>", b"<language>zh-CN</language>"
                     + b"<keyword><valueListUrn>u</valueListUrn><value>v</value></keyword>" * 60000)
for payload in ({LAUGHS!r}, many, spill[:400] + b"<a>" * 1000000):
    try:
        decode_edxl_de(payload)
    except EdxlError:
        pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 50, f"grew by {out.stdout.strip()} MB"
