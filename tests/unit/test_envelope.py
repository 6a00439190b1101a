"""CloudEvents envelope: canonical bytes, and a registry that refuses what it does not know."""

from __future__ import annotations

import orjson
import pytest

from hub.errors import InvalidInput, UnknownEventType
from hub.model.envelope import Lane, derived_id, format_time, parse_time
from hub.model.events import EvaluationFailed, IncidentReported, decode, make_event
from hub.model.incident import Incident
from tests.factories import cap


def _event() -> bytes:
    payload = IncidentReported(
        incident=Incident.model_validate(cap("e1")),
        thread="310118,e1",
        version=1,
        received="2026-07-01T00:30:00.000Z",
    )
    return make_event(
        "incident.reported",
        payload,
        id=derived_id("incident.reported", "310118,e1"),
        source="/liandong/adapters/test",
        time="2026-07-01T00:30:00.000Z",
        jurisdiction="310118",
        correlationid="310118,e1",
    ).encode()


def test_encoding_is_canonical_and_cloudevents_shaped() -> None:
    raw = _event()
    assert raw == _event()
    obj = orjson.loads(raw)
    assert list(obj) == sorted(obj)
    assert obj["specversion"] == "1.0"
    assert obj["status"] == "actual"
    assert obj["correlationid"] == "310118,e1"
    assert "drill" not in obj  # absent optionals are omitted, not null


def test_decode_gives_the_typed_payload() -> None:
    event = decode(_event())
    payload = event.payload_as(IncidentReported)
    assert payload.incident.identifier == "e1"
    assert event.envelope.status is Lane.ACTUAL
    with pytest.raises(InvalidInput):
        event.payload_as(EvaluationFailed)


def test_unknown_type_fails_loudly() -> None:
    obj = orjson.loads(_event())
    obj["type"] = "incident.imagined"
    with pytest.raises(UnknownEventType, match=r"incident\.imagined"):
        decode(orjson.dumps(obj))
    with pytest.raises(UnknownEventType):
        make_event(
            "nope",
            EvaluationFailed(incident="x", playbook="p", reason="r"),
            id="1",
            source="s",
            time="t",
            jurisdiction="j",
            correlationid="c",
        )


def test_bad_payload_names_the_field() -> None:
    obj = orjson.loads(_event())
    obj["data"]["version"] = "first"
    with pytest.raises(InvalidInput, match="version"):
        decode(orjson.dumps(obj))
    with pytest.raises(InvalidInput, match="not JSON"):
        decode(b"{nope")


def test_ids_and_times() -> None:
    assert derived_id("a", "b") == derived_id("a", "b") != derived_id("a", "c")
    ms = parse_time("2026-07-01T08:30:00+08:00")
    assert format_time(ms) == "2026-07-01T00:30:00.000Z"
    assert parse_time(format_time(ms)) == ms
    with pytest.raises(ValueError, match="offset"):
        parse_time("2026-07-01T08:30:00")


def test_derived_id_is_rfc4122_uuid5() -> None:
    import uuid

    from hub.model.envelope import NAMESPACE

    for parts in [("a",), ("pb", "1", "310118,x", "step", "320509"), ("任务", "中文")]:
        assert derived_id(*parts) == str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def test_outgoing_and_validated_envelopes_encode_alike() -> None:
    from hub.model.envelope import Envelope

    raw = _event()
    assert Envelope.model_validate(orjson.loads(raw)).encode() == raw
