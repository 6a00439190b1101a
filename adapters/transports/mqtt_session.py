"""Staying connected: run a session on MQTT connections, reconnecting with backoff and jitter.

Each connection is a fresh aiomqtt client from :func:`adapters.transports.mqtt.connect` (aiomqtt's
client can be re-entered, but after an unexpected disconnection it reports "connected" before the
CONNACK); the broker-side session (clean start off, a session expiry) carries the subscriptions
and the queued messages across connections.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from adapters.transports.mqtt import ConnectionLost, LastWill, MqttConnection, MqttEndpoint, connect

log = logging.getLogger(__name__)
_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits between (1 - jitter) and 1 times
    ``min(max_s, initial_s * factor ** n)``."""

    initial_s: float = 0.1
    max_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * (rng or _RNG).random())


def connection_lost(exc: BaseException) -> ConnectionLost | None:
    """The :class:`ConnectionLost` behind ``exc`` (itself, or inside an exception group whose
    other members are only cancellations and losses), else None."""
    if isinstance(exc, ConnectionLost):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        found: ConnectionLost | None = None
        for inner in exc.exceptions:
            lost = connection_lost(inner)
            if lost is not None:
                found = found or lost
            elif not isinstance(inner, asyncio.CancelledError):
                return None
        return found
    return None


async def keep_connected(
    endpoint: MqttEndpoint,
    session: Callable[[MqttConnection], Awaitable[None]],
    *,
    will: LastWill | None = None,
    manual_ack: bool = False,
    backoff: Backoff = Backoff(),
    max_attempts: int | None = None,
) -> None:
    """Connect and run ``session(conn)``; when the connection is lost (or cannot be made),
    wait per ``backoff`` and do it again. Returns when ``session`` returns; other errors
    propagate. ``max_attempts`` bounds consecutive failed attempts (None: until cancelled)."""
    rng = random.Random()
    failures = 0
    while True:
        try:
            async with connect(endpoint, will=will, manual_ack=manual_ack) as conn:
                failures = 0
                log.info(
                    "connected to %s (session present: %s)",
                    endpoint.describe(),
                    conn.session_present,
                )
                await session(conn)
            return
        except Exception as exc:
            lost = connection_lost(exc)
            if lost is None:
                raise
            failures += 1
            if max_attempts is not None and failures >= max_attempts:
                raise lost from exc
            delay = backoff.delay(failures - 1, rng)
            log.warning("%s; reconnecting in %.2f s", lost, delay)
        await asyncio.sleep(delay)
