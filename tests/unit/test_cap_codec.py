"""CAP XML ↔ canonical incident: spec examples, all of CAP, hostile input, round trips."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped]

from hub.codecs.cap import CapError, decode_cap, encode_cap
from hub.codecs.cap_xml import ALERT, AREA, CAP11, CAP12, INFO, PAIR, RESOURCE, parse
from hub.errors import InvalidInput
from hub.model.incident import Area, Incident, Info, Resource, ValuePair

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cap"
CAP12_FILES = sorted(p.name for p in FIXTURES.glob("*.xml") if not p.name.startswith("cap11"))
STORM = (FIXTURES / "cap12_a2_thunderstorm.xml").read_bytes()
STORM_11 = (FIXTURES / "cap11_a2_thunderstorm.xml").read_bytes()


def load(name: str) -> Incident:
    return decode_cap((FIXTURES / name).read_bytes())


def canonical(xml: bytes) -> tuple[Any, ...]:
    """The tree to compare: CAP elements, no insignificant whitespace, dateTimes and numbers
    by value, an omitted language as its default en-US."""
    return _node(etree.fromstring(xml))


def _node(el: Any) -> tuple[Any, ...]:
    name = etree.QName(el).localname
    kids = [_node(c) for c in el if str(c.tag).startswith(("{" + CAP12, "{" + CAP11))]
    if name == "info" and kids[0][0] != "language":
        kids.insert(0, ("language", "en-US"))
    if kids:
        return (name, tuple(kids))
    text = el.text or ""
    if name in ("altitude", "ceiling"):
        return (name, Decimal(text).normalize())
    return (name, text.strip() if name in ("sent", "effective", "onset", "expires") else text)


# --- the specification's examples and Liandong's own ---------------------------------------


@pytest.mark.parametrize("name", CAP12_FILES)
def test_every_cap12_fixture_round_trips_without_loss(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    incident = decode_cap(data)
    out = encode_cap(incident)
    assert out.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert decode_cap(out) == incident
    assert canonical(out) == canonical(data)


def test_appendix_a_examples_map_to_the_canonical_incident() -> None:
    advisory = load("cap12_a1_homeland_security.xml").info[0]
    assert advisory.language == "en-US"  # omitted: CAP's default
    assert advisory.parameter == [ValuePair(valueName="HSAS", value="ORANGE")]
    image = "http://www.dhs.gov/dhspublic/getAdvisoryImage"
    assert advisory.resource == [
        Resource(resourceDesc="Image file (GIF)", mimeType="image/gif", uri=image)
    ]
    storm = decode_cap(STORM).info[0]
    ring = "38.47,-120.14 38.34,-119.95 38.52,-119.74 38.62,-119.89 38.47,-120.14"
    assert storm.area[0].polygon == [ring]
    assert [g.value for g in storm.area[0].geocode] == ["006109", "006009", "006003"]
    assert storm.expires == "2003-06-17T16:00:00-07:00"
    quake = load("cap12_a3_earthquake.xml")
    assert quake.msgType == "Update"
    assert [r.identifier for r in quake.referenced()] == ["TRI13970876.1"]
    assert quake.info[0].area[0].circle == ["32.9525,-115.5527 0"]
    amber = load("cap12_a4_amber_alert.xml")
    assert [i.language for i in amber.info] == ["en-US", "es-US"]
    assert amber.info[1].event == "Abducción de Niño"


def test_liandong_messages_keep_languages_areas_resources_and_references() -> None:
    spill = load("liandong_taipu_spill.xml")
    assert (spill.sender, spill.code) == ("320509", ["GB/T 35561-2017", "LIANDONG-1.0"])
    assert [i.language for i in spill.info] == ["zh-CN", "en-US"]
    assert spill.addresses == '310118 330421 "Jiashan duty desk"'
    area = spill.info[0].area[0]
    assert (area.circle, area.altitude, area.ceiling) == (["31.03,120.90 2"], 0, 30.5)
    photo = spill.info[0].resource[0]
    assert photo.size == 482133 and photo.digest and photo.digest.startswith("2c26b46b")
    assert photo.derefUri is None  # kept by reference
    assert "\n污染带" in (spill.info[0].description or "")
    cancel = load("liandong_taipu_cancel.xml")
    assert cancel.msgType == "Cancel" and cancel.info == []
    assert [r.identifier for r in cancel.referenced()] == ["WJ-2026-0701-001", "WJ-2026-0701-002"]


@pytest.mark.parametrize("status", ["Actual", "Exercise", "System", "Test", "Draft"])
@pytest.mark.parametrize("msg_type", ["Alert", "Update", "Cancel", "Ack", "Error"])
def test_every_status_and_message_type(status: str, msg_type: str) -> None:
    data = (FIXTURES / "liandong_taipu_update.xml").read_bytes()
    data = data.replace(b">Actual<", f">{status}<".encode())
    data = data.replace(b">Update<", f">{msg_type}<".encode())
    incident = decode_cap(data)
    assert (incident.status, incident.msgType) == (status, msg_type)
    assert canonical(encode_cap(incident)) == canonical(data)


def test_cap11_is_read_as_cap12() -> None:
    old, new = decode_cap(STORM_11), decode_cap(STORM)
    assert old.info[0].area[0].polygon == new.info[0].area[0].polygon
    assert [g.valueName for g in old.info[0].area[0].geocode] == ["FIPS6"] * 3
    out = encode_cap(old)
    assert CAP12.encode() in out and CAP11.encode() not in out
    assert canonical(out) == canonical(STORM_11)
    assert load("cap11_a3_earthquake.xml").incidents == "13970876"
    very_likely = STORM_11.replace(b"Observed", b"Very Likely")  # CAP 1.0's value
    assert decode_cap(very_likely).info[0].certainty == "Likely"


def test_a_signature_is_accepted_but_not_kept() -> None:
    signature = b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><x/></Signature>'
    assert decode_cap(STORM.replace(b"</alert>", signature + b"</alert>")) == decode_cap(STORM)


def test_the_codec_writes_every_field_of_the_canonical_model() -> None:
    for model, order in ((Incident, ALERT), (Info, INFO), (Resource, RESOURCE), (Area, AREA)):
        assert list(model.model_fields) == list(order)
    assert list(ValuePair.model_fields) == list(PAIR)


# --- invalid CAP: each refusal names the problem -------------------------------------------

SCOPE = b"<scope>Public</scope>"
INVALID: dict[str, tuple[bytes, list[tuple[bytes, bytes]], str]] = {
    "wrong namespace": (STORM, [(b"cap:1.2", b"cap:9.9")], "line 2: element 'alert': root "
                        "element is in namespace 'urn:oasis:names:tc:emergency:cap:9.9'"),
    "no namespace": (STORM, [(b' xmlns = "' + CAP12.encode() + b'"', b"")], "has no namespace"),
    "CAP 1.0": (STORM, [(CAP12.encode(), b"http://www.incident.com/cap/1.0")], "CAP 1.0 is not"),
    "out of order": (STORM, [(b"Actual</status>\n    <msgType>Alert</msgType>",
                              b"Actual</status><source>x</source><msgType>Alert</msgType>")],
                     "line 6: element 'source': out of order: 'msgType' must come before it"),
    "no sent": (STORM, [(b"<sent>2003-06-17T14:57:00-07:00</sent>", b"")],
                "line 6: element 'status': missing required element 'sent' before 'status'"),
    "no areaDesc": (STORM, [(b"<areaDesc>", b"<!--"), (b"</areaDesc>", b"-->")],
                    "line 32: element 'polygon': missing required element 'areaDesc'"),
    "enumeration": (STORM, [(b">Immediate<", b">Soon<")], "line 13: element 'urgency': 'Soon' "
                    "is not one of Immediate, Expected, Future, Past, Unknown"),
    "Z in sent": (STORM, [(b"14:57:00-07:00", b"14:57:00Z")],
                  "line 5: element 'sent': '2003-06-17T14:57:00Z' is not a CAP dateTime"),
    "not a CAP element": (STORM, [(SCOPE, SCOPE + b"<foo/>")], "'foo': not a CAP element"),
    "attribute": (STORM, [(b"<status>", b'<status id="1">')], "attribute 'id' is not allowed"),
    "open polygon": (STORM, [(b"-119.89 38.47,-120.14<", b"-119.89 38.47,-120.15<")],
                     "line 32: element 'polygon': a CAP polygon must end with its first point"),
    "bad references": (STORM, [(b">Alert<", b">Cancel<"), (SCOPE, SCOPE + b"<references>a,b<"
                       b"/references>")], "references entry 'a,b' is not 'sender,identifier,sent'"),
    "Update without references": (STORM, [(b">Alert<", b">Update<")],
                                  "line 2: element 'alert': references is required"),
    "identifier with a space": (STORM, [(b">KSTO1055887203<", b">KSTO 1055887203<")],
                                "line 3: element 'identifier': must be non-empty, without spaces"),
    "CAP 1.1 with AllClear": (STORM_11, [(b">Shelter<", b">AllClear<")],
                              "line 12: element 'responseType': 'AllClear' is not one of"),
    "CAP 1.1 with Z": (STORM_11, [(b"57:00-07:00", b"57:00Z")], "(CAP 1.1 read as CAP 1.2)"),
    "not XML": (b"hello", [], "line 1: column 1: not well-formed XML: Start tag expected"),
    "JSON": (b'{"identifier": "x"}', [], "not well-formed XML"),
    "truncated": (STORM[:300], [], "not well-formed XML"),
    "empty": (b" \n", [], "empty body: not XML"),
    "too deep": (STORM[:100] + b"<a>" * 5000, [], "Excessive depth"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_cap_is_refused_with_the_problem_named(case: str) -> None:
    data, changes, expected = INVALID[case]
    for old, new in changes:
        assert old in data
        data = data.replace(old, new)
    with pytest.raises(CapError) as caught:
        decode_cap(data)
    assert expected in str(caught.value)
    assert isinstance(caught.value, InvalidInput)


def test_oversize_bodies_and_text_are_refused_unread() -> None:
    with pytest.raises(CapError, match="the limit is 1048576 bytes"):
        decode_cap(b" " * (1 << 20) + STORM)
    with pytest.raises(CapError, match="the limit is 1000 bytes"):
        decode_cap(STORM, max_bytes=1000)
    with pytest.raises(CapError, match="must be bytes, not str"):
        decode_cap(STORM.decode())  # type: ignore[arg-type]


# --- hostile XML: refused fast, nothing expanded, nothing read -----------------------------

CAP_ROOT = b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY l0 "lol">'
    + b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
    + b"]>" + CAP_ROOT + b"<identifier>&l9;</identifier></alert>"
)  # fmt: skip


def test_dtds_entities_and_external_references_are_refused_fast(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    uri = secret.as_uri().encode()
    xxe = b'<!DOCTYPE alert [<!ENTITY x SYSTEM "' + uri + b'">]>' + CAP_ROOT + b"&x;</alert>"
    payloads = [
        LAUGHS,
        xxe,
        b'<?xml version="1.0"?>\n<!-- first a comment -->' + xxe,
        b'<!DOCTYPE alert SYSTEM "' + uri + b'">' + STORM[39:],
        b'<!DOCTYPE alert [<!ENTITY % p SYSTEM "' + uri + b'"> %p;]><alert/>',
        xxe.decode().encode("utf-16"),  # not caught by the byte scan: by the parse
    ]
    for payload in payloads:
        start = time.perf_counter()
        with pytest.raises(CapError, match="DTDs are not accepted") as caught:
            decode_cap(payload)
        assert time.perf_counter() - start < 1.0
        assert "TOP-SECRET" not in str(caught.value)
    root, _ = parse(xxe)  # below decode_cap's DTD check: the parser's own settings
    assert b"TOP-SECRET" not in etree.tostring(root)
    with pytest.raises(CapError, match="amplification"):
        parse(LAUGHS)


def test_hostile_and_maximal_input_stays_under_50_mb() -> None:
    script = f"""
