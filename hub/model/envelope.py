"""CloudEvents 1.0 envelope, structured JSON mode, with Liandong's extension attributes.

Encoding uses orjson with sorted keys and no optional whitespace, so the same event always has
the same bytes: replays compare hashes, and stores can refuse a second insert of the same id.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

SPECVERSION = "1.0"
# Namespace of every derived id (uuid5): event ids, task ids. Never change it.
NAMESPACE = uuid.UUID("6c1a9f1e-2b7d-5e0a-9d5c-4c69616e646f")


class Lane(StrEnum):
    """The CloudEvents ``status`` extension: which traffic an event belongs to."""

    ACTUAL = "actual"
    EXERCISE = "exercise"
    TEST = "test"


class Envelope(BaseModel):
    """One CloudEvent. ``data`` holds the JSON form of the event type's payload model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: str = SPECVERSION
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: str
    datacontenttype: str = "application/json"
    data: dict[str, Any]
    # Liandong extension attributes (CloudEvents names: lowercase alphanumerics only).
    jurisdiction: str
    status: Lane
    drill: str | None = None
    correlationid: str
    causationid: str | None = None
    traceparent: str | None = None

    def encode(self) -> bytes:
        """Canonical bytes: sorted keys, absent optionals omitted."""
        return _encode(self)


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """An event the hub emits: built from typed values only, so it is not validated again.

    ``encode`` gives the same bytes as ``Envelope.encode`` would for the same attributes.
    """

    id: str
    source: str
    type: str
    time: str
    data: dict[str, Any]
    jurisdiction: str
    status: Lane
    correlationid: str
    subject: str | None = None
    drill: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    specversion: str = SPECVERSION
    datacontenttype: str = "application/json"

    def encode(self) -> bytes:
        return _encode(self)


def _encode(event: Envelope | OutgoingEvent) -> bytes:
    out: dict[str, Any] = {
        "specversion": event.specversion,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": event.time,
        "datacontenttype": event.datacontenttype,
        "data": event.data,
        "jurisdiction": event.jurisdiction,
        "status": event.status.value,
        "correlationid": event.correlationid,
    }
    for name, value in (
        ("subject", event.subject),
        ("drill", event.drill),
        ("causationid", event.causationid),
        ("traceparent", event.traceparent),
    ):
        if value is not None:
            out[name] = value
    return orjson.dumps(out, option=orjson.OPT_SORT_KEYS)


_NAMESPACE_BYTES = NAMESPACE.bytes


def derived_id(*parts: str) -> str:
    """A deterministic id derived from its cause: RFC 4122 uuid5 over the parts.

    Equal to ``str(uuid.uuid5(NAMESPACE, "/".join(parts)))`` (a test checks it), without the
    UUID object: this runs twice for every task.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "/".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def format_time(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, the form of every hub timestamp."""
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from an RFC 3339 / ISO 8601 timestamp with an offset."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp '{text}' has no UTC offset")
    return int(value.timestamp() * 1000)
