"""Running one adapter: its transport in, its codec, the hub's API, its transport out.

``AdapterRunner`` builds what the manifest describes and runs it until cancelled:

- ``http``: the :class:`Listener` where the city posts incidents and answers (→ codec → hub),
  and a :class:`TaskFeed` that posts the hub's tasks to the city's endpoint through
  :class:`HttpDelivery` (retry, backoff, circuit breaker);
- ``kafka``: the :class:`KafkaBridge` on the city's own cluster (both directions);
- ``mqtt``: the MQTT link (``adapters/links/``) for this one jurisdiction, carrying the
  codec's payloads (canonical JSON, or the city's JSON dialect).

A city's adapter receives the tasks of the city and of each of its districts
(:func:`task_targets`).

The runner talks to the hub only through its HTTP API, so an adapter runs the same in its own
process (``liandong adapter run ID``) or beside others in one process (:func:`run_adapters`).
The hub URL comes from ``--hub``, else ``LIANDONG_HUB_URL``, else the manifest; the hub token
from the environment variable the manifest names (``hub.token_env``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapters.framework.codec import Codec, load_codec
from adapters.framework.discovery import Found
from adapters.framework.http_in import Listener
from adapters.framework.http_out import Breakers, HttpDelivery
from adapters.framework.kafka_bridge import KafkaBridge, KafkaSink
from adapters.framework.manifest import HttpTransport, KafkaTransport, Manifest, MqttTransport
from adapters.framework.task_feed import TaskFeed
from adapters.framework.upstream import Upstream
from adapters.links.hub_api import HubApi
from adapters.transports.kafka_city import CityKafka, KafkaOptions
from hub.errors import InvalidInput
from hub.model.region import is_city_code

log = logging.getLogger(__name__)

__all__ = [
    "HUB_URL_ENV",
    "AdapterRunner",
    "HubAccess",
    "hub_access",
    "run_adapters",
    "task_targets",
]

HUB_URL_ENV = "LIANDONG_HUB_URL"
JOIN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class HubAccess:
    """Where the hub is and the adapter's token for it."""

    url: str
    token: str