import resource
from hub.codecs.cap import CapError, decode_cap
storm = {STORM!r}
decode_cap(storm)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
many = storm.replace(b"{SCOPE.decode()}", b"{SCOPE.decode()}" + b"<code>x</code>" * 69000)
for payload in ({LAUGHS!r}, many, storm[:100] + b"<a>" * 300000):
    try:
        decode_cap(payload)
    except CapError:
        pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 50, f"grew by {out.stdout.strip()} MB"


# --- writing CAP ---------------------------------------------------------------------------


def test_incidents_cap_cannot_express_are_refused_by_name() -> None:
    incident = decode_cap(STORM)
    info, area = incident.info[0], incident.info[0].area[0]

    def with_info(**update: Any) -> Incident:
        return incident.model_copy(update={"info": [info.model_copy(update=update)]})

    with pytest.raises(CapError, match="element 'language'"):
        encode_cap(with_info(language="not a tag"))
    with pytest.raises(CapError, match="element 'note': cannot be written as XML"):
        encode_cap(incident.model_copy(update={"note": "bell \x07"}))
    with pytest.raises(CapError, match="element 'altitude'"):
        encode_cap(with_info(area=[area.model_copy(update={"altitude": float("inf")})]))


# --- properties: generated incidents round trip; arbitrary bytes never crash ---------------

