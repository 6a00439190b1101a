"""Pointing a city's adapter at its simulated city system, and making that system's transport.

The simulator runs every adapter of the scenario itself (in its own process, as ``liandong
adapter run`` would), from the adapter's own manifest and codec, with only where-to-connect
changed: an HTTP adapter listens on a free local port and delivers tasks to the simulated
city's endpoint (with a bearer token made for the run, which the endpoint checks); an MQTT
adapter's link and the simulated city meet on the given broker (the link as ``liandong-link``,
the city as its GB/T 2260 code); a Kafka adapter's bridge and the simulated city meet on the
given cluster, on the manifest's own topic names.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from adapters.framework.manifest import (
    HttpTransport,
    KafkaTransport,
    Manifest,
    MqttTransport,
    TaskPolling,
)
from adapters.simulator.city_http import HttpCity
from adapters.simulator.city_kafka import KafkaCity
from adapters.simulator.city_mqtt import MqttCity
from adapters.transports.kafka_city import KafkaOptions
from adapters.transports.mqtt import MqttEndpoint

__all__ = ["KafkaPlace", "MqttPlace", "Wired", "kafka_options", "wire"]

LINK_USER = "liandong-link"
LINK_PASSWORD_ENV = "SIMULATED_LINK_MQTT_PASSWORD"  # when the manifest names none
Receive = Callable[[bytes], Awaitable[bool]]
KAFKA_OPTION_KEYS = (
    "fetch_max_wait_ms",
    "linger_ms",
    "session_timeout_ms",
    "heartbeat_interval_ms",
)


@dataclass(frozen=True)
class MqttPlace:
    """The broker where MQTT adapters' links and the simulated cities meet."""

    host: str
    port: int
    link_password: str | None = field(default=None, repr=False)
    city_passwords: Mapping[str, str] = field(default_factory=dict, repr=False)  # code -> pw
    link_user: str = LINK_USER


@dataclass(frozen=True)
class KafkaPlace:
    """The cluster that stands for a Kafka city's own."""

    bootstrap: str
    client_options: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Wired:
    """An adapter's manifest pointed at its simulated city, the secrets its runner reads from
    the environment, and the city's transport (not started yet, except an HTTP endpoint)."""

    manifest: Manifest
    env: dict[str, str]
    city: HttpCity | MqttCity | KafkaCity


def kafka_options(options: Mapping[str, int]) -> KafkaOptions:
    return KafkaOptions(**{k: v for k, v in options.items() if k in KAFKA_OPTION_KEYS})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wire(
    manifest: Manifest,
    *,
    hub_token: str,
    content_type: str,
    receive: Receive,
    mqtt: MqttPlace | None,
    kafka: KafkaPlace | None,
    poll_interval_s: float | None,
) -> Wired:
    """The adapter and its simulated city, connected to each other. ``ValueError`` when the
    transport the manifest names has no place given (no broker, no cluster)."""
    transport = manifest.transport
    env: dict[str, str] = {}
    city: HttpCity | MqttCity | KafkaCity
    if isinstance(transport, HttpTransport):
        transport, city = await _http(transport, hub_token, content_type, receive, env)
    elif isinstance(transport, MqttTransport):
        if mqtt is None:
            raise ValueError("it speaks MQTT and no broker was given (--mqtt)")
        transport, city = _mqtt(transport, manifest.jurisdiction, content_type, mqtt, env)
    else:
        if kafka is None:
            raise ValueError("it runs its own Kafka and no cluster was given (--kafka)")
        transport, city = _kafka(transport, manifest.id, kafka)
    update: dict[str, object] = {"transport": transport}
    if poll_interval_s is not None:
        update["tasks"] = TaskPolling(poll_interval_s=poll_interval_s)
    return Wired(manifest.model_copy(update=update), env, city)


async def _http(
    transport: HttpTransport,
    hub_token: str,
    content_type: str,
    receive: Receive,
    env: dict[str, str],
) -> tuple[HttpTransport, HttpCity]:
    port = _free_port()
    deliver = transport.deliver
    tasks_token = None
    if deliver is not None and deliver.token_env:
        tasks_token = secrets.token_urlsafe(24)
        env[deliver.token_env] = tasks_token
    city = HttpCity(f"http://127.0.0.1:{port}", hub_token, content_type, tasks_token=tasks_token)
    listen = transport.listen
    update: dict[str, object] = {}
    if listen is not None:
        update["listen"] = listen.model_copy(update={"host": "127.0.0.1", "port": port})
    if deliver is not None:
        url = await city.start(receive)
        update["deliver"] = deliver.model_copy(update={"url": url})
    return transport.model_copy(update=update), city


def _mqtt(
    transport: MqttTransport,
    jurisdiction: str,
    content_type: str,
    place: MqttPlace,
    env: dict[str, str],
) -> tuple[MqttTransport, MqttCity]:
    broker = transport.broker
    password_env = broker.password_env  # without a password given: the runner's environment
    if place.link_password:
        password_env = broker.password_env or LINK_PASSWORD_ENV
        env[password_env] = place.link_password
    broker = broker.model_copy(
        update={
            "host": place.host,
            "port": place.port,
            "username": place.link_user,
            "password_env": password_env,
        }
    )
    endpoint = MqttEndpoint(
        host=place.host,
        port=place.port,
        client_id=f"sim-city-{jurisdiction}",
        username=jurisdiction,
        password=place.city_passwords.get(jurisdiction),
    )
    return transport.model_copy(update={"broker": broker}), MqttCity(
        endpoint, jurisdiction, content_type
    )


def _kafka(
    transport: KafkaTransport, adapter_id: str, place: KafkaPlace
) -> tuple[KafkaTransport, KafkaCity]:
    options = {k: v for k, v in place.client_options.items() if k in KAFKA_OPTION_KEYS}
    updated = transport.model_copy(update={"bootstrap": place.bootstrap, "client_options": options})
    city = KafkaCity(
        place.bootstrap,
        transport.topics,
        group=f"sim-city-{adapter_id}",
        client_id=f"sim-city-{adapter_id}",
        options=kafka_options(place.client_options),
    )
    return updated, city
