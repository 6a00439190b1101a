"""The adapter manifest: ``adapter.yaml``, what an adapter is and how it connects.

An adapter is a folder with an ``adapter.yaml`` (this model), an optional mapping file for its
codec, and ``fixtures/`` (native messages and what they must become). The manifest names the
jurisdiction the adapter speaks for, the transport the city system uses (HTTP, Kafka, MQTT) with
its settings, the codec between the city's messages and the canonical ones, where the hub token
comes from, and who owns the adapter. Secrets never appear in it: it names the environment
variables that hold them.

The JSON Schema of this model is committed as ``manifest.schema.json`` beside this file
(``liandong adapter schema`` prints it; a test checks the two agree), so editors and the cities'
own tooling can validate a manifest without Python.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.framework.yamldoc import describe_errors, load_yaml
from hub.bus.kafka_security import ClientSecurity, Mechanism, Protocol, ssl_context
from hub.errors import InvalidInput

__all__ = [
    "MANIFEST_FILE",
    "SCHEMA_PATH",
    "Breaker",
    "CodecSpec",
    "HttpDeliver",
    "HttpListen",
    "HttpTransport",
    "HubLink",
    "KafkaSecurity",
    "KafkaTopics",
    "KafkaTransport",
    "Manifest",
    "MqttBroker",
    "MqttTransport",
    "Owner",
    "Retry",
    "load_manifest",
    "schema_text",
]

log = logging.getLogger(__name__)

MANIFEST_FILE = "adapter.yaml"
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
SCHEMA_ID = "https://liandong.invalid/schemas/adapter-manifest-1.json"

EnvName = Annotated[
    str,
    Field(
        pattern=r"^[A-Z][A-Z0-9_]*$",
        description="name of an environment variable (the secret itself never goes here)",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Owner(_Strict):
    """Who answers for the adapter: the city's integrator and the hub's maintainer."""

    name: str = Field(min_length=1)
    contact: str = Field(min_length=3, description="e-mail address or phone of the owner")
    role: str | None = None


class HubLink(_Strict):
    """How the adapter reaches the hub. The URL is deployment data: ``--hub`` or
    ``LIANDONG_HUB_URL`` override it."""

    url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/]+(/\S*)?$")
    token_env: EnvName = Field(
        description="variable holding this adapter's hub token (`liandong adapters add`)"
    )


class CodecSpec(_Strict):
    """How native messages become canonical ones and tasks become native messages."""

    kind: Literal["cap", "edxl-de", "dialect", "canonical-json"] = Field(
        description="cap: CAP 1.2 XML; edxl-de: CAP inside an EDXL-DE 2.0 envelope; dialect: "
        "the city's own JSON, mapped by `mapping`; canonical-json: the hub's own JSON"
    )
    mapping: str | None = Field(
        default=None, description="mapping file, relative to the adapter folder (dialect)"
    )
    task_sender: str = Field(
        default="liandong",
        pattern=r"^[^\s,&<]+$",
        description="CAP `sender` of the task messages the hub sends (cap, edxl-de)",
    )
    edxl_version: Literal["1.0", "2.0"] = Field(
        default="2.0", description="EDXL-DE version of the envelopes sent (edxl-de)"
    )
    trusted_certificates: list[str] = Field(
        default_factory=list,
        description="PEM files (inside the adapter folder) of the CAs or signing certificates "
        "the city signs its CAP with (cap). When given, every CAP message must carry an "
        "enveloped XML Signature by one of them over the whole alert, or it is refused",
    )

    @field_validator("mapping")
    @classmethod
    def _inside_folder(cls, value: str | None) -> str | None:
        if value is not None:
            _check_inside(value)
        return value

    @field_validator("trusted_certificates")
    @classmethod
    def _certificates_inside_folder(cls, value: list[str]) -> list[str]:
        for item in value:
            _check_inside(item)
        return value

    @model_validator(mode="after")
    def _mapping_when_needed(self) -> CodecSpec:
        if self.kind == "dialect" and not self.mapping:
            raise ValueError("a dialect codec needs `mapping`")
        if self.trusted_certificates and self.kind != "cap":
            raise ValueError("trusted_certificates: signatures are verified on CAP (kind: cap)")
        return self


def _check_inside(value: str) -> None:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError("must be a path inside the adapter folder")


class Retry(_Strict):
    """Exponential backoff with jitter: attempt n waits a random time between
    ``(1 - jitter)`` and 1 times ``min(max_s, initial_s * factor ** n)``."""

    attempts: int = Field(default=5, ge=1, le=100, description="tries per delivery round")
    initial_s: float = Field(default=0.5, gt=0)
    max_s: float = Field(default=30.0, gt=0)
    factor: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.5, ge=0, le=1)


class Breaker(_Strict):
    """Per destination: open after ``failures`` consecutive failures; after ``open_s`` one probe
    goes through (half-open); a failed probe opens it again for twice as long, up to
    ``max_open_s``."""

    failures: int = Field(default=5, ge=1)
    open_s: float = Field(default=30.0, gt=0)
    max_open_s: float = Field(default=300.0, gt=0)


class HttpListen(_Strict):
    """Where the adapter listens for the city's ``POST``s (incidents and answers)."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)


