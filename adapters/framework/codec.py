"""Codecs: a city's native messages ⇄ the hub's canonical incident, answers and tasks.

Every codec does the same three things, whatever the city speaks:

- ``decode(raw, channel)``: a native message → a canonical :class:`Incident` or a
  :class:`TaskAnswer`. ``channel`` says where it came from (``incidents``, ``answers``, or
  ``any`` when the transport has one door for both); CAP codecs tell the two apart themselves
  (an Ack/Error that references a hub task is an answer), the others go by the channel.
- ``encode_task(task)``: a task, as ``GET /api/v1/tasks`` returns it → native bytes.
- ``encode_incident(incident)``: canonical → native, where the format can say it (fixtures
  check the round trip); None where it cannot.

Kinds: ``cap`` (CAP 1.2 XML; ``hub.codecs.cap``), ``edxl-de`` (CAP inside an EDXL-DE envelope;
``hub.codecs.edxl_de``), ``dialect`` (the city's own JSON with a mapping file;
``adapters.codecs.dialect``), ``canonical-json`` (the hub's JSON as it is). A codec is built
when the adapter is loaded, so a bad mapping file stops the adapter before it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
from pydantic import ValidationError

from adapters.codecs.dialect import Dialect
from adapters.framework.cap_tasks import answer_from_cap, task_to_cap
from adapters.framework.manifest import CodecSpec
from adapters.framework.task_feed import message_key
from adapters.links.mqtt_protocol import Answer, TaskAnswer
from hub.codecs.cap import decode_cap, encode_cap
from hub.codecs.edxl_de import (
    ContentObject,
    Distribution,
    DistributionStatus,
    DistributionType,
    EmbeddedXml,
    ExplicitAddress,
    decode_edxl_de,
    encode_edxl_de,
)
from hub.codecs.signature import verify_cap_signature
from hub.errors import InvalidInput
from hub.intake.service import parse_incident
from hub.model.incident import Incident, MsgType

__all__ = ["Channel", "Codec", "canonical_bytes", "load_codec"]

Channel = Literal["incidents", "answers", "any"]
CAP_XML = "application/cap+xml"
EDXL_XML = "application/xml"
JSON = "application/json"


class Codec(Protocol):
    kind: str
    content_type: str  # of what encode_task returns

    def decode(self, raw: bytes, channel: Channel) -> Incident | TaskAnswer: ...

    def encode_task(self, task: dict[str, Any]) -> bytes: ...

    def encode_incident(self, incident: Incident) -> bytes | None: ...


class CapCodec:
    """CAP 1.2 XML both ways (CAP 1.1 accepted on input)."""

    kind = "cap"
    content_type = CAP_XML

    def __init__(self, task_sender: str, trusted_pem: list[bytes] | None = None) -> None:
        self.task_sender = task_sender
        self._trusted = trusted_pem or []

    def decode(self, raw: bytes, channel: Channel) -> Incident | TaskAnswer:
        if self._trusted:  # configured with certificates: only signed, unaltered CAP passes
            verify_cap_signature(raw, self._trusted)
        return self._sort(decode_cap(raw), channel)

    def _sort(self, message: Incident, channel: Channel) -> Incident | TaskAnswer:
        answer = answer_from_cap(message, self.task_sender)
        if answer is not None:
            return answer
        if channel == "answers":
            raise InvalidInput(
                "msgType: an answer is a CAP Ack or Error whose references name a task of "
                f"'{self.task_sender}'"
            )
        return message

    def encode_task(self, task: dict[str, Any]) -> bytes:
        return encode_cap(task_to_cap(task, self.task_sender))

    def encode_incident(self, incident: Incident) -> bytes | None:
        return encode_cap(incident)


class EdxlDeCodec(CapCodec):
    """CAP inside an EDXL-DE envelope, both ways: one CAP alert per distribution in; a task out
    as a ``Request`` distribution (a cancellation: ``Cancel``) addressed to the target's
    GB/T 2260 code, in the EDXL-DE version the manifest names."""

    kind = "edxl-de"
    content_type = EDXL_XML

    def __init__(self, task_sender: str, version: Literal["1.0", "2.0"] = "2.0") -> None:
        super().__init__(task_sender)
        self.version = version

    def decode(self, raw: bytes, channel: Channel) -> Incident | TaskAnswer:
        found = decode_edxl_de(raw).incidents
        if len(found) != 1:
            raise InvalidInput(f"EDXL-DE: one CAP alert per distribution, not {len(found)}")
        return self._sort(found[0], channel)

    def encode_task(self, task: dict[str, Any]) -> bytes:
        alert = task_to_cap(task, self.task_sender)
        extra: dict[str, Any] = {"combined_confidentiality": "UNCLASSIFIED AND NOT SENSITIVE"}
        if self.version == "2.0":
            # DE 2.0 requires an expiry; a task message is kept for a day after it was issued.
            expires = datetime.fromisoformat(alert.sent) + timedelta(days=1)
            extra = {
                "combined_confidentiality": "Unclassified",
                "date_time_expires": expires.isoformat(),
            }
        kind = DistributionType.CANCEL if alert.msgType is MsgType.CANCEL else None
        dist = Distribution(
            version=self.version,
            distribution_id=message_key(task),
            sender_id=self.task_sender,
            date_time_sent=alert.sent,
            distribution_status=DistributionStatus(alert.status.value),
            distribution_type=kind or DistributionType.REQUEST,
            explicit_address=[ExplicitAddress(scheme="GB/T 2260", values=[str(task["target"])])],
            contents=[ContentObject(embedded=[EmbeddedXml(incident=alert)])],
            **extra,
        )
        return encode_edxl_de(dist)

    def encode_incident(self, incident: Incident) -> bytes | None:
        return None  # an envelope needs addressing that an incident alone does not give


class DialectCodec:
    """The city's own JSON, translated by its mapping file (``adapters.codecs.dialect``)."""

    kind = "dialect"
    content_type = JSON

    def __init__(self, mapping: Path) -> None:
        self._dialect = Dialect.load(mapping)

    def decode(self, raw: bytes, channel: Channel) -> Incident | TaskAnswer:
        if channel != "answers":
            return self._dialect.decode_incident(raw)
        found = self._dialect.decode_answer(raw)
        try:
            return TaskAnswer(task=found.task_id, answer=Answer(found.answer), reason=found.reason)
        except ValidationError as exc:
            raise InvalidInput(f"answer: {exc.errors()[0]['msg']}") from None

    def encode_task(self, task: dict[str, Any]) -> bytes:
        return self._dialect.encode_task(task)

    def encode_incident(self, incident: Incident) -> bytes | None:
        return self._dialect.encode_incident(incident)