_CHARS = st.characters(exclude_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r")
TEXT, WORD = st.text(_CHARS, max_size=12), st.text(_CHARS, min_size=1, max_size=12)
TOKEN = st.from_regex(r"[A-Za-z0-9@._\-:/一-龥]{1,12}", fullmatch=True)
URI = st.from_regex(r"[a-z0-9/]{0,10}", fullmatch=True).map("https://example.org/{}".format)
ZONE = st.integers(-14 * 60, 14 * 60).map(lambda m: f"{m // 60:+03d}:{m % 60:02d}" if m >= 0
                                          else f"-{-m // 60:02d}:{-m % 60:02d}")  # fmt: skip
WHEN = st.tuples(st.datetimes(min_value=datetime(1000, 1, 1)), ZONE).map(
    lambda t: f"{t[0]:%Y-%m-%dT%H:%M:%S}{t[1]}")  # fmt: skip
POINT = st.tuples(st.floats(-90, 90), st.floats(-180, 180)).map(lambda p: f"{p[0]},{p[1]}")
POLYGON = st.lists(POINT, min_size=3, max_size=5).map(lambda ps: " ".join([*ps, ps[0]]))
CIRCLE = st.tuples(POINT, st.floats(0, 1e4)).map(lambda c: f"{c[0]} {c[1]}")
PAIRS = st.lists(st.fixed_dictionaries({"valueName": WORD, "value": TEXT}), max_size=2)
NUMBER = st.floats(allow_nan=False, allow_infinity=False)
RESOURCES = st.lists(st.fixed_dictionaries(
    {"resourceDesc": WORD, "mimeType": WORD},
    optional={"size": st.integers(0, 10**30), "uri": URI, "derefUri": TEXT, "digest": TEXT},
), max_size=2)  # fmt: skip
AREAS = st.fixed_dictionaries(
    {"areaDesc": WORD, "polygon": st.lists(POLYGON, max_size=2)},
    optional={"circle": st.lists(CIRCLE, max_size=2), "geocode": PAIRS, "altitude": NUMBER,
              "ceiling": NUMBER},
).map(lambda a: a if "altitude" in a else {k: a[k] for k in a if k != "ceiling"})  # fmt: skip
OPTIONAL_TEXT = ("audience", "senderName", "headline", "description", "instruction", "contact")
INFOS = st.fixed_dictionaries(
    {
        "category": st.lists(st.sampled_from(["Geo", "Met", "Env", "CBRNE"]), min_size=1),
        "event": WORD, "urgency": st.sampled_from(["Immediate", "Unknown"]),
        "severity": st.sampled_from(["Extreme", "Minor"]),
        "certainty": st.sampled_from(["Observed", "Unlikely"]),
    },
    optional={
        "language": st.sampled_from(["en-US", "zh-CN", "zh-Hans-CN", "es-US", "fr"]),
        "responseType": st.lists(st.sampled_from(["Shelter", "AllClear", "None"]), max_size=2),
        "eventCode": PAIRS, "effective": WHEN, "onset": WHEN, "expires": WHEN, "web": URI,
        "parameter": PAIRS, "resource": RESOURCES, "area": st.lists(AREAS, max_size=2),
        **{name: TEXT for name in OPTIONAL_TEXT},
    },
)  # fmt: skip
INCIDENTS = st.fixed_dictionaries(
    {
        "identifier": TOKEN, "sender": TOKEN, "sent": WHEN, "restriction": WORD, "addresses": WORD,
        "status": st.sampled_from(["Actual", "Exercise", "System", "Test", "Draft"]),
        "msgType": st.sampled_from(["Alert", "Update", "Cancel", "Ack", "Error"]),
        "scope": st.sampled_from(["Public", "Restricted", "Private"]),
        "references": st.lists(st.tuples(TOKEN, TOKEN, WHEN).map(",".join), min_size=1,
                               max_size=3).map(" ".join),
    },
    optional={"source": TEXT, "code": st.lists(TEXT, max_size=2), "note": TEXT,
              "incidents": TEXT, "info": st.lists(INFOS, max_size=2)},
).map(Incident.model_validate)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(INCIDENTS)
def test_every_generated_incident_round_trips(incident: Incident) -> None:
    assert decode_cap(encode_cap(incident)) == incident


def _decodes_or_refuses(data: bytes) -> None:
    with contextlib.suppress(CapError):
        assert isinstance(decode_cap(data), Incident)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_decoded_or_refused(data: bytes) -> None:
    _decodes_or_refuses(data)


LINES = STORM.split(b"\n")
EDIT = st.tuples(st.integers(0, len(STORM)), st.integers(0, 40), st.binary(max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.lists(EDIT, min_size=1, max_size=4), st.permutations(range(len(LINES))), st.booleans())
def test_mutated_cap_is_decoded_or_refused(
    edits: list[tuple[int, int, bytes]], order: list[int], shuffle: bool
) -> None:
    data = b"\n".join(LINES[i] for i in order) if shuffle else STORM
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut :]
    _decodes_or_refuses(data)
