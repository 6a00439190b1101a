"""What configures an MQTT link, and what it reports of each message it forwarded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from adapters.links.mqtt_protocol import TaskAnswer
from adapters.transports.mqtt import MqttEndpoint
from adapters.transports.mqtt_session import Backoff
from hub.model.incident import Incident


class PayloadCodec(Protocol):
    """A city's own payloads (``adapters.framework.codec.Codec``)."""

    kind: str
    content_type: str

    def decode(
        self, raw: bytes, channel: Literal["incidents", "answers", "any"]
    ) -> Incident | TaskAnswer: ...

    def encode_task(self, task: dict[str, Any]) -> bytes: ...


@dataclass(frozen=True)
class LinkConfig:
    broker: MqttEndpoint
    hub_url: str
    tokens: Mapping[str, str] = field(repr=False)  # jurisdiction code -> hub adapter token
    resend_interval_s: float = 30.0
    poll_interval_s: float = 1.0
    broker_log: Path | None = None
    lanes: int = 16
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.2, max_s=10.0))
    http_timeout_s: float = 10.0
    refusal_attempts: int = 5
    codec: PayloadCodec | None = None  # None: canonical JSON
    covers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # code -> task targets
    live_only: bool = False  # the cities take live tasks only: exercise tasks are never sent


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What the hub answered to one message a city sent (for tracing and benchmarks)."""

    kind: str  # "incidents" or "task-updates"
    jurisdiction: str
    key: str  # the incident's identifier, or the task id
    status: int | None
    at_ns: int  # wall clock (time.time_ns) when the hub's answer came
    hub_ns: int  # how long the hub took to answer (retries included)