class CanonicalJsonCodec:
    """The hub's own JSON: incidents as ``POST /api/v1/incidents`` takes them, answers as
    ``{"task", "answer", "reason"}``, tasks as the API returns them."""

    kind = "canonical-json"
    content_type = JSON

    def decode(self, raw: bytes, channel: Channel) -> Incident | TaskAnswer:
        if channel == "answers":
            try:
                return TaskAnswer.model_validate_json(raw)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "(body)"
                raise InvalidInput(f"{where}: {err['msg']}") from None
        return parse_incident(raw)

    def encode_task(self, task: dict[str, Any]) -> bytes:
        return orjson.dumps(task, option=orjson.OPT_SORT_KEYS)

    def encode_incident(self, incident: Incident) -> bytes | None:
        return canonical_bytes(incident)


def load_codec(spec: CodecSpec, folder: Path) -> Codec:
    """The codec a manifest names (``InvalidInput`` for a mapping file that does not load)."""
    if spec.kind == "cap":
        trusted = [_read_certificate(folder, name) for name in spec.trusted_certificates]
        return CapCodec(spec.task_sender, trusted)
    if spec.kind == "edxl-de":
        return EdxlDeCodec(spec.task_sender, spec.edxl_version)
    if spec.kind == "dialect":
        assert spec.mapping is not None  # the manifest requires it
        return DialectCodec(folder / spec.mapping)
    return CanonicalJsonCodec()


def _read_certificate(folder: Path, name: str) -> bytes:
    try:
        return (folder / name).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"trusted certificate {name}: {exc.strerror or exc}") from exc


def canonical_bytes(incident: Incident) -> bytes:
    """What the hub is sent for an incident: its canonical JSON."""
    return orjson.dumps(incident.model_dump(mode="json", exclude_none=True))
