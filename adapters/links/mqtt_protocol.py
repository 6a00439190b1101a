"""What the hub's MQTT link and a city system say to each other (``docs/asyncapi.yaml``).

One topic subtree per jurisdiction, ``liandong/v1/{code}/{kind}`` (names from
``hub.bus.topics.mqtt_topic``), payloads plain JSON:

- ``incidents`` (city -> link): the canonical incident, as ``POST /api/v1/incidents`` takes it;
- ``tasks`` (link -> city): the task, as ``GET /api/v1/tasks`` returns it; sent again until the
  city answers it (a city must deduplicate by task ``id``, and answer a repeat again);
- ``task-updates`` (city -> link): :class:`TaskAnswer`, as ``POST /api/v1/tasks/{id}/{answer}``;
- ``status`` (city, retained): ``online`` when it connects, ``offline`` as its last will.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from hub.bus.topics import MQTT_KINDS, mqtt_topic

PREFIX = "liandong/v1/"
JSON = "application/json"
TEXT = "text/plain"
ONLINE = b"online"
OFFLINE = b"offline"


class Answer(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ACCEPT = "accept"
    DECLINE = "decline"
    DONE = "done"


class TaskAnswer(BaseModel):
    """A city system's answer to one of its tasks (``docs/schemas/mqtt/task-update.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str = Field(min_length=1)
    answer: Answer
    reason: str | None = None

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed city topic."""

    jurisdiction: str
    kind: str


def topic(jurisdiction: str, kind: str) -> str:
    return mqtt_topic(jurisdiction, kind)


def parse_topic(name: str) -> Address | None:
    """``liandong/v1/{code}/{kind}`` -> Address; anything else -> None."""
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX) :].split("/")
    if len(parts) != 2 or not parts[0] or parts[1] not in MQTT_KINDS:
        return None
    return Address(parts[0], parts[1])


def incident_order_key(jurisdiction: str, payload: bytes) -> tuple[str, str]:
    """The incident's identifier, and the key that orders it: messages of one incident thread
    must reach the hub in order (an Update after its Alert), and a thread is named by the first
    message the incident ``references``, or by the incident's own identifier. An unreadable
    payload orders by jurisdiction (the hub will refuse it)."""
    try:
        message: Any = orjson.loads(payload)
        identifier = str(message["identifier"])
        references = message.get("references")
        if isinstance(references, str) and references.split():
            first = references.split()[0].split(",")
            if len(first) >= 2:
                return identifier, f"{jurisdiction}/{first[1]}"
        return identifier, f"{jurisdiction}/{identifier}"
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        return "?", jurisdiction
