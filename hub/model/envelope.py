"""CloudEvents 1.0 envelope, structured JSON mode, with Liandong's extension attributes.

Encoding uses orjson with sorted keys and no optional whitespace, so the same event always has
the same bytes: replays compare hashes, and stores can refuse a second insert of the same id.
"""

from __future__ import annotations

import uuid
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
        return orjson.dumps(
            self.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS
        )


def derived_id(*parts: str) -> str:
    """A deterministic id derived from its cause (uuid5 over the parts)."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


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
