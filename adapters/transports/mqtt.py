"""MQTT 5 transport: a small typed wrapper around aiomqtt (paho-mqtt underneath).

What every Liandong MQTT client gets from :func:`connect`:

- **MQTT 5** (a 3.1.1 client gets a silent "success" for a publish the broker's ACL denied).
- **A persistent session**: ``clean_start=False`` and a Session Expiry Interval, so the broker
  keeps the subscriptions and queues QoS 1 messages while the client is away.
- **TCP_NODELAY** on the socket (Nagle's algorithm costs ~40 ms per hop on loopback).
- **A last will**, e.g. a retained ``offline`` status.
- **Publishes that surface a refusal**: aiomqtt 2.5 completes ``publish()`` on any PUBACK and
  drops its reason code, so :meth:`MqttConnection.publish` hooks paho's ``on_publish`` (which
  does receive it) and raises :class:`PublishRefused` for a reason code >= 0x80 (135: Not
  authorized) naming the topic and the code.
- **Manual acknowledgement** (optional): aiomqtt 2.5 has no ``manual_ack`` option, but paho 2.x
  has (``manual_ack_set``/``ack``); a :class:`Delivery` is PUBACKed only when the application
  calls :meth:`Delivery.ack`, so a message is redelivered after a crash until it was handled.

``mqtt_session.keep_connected`` runs a session on such connections, reconnecting with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

TCP_NODELAY_OPTION = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
NO_MATCHING_SUBSCRIBERS = 16  # PUBACK 0x10: accepted, but nobody subscribes (not a failure)
NOT_AUTHORIZED = 135  # 0x87


class MqttTransportError(Exception):
    """Base of this module's errors."""


class ConnectionLost(MqttTransportError):
    """Not connected, connection refused, or the connection broke; reconnecting may help."""


class PublishTimeout(ConnectionLost):
    """No PUBACK within the timeout: the connection is treated as broken."""


class PublishRefused(MqttTransportError):
    """The broker answered a QoS >= 1 publish with a failure reason code (>= 0x80)."""

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        super().__init__(
            f"broker refused PUBLISH to '{topic}': reason code {reason_code} ({reason})"
        )
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason


class SubscribeRefused(MqttTransportError):
    """The broker refused a subscription (SUBACK reason code >= 0x80)."""


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where and as whom to connect. ``client_id`` must be stable: it names the session."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    receive_maximum: int = 100  # QoS 1 messages the broker may have in flight to us
    max_inflight: int = 100  # our QoS 1 publishes in flight (paho queues the rest)
    timeout_s: float = 10.0  # CONNACK, SUBACK, PUBACK

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("an MQTT client id is required: it names the persistent session")

    def describe(self) -> str:
        who = f"{self.username}@" if self.username else ""
        return f"mqtt://{who}{self.host}:{self.port} (client id '{self.client_id}')"


