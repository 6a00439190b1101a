"""What a simulated city system says and hears, in its own format.

A city adapter's codec reads the city's messages; a simulated city must write them. A
:class:`Speech` does the city's side for each codec kind: an incident (canonical, from the
scenario) as the city would send it, a task message as the city receives it read back into a
:class:`HeardTask`, and the city's answer to a task in its own words:

- ``cap``: CAP 1.2 XML (or CAP 1.1: the same alert in the 1.1 namespace, for a city whose
  system predates 1.2); tasks come as CAP alerts, answers go as CAP Ack/Error;
- ``edxl-de``: the same CAP messages, each inside an EDXL-DE 2.0 envelope (Report, Update or
  Cancel for incidents; Ack or Error for answers);
- ``dialect``: the city's JSON, written and read through its mapping file (the mapping's
  ``encode_incident``, ``decode_task`` and ``encode_answer``), so the simulator speaks exactly
  the dialect the adapter reads;
- ``canonical-json``: the hub's own JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from adapters.codecs.dialect import Dialect, TaskAnswerNative
from adapters.framework.cap_tasks import answer_to_cap
from adapters.framework.codec import canonical_bytes
from adapters.framework.manifest import CodecSpec
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
from hub.errors import InvalidInput
from hub.model.incident import Incident, MsgType

__all__ = ["HeardTask", "Speech", "speech_for", "wrap_in_edxl_de"]

CAP11 = b"urn:oasis:names:tc:emergency:cap:1.1"
CAP12 = b"urn:oasis:names:tc:emergency:cap:1.2"
OPEN_STATES = frozenset({"issued", "delivered", "escalated"})


@dataclass(frozen=True, slots=True)
class HeardTask:
    """A task message as the city understood it."""

    task_id: str
    state: str  # issued, delivered, escalated, cancelled
    incident: str  # the incident thread, "sender,identifier"
    target: str
    action: str  # in Chinese
    response: str  # acknowledge or accept
    sent: str  # when the task message says it was issued (CAP answers reference it)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


class Speech(Protocol):
    kind: str
    content_type: str  # of what the city sends

    def incident(self, incident: Incident) -> bytes: ...

    def hear(self, raw: bytes) -> HeardTask: ...

    def answer(self, answer: TaskAnswer, task: HeardTask, *, sender: str, sent: str) -> bytes: ...


class CapSpeech:
    """CAP 1.2 (or 1.1) XML."""

    kind = "cap"
    content_type = "application/cap+xml"

    def __init__(self, task_sender: str, cap_version: Literal["1.1", "1.2"] = "1.2") -> None:
        self.task_sender = task_sender
        self.cap_version = cap_version

    def _xml(self, message: Incident) -> bytes:
        data = encode_cap(message)
        # CAP 1.1 is CAP 1.2 without its few additions (which the scenario must not use).
        return data.replace(CAP12, CAP11, 1) if self.cap_version == "1.1" else data

    def incident(self, incident: Incident) -> bytes:
        return self._xml(incident)

    def hear(self, raw: bytes) -> HeardTask:
        return self._heard(decode_cap(raw))

    def _heard(self, alert: Incident) -> HeardTask:
        if alert.sender != self.task_sender or not alert.info:
            raise InvalidInput(f"not a task of '{self.task_sender}': {alert.identifier}")
        params = {p.valueName: p.value for p in alert.info[0].parameter}
        zh = next((i for i in alert.info if i.language.startswith("zh")), alert.info[0])
        return HeardTask(
            task_id=params.get("liandong:task", alert.identifier.split(".", 1)[0]),
            state=params.get("liandong:state", "issued"),
            incident=alert.incidents or "",
            target=alert.addresses or "",
            action=zh.instruction or zh.headline or "",
            response=params.get("liandong:response", "acknowledge"),
            sent=alert.sent,
        )

    def _answer(self, answer: TaskAnswer, task: HeardTask, sender: str, sent: str) -> Incident:
        return answer_to_cap(
            answer,
            sender=sender,
            identifier=f"{sender}-{answer.answer.value}-{task.task_id}",
            sent=sent,
            task_sent=task.sent,
            task_sender=self.task_sender,
        )

    def answer(self, answer: TaskAnswer, task: HeardTask, *, sender: str, sent: str) -> bytes:
        return self._xml(self._answer(answer, task, sender, sent))


class EdxlDeSpeech(CapSpeech):
    """CAP inside EDXL-DE 2.0 envelopes."""

    kind = "edxl-de"
    content_type = "application/xml"

    def incident(self, incident: Incident) -> bytes:
        return wrap_in_edxl_de(incident, distribution_id=f"{incident.identifier}.de")

    def hear(self, raw: bytes) -> HeardTask:
        alerts = decode_edxl_de(raw).incidents
        if len(alerts) != 1:
            raise InvalidInput(f"EDXL-DE: one CAP alert expected, not {len(alerts)}")
        return self._heard(alerts[0])

    def answer(self, answer: TaskAnswer, task: HeardTask, *, sender: str, sent: str) -> bytes:
        alert = self._answer(answer, task, sender, sent)
        to = ("urn:liandong:sender", self.task_sender)
        return wrap_in_edxl_de(alert, distribution_id=f"{alert.identifier}.de", to=to)


_KINDS = {
    MsgType.ALERT: DistributionType.REPORT,
    MsgType.UPDATE: DistributionType.UPDATE,
    MsgType.CANCEL: DistributionType.CANCEL,
    MsgType.ACK: DistributionType.ACK,
    MsgType.ERROR: DistributionType.ERROR,
}


def wrap_in_edxl_de(
    alert: Incident, *, distribution_id: str, to: tuple[str, str] | None = None
) -> bytes:
    """One CAP alert in an EDXL-DE 2.0 distribution from its sender (kept a day), addressed to
    ``to`` (scheme, value), or to nobody in particular."""
    expires = datetime.fromisoformat(alert.sent) + timedelta(days=1)
    dist = Distribution(
        version="2.0",
        distribution_id=distribution_id,
        sender_id=alert.sender,
        date_time_sent=alert.sent,
        date_time_expires=expires.isoformat(),
        distribution_status=DistributionStatus(alert.status.value),
        distribution_type=_KINDS.get(alert.msgType, DistributionType.REPORT),
        combined_confidentiality="Unclassified",
        explicit_address=[ExplicitAddress(scheme=to[0], values=[to[1]])] if to else [],
        contents=[ContentObject(embedded=[EmbeddedXml(incident=alert)])],
    )
    return encode_edxl_de(dist)


class DialectSpeech:
    """The city's JSON dialect, through its mapping file."""

    kind = "dialect"
    content_type = "application/json"

    def __init__(self, mapping: Path) -> None:
        self.dialect = Dialect.load(mapping)

    def incident(self, incident: Incident) -> bytes:
        return self.dialect.encode_incident(incident)

    def hear(self, raw: bytes) -> HeardTask:
        return _heard_fields(self.dialect.decode_task(raw))

    def answer(self, answer: TaskAnswer, task: HeardTask, *, sender: str, sent: str) -> bytes:
        native = TaskAnswerNative(answer.task, answer.answer.value, answer.reason)
        return self.dialect.encode_answer(native)