def _secret(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise InvalidInput(f"environment variable {name} is not set: it holds {what}")
    return value


def hub_access(
    manifest: Manifest,
    *,
    url: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
) -> HubAccess:
    """The hub URL (argument, ``LIANDONG_HUB_URL``, manifest) and token (argument, or the
    variable ``hub.token_env``)."""
    env = os.environ if env is None else env
    chosen = url or env.get(HUB_URL_ENV, "").strip() or manifest.hub.url
    if token is None:
        what = (
            f"the hub token of adapter '{manifest.id}' (liandong adapters add --jurisdiction "
            f"{manifest.jurisdiction} --name {manifest.id})"
        )
        token = _secret(env, manifest.hub.token_env, what)
    return HubAccess(chosen.rstrip("/"), token)


def task_targets(jurisdiction: str) -> tuple[str, ...]:
    """Whose tasks an adapter receives: its jurisdiction and, for a city's command centre, each
    district of the city, since a city credential answers for them
    (``hub.model.region.speaks_for``) and playbooks address tasks to districts."""
    if not is_city_code(jurisdiction):
        return (jurisdiction,)
    from hub.region import load_region  # boundaries and shapely: only for a city adapter

    region = load_region()
    if not region.is_known(jurisdiction):
        return (jurisdiction,)
    return (jurisdiction, *(c for c in region.districts_of(jurisdiction) if c != jurisdiction))


class AdapterRunner:
    """One adapter, running."""

    def __init__(
        self,
        found: Found,
        access: HubAccess,
        *,
        env: Mapping[str, str] | None = None,
        breakers: Breakers | None = None,
        codec: Codec | None = None,
    ) -> None:
        if found.manifest is None:
            raise InvalidInput(found.error or f"{found.manifest_path}: does not load")
        self.manifest = found.manifest
        self.folder = found.folder
        self.access = access
        self.codec = codec or load_codec(self.manifest.codec, found.folder)
        self.api = HubApi(access.url)
        self.upstream = Upstream(self.api, access.token, self.codec)
        self.ready = asyncio.Event()
        self.listener: Listener | None = None
        self.delivery: HttpDelivery | None = None
        self.feed: TaskFeed | None = None
        self.bridge: KafkaBridge | None = None
        self._link_stats: Counter[str] | None = None  # the MQTT link's, while it runs
        self._breakers = breakers or Breakers()
        # Secrets are read now, so a missing one stops the adapter before anything starts.
        self._city_secret: str | None = None
        transport, env = self.manifest.transport, os.environ if env is None else env
        if (
            isinstance(transport, HttpTransport)
            and transport.deliver
            and transport.deliver.token_env
        ):
            what = "the bearer token of the city's task endpoint"
            self._city_secret = _secret(env, transport.deliver.token_env, what)
        if isinstance(transport, MqttTransport) and transport.broker.password_env:
            what = "the MQTT broker password"
            self._city_secret = _secret(env, transport.broker.password_env, what)

    @property
    def stats(self) -> Counter[str]:
        """Counts of what went up and down so far."""
        total: Counter[str] = Counter(self.upstream.stats)
        total.update(self._link_stats or {})
        for part in (self.feed, self.bridge):
            if part is not None:
                total.update(part.stats)
        return total

    def _feed(self, sink: HttpDelivery | KafkaSink) -> TaskFeed:
        return TaskFeed(
            self.api,
            self.access.token,
            self.manifest.jurisdiction,
            sink,
            poll_interval_s=self.manifest.tasks.poll_interval_s,
            targets=task_targets(self.manifest.jurisdiction),
            live_only=self.manifest.tasks.live_only,
        )

    async def run(self) -> None:
        """Until cancelled; everything it opened is closed on the way out."""
        transport = self.manifest.transport
        log.info(
            "adapter %s (%s) for %s: %s to %s",
            self.manifest.id,
            self.codec.kind,
            self.manifest.jurisdiction,
            transport.kind,
            self.access.url,
        )
        try:
            if isinstance(transport, HttpTransport):
                await self._run_http(transport)
            elif isinstance(transport, KafkaTransport):
                await self._run_kafka(transport)
            else:
                await self._run_mqtt(transport)
        finally:
            self.ready.clear()
            if self.delivery is not None:
                await self.delivery.aclose()
            await self.api.aclose()

    async def _run_http(self, transport: HttpTransport) -> None:
        async with asyncio.TaskGroup() as group:
            if transport.listen is not None:
                self.listener = Listener(transport.listen, self.upstream, self.access.token)
                group.create_task(self.listener.serve())
            if transport.deliver is not None:
                self.delivery = HttpDelivery(
                    transport.deliver,
                    self.codec,
                    adapter_id=self.manifest.id,
                    token=self._city_secret,
                    breakers=self._breakers,
                )
                self.feed = self._feed(self.delivery)
                group.create_task(self.feed.run())
            # uvicorn has no event for "listening": look at its flag.
            while self.listener is not None and not self.listener.started:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            self.ready.set()

    async def _run_kafka(self, transport: KafkaTransport) -> None:
        topics = transport.topics
        reads = sorted({t for t in (topics.incidents, topics.answers) if t})
        city = CityKafka(
            transport.bootstrap,
            group=transport.group,
            topics=reads,
            client_id=f"liandong-adapter-{self.manifest.id}",
            options=KafkaOptions(**transport.client_options),
        )
        if topics.tasks:
            self.feed = self._feed(KafkaSink(city, topics.tasks, self.codec))
        self.bridge = KafkaBridge(transport, city, self.upstream, self.feed)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.bridge.run())
            try:
                await city.wait_assigned(JOIN_TIMEOUT_S)
            except TimeoutError:
                log.warning("adapter %s: no partitions assigned yet", self.manifest.id)
            self.ready.set()

    async def _run_mqtt(self, transport: MqttTransport) -> None:
        from adapters.links.link_config import LinkConfig
        from adapters.links.mqtt_link import MqttLink
        from adapters.transports.mqtt import MqttEndpoint

        broker = transport.broker
        link = MqttLink(
            LinkConfig(
                broker=MqttEndpoint(
                    host=broker.host,
                    port=broker.port,
                    client_id=broker.client_id,
                    username=broker.username,
                    password=self._city_secret,
                ),
                hub_url=self.access.url,
                tokens={self.manifest.jurisdiction: self.access.token},
                resend_interval_s=transport.resend_interval_s,
                poll_interval_s=self.manifest.tasks.poll_interval_s,
                covers={self.manifest.jurisdiction: task_targets(self.manifest.jurisdiction)},
                codec=None if self.codec.kind == "canonical-json" else self.codec,
                live_only=self.manifest.tasks.live_only,
            )
        )
        self._link_stats = link.stats
        async with asyncio.TaskGroup() as group:
            group.create_task(link.run())
            await link.connected.wait()
            self.ready.set()


async def run_adapters(runners: Sequence[AdapterRunner]) -> None:
    """Several adapters in one process, until cancelled (or one of them fails)."""
    async with asyncio.TaskGroup() as group:
        for runner in runners:
            group.create_task(runner.run())