@dataclass(frozen=True, slots=True)
class LastWill:
    """Published by the broker when the connection is lost without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Delivery:
    """One received message; with manual acknowledgement, PUBACKed only by :meth:`ack`."""

    __slots__ = ("_acked", "_conn", "_mid", "payload", "qos", "retain", "topic")

    def __init__(self, conn: MqttConnection, message: aiomqtt.Message) -> None:
        self.topic: str = message.topic.value
        payload = message.payload
        self.payload: bytes = payload if isinstance(payload, bytes) else str(payload).encode()
        self.qos: int = message.qos
        self.retain: bool = message.retain
        self._conn = conn
        self._mid = message.mid
        self._acked = False

    def ack(self) -> None:
        """PUBACK on the connection it came from (a no-op if that connection is gone: the
        broker redelivers it on the next connection)."""
        if self._acked:
            return
        self._acked = True
        self._conn._ack(self._mid, self.qos)


class MqttConnection:
    """One live connection: publish (refusals raise), subscribe, receive, acknowledge."""

    def __init__(self, client: aiomqtt.Client, endpoint: MqttEndpoint, manual_ack: bool) -> None:
        self.endpoint = endpoint
        self.session_present = False
        self._client = client
        self._paho: paho.Client = client._client
        self._manual_ack = manual_ack
        self._loop = asyncio.get_running_loop()
        self._waiting: dict[int, asyncio.Future[ReasonCode]] = {}
        self._closed = asyncio.Event()
        self._paho.manual_ack_set(manual_ack)
        # Chain our hooks in front of aiomqtt's own callbacks.
        # (aiomqtt installs paho's version-2 callbacks; paho types them as a union of versions.)
        aiomqtt_on_connect = cast(Callable[..., None] | None, self._paho.on_connect)
        aiomqtt_on_publish = cast(Callable[..., None] | None, self._paho.on_publish)
        aiomqtt_on_disconnect = cast(Callable[..., None] | None, self._paho.on_disconnect)

        def on_connect(c: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            self.session_present = bool(getattr(flags, "session_present", False))
            if aiomqtt_on_connect is not None:
                aiomqtt_on_connect(c, userdata, flags, rc, props)

        def on_publish(c: paho.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
            waiter = self._waiting.pop(mid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(rc)
            if aiomqtt_on_publish is not None:
                aiomqtt_on_publish(c, userdata, mid, rc, props)

        def on_disconnect(c: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            self._mark_closed(f"disconnected ({rc})")
            if aiomqtt_on_disconnect is not None:
                aiomqtt_on_disconnect(c, userdata, flags, rc, props)

        self._paho.on_connect = on_connect
        self._paho.on_publish = on_publish
        self._paho.on_disconnect = on_disconnect

    # -- state ---------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def tcp_nodelay(self) -> bool:
        """Whether TCP_NODELAY is set on this connection's socket."""
        sock = self._paho.socket()
        if not isinstance(sock, socket.socket):
            return False
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def abort(self) -> None:
        """Break the connection without a DISCONNECT, as a network failure would: the broker
        publishes the will. (For tests and drills.)"""
        sock = self._paho.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _attached(self) -> None:
        """Called once connected: also watch aiomqtt's own notion of disconnection."""

        def done(future: asyncio.Future[None]) -> None:
            why = "disconnected"
            if not future.cancelled() and future.exception() is not None:  # marks it retrieved
                why = f"disconnected: {future.exception()}"
            self._mark_closed(why)

        self._client._disconnected.add_done_callback(done)

    def _mark_closed(self, why: str) -> None:
        if not self._closed.is_set():
            self._closed.set()
            log.debug("%s: %s", self.endpoint.describe(), why)
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost(f"{self.endpoint.describe()}: {why}"))

    # -- publish / subscribe / receive -----------------------------------------------------------
    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        content_type: str | None = None,
    ) -> int:
        """Publish and, for QoS >= 1, wait for the PUBACK; returns its reason code (0 success,
        16 no matching subscribers). Raises :class:`PublishRefused` for a code >= 0x80 and
        :class:`ConnectionLost` (or :class:`PublishTimeout`) when no PUBACK came.
        ``content_type`` (e.g. ``application/json``) is sent as the MQTT 5 Content Type with
        the Payload Format Indicator set to UTF-8 text."""
        if self._closed.is_set():
            raise ConnectionLost(f"{self.endpoint.describe()}: not connected")
        properties = _publish_properties(content_type) if content_type else None
        info = self._paho.publish(topic, payload, qos, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise ConnectionLost(f"could not publish to '{topic}': {paho.error_string(info.rc)}")
        if qos == 0:
            return 0
        # The PUBACK is read by the event loop, so it cannot arrive before this line runs.
        waiter: asyncio.Future[ReasonCode] = self._loop.create_future()
        self._waiting[info.mid] = waiter
        try:
            code = await asyncio.wait_for(waiter, self.endpoint.timeout_s)
        except TimeoutError:
            raise PublishTimeout(
                f"no PUBACK for '{topic}' within {self.endpoint.timeout_s} s"
            ) from None
        finally:
            self._waiting.pop(info.mid, None)
        if code.is_failure:
            raise PublishRefused(topic, code.value, code.getName())
        return code.value

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None:
        """Subscribe to every filter; raises :class:`SubscribeRefused` if any is refused."""
        try:
            granted = await self._client.subscribe([(f, qos) for f in filters])
        except aiomqtt.MqttError as exc:
            raise ConnectionLost(f"subscribe failed: {exc}") from exc
        for topic_filter, code in zip(filters, granted, strict=True):
            value: int = code.value if isinstance(code, ReasonCode) else cast(int, code)
            if value >= 0x80:
                raise SubscribeRefused(f"broker refused SUBSCRIBE '{topic_filter}': {code}")

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Received messages, until the connection breaks (then :class:`ConnectionLost`)."""
        try:
            async for message in self._client.messages:
                yield Delivery(self, message)
        except aiomqtt.MqttError as exc:
            self._mark_closed(str(exc))
            raise ConnectionLost(f"{self.endpoint.describe()}: {exc}") from exc

    def _ack(self, mid: int, qos: int) -> None:
        if not self._manual_ack or qos == 0 or self._closed.is_set():
            return
        rc = self._paho.ack(mid, qos)
        if rc != paho.MQTT_ERR_SUCCESS:
            log.debug("PUBACK of message %d not sent: %s", mid, paho.error_string(rc))


@functools.cache
def _publish_properties(content_type: str) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.PayloadFormatIndicator = 1
    props.ContentType = content_type
    return props


def _connect_properties(endpoint: MqttEndpoint) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = endpoint.session_expiry_s
    props.ReceiveMaximum = endpoint.receive_maximum
    return props


@contextlib.asynccontextmanager
async def connect(
    endpoint: MqttEndpoint, *, will: LastWill | None = None, manual_ack: bool = False
) -> AsyncIterator[MqttConnection]:
    """One MQTT 5 connection with a persistent session; a graceful DISCONNECT on exit (the
    will is then not published). Connection failures raise :class:`ConnectionLost`."""
    client = aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=endpoint.client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=_connect_properties(endpoint),
        keepalive=endpoint.keepalive_s,
        will=(
            aiomqtt.Will(will.topic, will.payload, will.qos, will.retain)
            if will is not None
            else None
        ),
        socket_options=[TCP_NODELAY_OPTION],
        max_inflight_messages=endpoint.max_inflight,
        timeout=endpoint.timeout_s,
    )
    conn = MqttConnection(client, endpoint, manual_ack)
    try:
        await client.__aenter__()
    except aiomqtt.MqttError as exc:
        # A refused or timed-out CONNECT can leave paho's socket open (and watched): close it.
        with contextlib.suppress(Exception):
            client._client._sock_close()
        raise ConnectionLost(f"cannot connect to {endpoint.describe()}: {exc}") from exc
    conn._attached()
    try:
        yield conn
    except aiomqtt.MqttError as exc:
        conn._mark_closed(str(exc))
        raise ConnectionLost(f"{endpoint.describe()}: {exc}") from exc
    finally:
        conn._mark_closed("closed")
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