class CanonicalSpeech:
    """The hub's own JSON."""

    kind = "canonical-json"
    content_type = "application/json"

    def incident(self, incident: Incident) -> bytes:
        return canonical_bytes(incident)

    def hear(self, raw: bytes) -> HeardTask:
        try:
            return _heard_fields(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"not JSON: {exc}") from None

    def answer(self, answer: TaskAnswer, task: HeardTask, *, sender: str, sent: str) -> bytes:
        return answer.encode()


def _heard_fields(fields: dict[str, Any]) -> HeardTask:
    try:
        return HeardTask(
            task_id=str(fields["id"]),
            state=str(fields.get("state", "issued")),
            incident=str(fields.get("incident", "")),
            target=str(fields.get("target", "")),
            action=str(fields.get("action_zh", "")),
            response=str(fields.get("response", Answer.ACKNOWLEDGE.value)),
            sent=str(fields.get("issued", "")),
        )
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"a task message without its id: {exc}") from None


def speech_for(spec: CodecSpec, folder: Path, cap_version: Literal["1.1", "1.2"] = "1.2") -> Speech:
    """The city side of the codec a manifest names."""
    if spec.kind == "cap":
        return CapSpeech(spec.task_sender, cap_version)
    if spec.kind == "edxl-de":
        return EdxlDeSpeech(spec.task_sender, cap_version)
    if spec.kind == "dialect":
        assert spec.mapping is not None  # the manifest requires it
        return DialectSpeech(folder / spec.mapping)
    return CanonicalSpeech()