class HttpDeliver(_Strict):
    """The city's endpoint that takes tasks by ``POST``."""

    url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    token_env: EnvName | None = Field(
        default=None, description="variable holding a bearer token for the city's endpoint"
    )
    timeout_s: float = Field(default=10.0, gt=0)
    retry: Retry = Retry()
    breaker: Breaker = Breaker()


class HttpTransport(_Strict):
    kind: Literal["http"]
    listen: HttpListen | None = Field(default=None, description="absent: the city only listens")
    deliver: HttpDeliver | None = Field(default=None, description="absent: no tasks sent")


class KafkaTopics(_Strict):
    """The city's own topics. ``incidents`` and ``answers`` may be the same topic only with a
    codec that tells them apart (cap, edxl-de)."""

    incidents: str | None = None
    answers: str | None = None
    tasks: str | None = None


HostFile = Annotated[
    str,
    Field(
        pattern=r"^/",
        description="absolute path of a PEM file on the adapter's host (a deployment file, "
        "not part of the adapter folder); checked when the adapter starts",
    ),
]


class KafkaSecurity(_Strict):
    """TLS and SASL on the city's cluster. The password is never written here: ``password_env``
    names the environment variable that holds it, read when the adapter starts."""

    protocol: Protocol = Field(
        default="PLAINTEXT",
        description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT (SASL without TLS), SASL_SSL",
    )
    ca_file: HostFile | None = Field(
        default=None,
        description="CA certificates the brokers' certificates must chain to "
        "(absent: the system's trusted CAs) (SSL, SASL_SSL)",
    )
    cert_file: HostFile | None = Field(
        default=None, description="client certificate, for a cluster that requires one"
    )
    key_file: HostFile | None = Field(
        default=None, description="private key of cert_file (absent: it is in cert_file)"
    )
    check_hostname: bool = Field(
        default=True,
        description="the broker's certificate must name the host connected to (the chain is "
        "verified either way)",
    )
    sasl_mechanism: Mechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_*)"
    )
    username: str | None = Field(default=None, min_length=1, description="SASL user (SASL_*)")
    password_env: EnvName | None = Field(
        default=None, description="variable holding the SASL user's password (SASL_*)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        sasl = self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        tls = self.protocol in ("SSL", "SASL_SSL")
        if sasl:
            for name in ("sasl_mechanism", "username", "password_env"):
                if getattr(self, name) is None:
                    raise ValueError(f"security.{name} is required with protocol {self.protocol}")
        else:
            for name in ("sasl_mechanism", "username", "password_env"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"security.{name}: SASL settings need protocol SASL_SSL or "
                        f"SASL_PLAINTEXT, not {self.protocol}"
                    )
        if not tls:
            for name in ("ca_file", "cert_file", "key_file"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"security.{name}: TLS settings need protocol SSL or SASL_SSL, "
                        f"not {self.protocol}"
                    )
            if not self.check_hostname:
                raise ValueError(
                    f"security.check_hostname: TLS settings need protocol SSL or SASL_SSL, "
                    f"not {self.protocol}"
                )
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("security.key_file: needs cert_file (the certificate it belongs to)")
        return self

    def resolve(self, env: Mapping[str, str] | None = None) -> ClientSecurity:
        """The client settings, with the password read from ``password_env`` and the files
        tried. ``InvalidInput`` names the setting: an unset variable, a missing file."""
        env = os.environ if env is None else env
        password = None
        if self.password_env is not None:
            password = env.get(self.password_env, "")
            if not password:
                raise InvalidInput(
                    f"transport.security.password_env: environment variable {self.password_env}"
                    f" is not set: it holds the password of Kafka user '{self.username}'"
                )
        if self.protocol == "SASL_PLAINTEXT" and self.sasl_mechanism == "PLAIN":
            log.warning("Kafka SASL PLAIN without TLS: the password crosses the network in clear")
        security = ClientSecurity(
            protocol=self.protocol,
            ca_file=None if self.ca_file is None else Path(self.ca_file),
            cert_file=None if self.cert_file is None else Path(self.cert_file),
            key_file=None if self.key_file is None else Path(self.key_file),
            check_hostname=self.check_hostname,
            sasl_mechanism=self.sasl_mechanism,
            username=self.username,
            password=password,
        )
        if security.uses_tls:
            try:
                ssl_context(security)
            except InvalidInput as exc:
                raise InvalidInput(f"transport.security.{exc}") from None
        return security


class KafkaTransport(_Strict):
    kind: Literal["kafka"]
    bootstrap: str = Field(pattern=r"^[^\s,]+:\d+(,[^\s,]+:\d+)*$")
    group: str = Field(min_length=1, description="consumer group on the city's cluster")
    topics: KafkaTopics
    client_options: dict[
        Literal["fetch_max_wait_ms", "linger_ms", "session_timeout_ms", "heartbeat_interval_ms"],
        int,
    ] = Field(default_factory=dict, description="aiokafka settings that suit the city's cluster")
    security: KafkaSecurity | None = Field(
        default=None, description="TLS and SASL (absent: PLAINTEXT, no authentication)"
    )


class MqttBroker(_Strict):
    host: str
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(min_length=1)
    username: str | None = None
    password_env: EnvName | None = None


class MqttTransport(_Strict):
    """The MQTT link (``adapters/links/``): canonical JSON, or the city's JSON dialect, on
    ``liandong/v1/{code}/...``."""

    kind: Literal["mqtt"]
    broker: MqttBroker
    resend_interval_s: float = Field(default=30.0, gt=0)


Transport = Annotated[HttpTransport | KafkaTransport | MqttTransport, Field(discriminator="kind")]


class TaskPolling(_Strict):
    poll_interval_s: float = Field(default=1.0, gt=0, description="how often the hub is asked")
    live_only: bool = Field(
        default=False, description="a live-operations endpoint: exercise tasks are never sent"
    )


class Manifest(_Strict):
    """One adapter: a city command system connected to the hub."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "$id": SCHEMA_ID,
            "$schema": "https://json-schema.org/draft/2020-12/schema",
        },
    )

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="unique adapter id")
    name: str = Field(min_length=1, description="human name, e.g. 上海市应急联动 CAP 接口")
    description: str | None = None
    jurisdiction: str = Field(
        pattern=r"^\d{6}$", description="GB/T 2260 code the adapter speaks for (quoted)"
    )
    transport: Transport
    codec: CodecSpec
    hub: HubLink
    owners: list[Owner] = Field(min_length=1)
    fixtures: str = Field(default="fixtures", description="folder of fixtures, with cases.yaml")
    tasks: TaskPolling = TaskPolling()

    @model_validator(mode="after")
    def _transport_fits_codec(self) -> Manifest:
        mqtt_kinds = ("canonical-json", "dialect")
        if isinstance(self.transport, MqttTransport) and self.codec.kind not in mqtt_kinds:
            raise ValueError(
                "the MQTT link carries JSON: codec.kind canonical-json or dialect (the city's own)"
            )
        if isinstance(self.transport, KafkaTransport):
            topics = self.transport.topics
            same = topics.incidents is not None and topics.incidents == topics.answers
            if same and self.codec.kind not in ("cap", "edxl-de"):
                raise ValueError(
                    "transport.topics: incidents and answers share a topic, which only a CAP "
                    "codec can tell apart (msgType Ack/Error)"
                )
        return self


def load_manifest(path: Path) -> Manifest:
    """Read and validate an ``adapter.yaml``; ``InvalidInput`` names the file, line and field."""
    document, lines = load_yaml(path)
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: an adapter manifest is a YAML mapping")
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(describe_errors(path, exc, lines)) from None


def schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``adapter.yaml``."""
    return Manifest.model_json_schema()


def schema_text() -> str:
    """The schema as committed in ``manifest.schema.json`` (sorted keys, 2-space indent)."""
    data = orjson.dumps(schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return data.decode() + "\n"
