"""Down by HTTP: a task → the codec → ``POST`` to the city's endpoint.

Each delivery is tried up to ``retry.attempts`` times with exponential backoff and jitter
(a ``Retry-After`` from the city is honoured, up to ``retry.max_s``), through the circuit
breaker of its destination (scheme, host and port): while the breaker is open nothing is sent
and the delivery waits; when it is half-open one request probes the city.

What counts: any 2xx means the city has the task (an application-level acknowledgement, not a
broker's). 408, 425, 429, 5xx, a timeout or a broken connection is a failure of the destination
(counted by the breaker, tried again). Any other 4xx means the city refused this message: it
is not retried now (the feed tries it again much later, in case the city's side was fixed).

Delivery is at-least-once: a request whose answer was lost is sent again, so the city must
deduplicate. Every request carries ``Idempotency-Key``: the task id (for its cancellation,
``{task id}.cancelled``), and ``Liandong-Task`` / ``Liandong-Task-State``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from adapters.framework.breaker import BreakerState, CircuitBreaker, Transition, backoff_delay
from adapters.framework.codec import Codec
from adapters.framework.manifest import HttpDeliver
from adapters.framework.task_feed import Delivery, message_key

log = logging.getLogger(__name__)

__all__ = ["Breakers", "HttpDelivery", "destination"]

RETRY_STATUSES = frozenset({408, 425, 429})


def destination(url: str) -> str:
    """The breaker's key for a URL: ``scheme://host:port``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


class Breakers:
    """One circuit breaker per destination, shared by every adapter of a process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_destination: dict[str, CircuitBreaker] = {}

    def get(self, url: str, settings: HttpDeliver) -> CircuitBreaker:
        key = destination(url)
        breaker = self._by_destination.get(key)
        if breaker is None:

            def changed(change: Transition) -> None:
                level = logging.INFO if change.after is BreakerState.CLOSED else logging.WARNING
                log.log(
                    level,
                    "circuit to %s: %s -> %s after %d consecutive failures",
                    key,
                    change.before,
                    change.after,
                    change.failures,
                )

            breaker = CircuitBreaker(settings.breaker, clock=self._clock, on_change=changed)
            self._by_destination[key] = breaker
        return breaker


class HttpDelivery:
    """Sends tasks to one city endpoint by ``POST``."""

    def __init__(
        self,
        settings: HttpDeliver,
        codec: Codec,
        *,
        adapter_id: str,
        token: str | None = None,
        breakers: Breakers | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.breaker = (breakers or Breakers()).get(settings.url, settings)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._headers = {
            "Content-Type": codec.content_type,
            "User-Agent": f"liandong-adapter/{adapter_id}",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(timeout=settings.timeout_s, follow_redirects=False)
        self.requests = 0  # requests sent, for logs and tests

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(self, task: dict[str, Any]) -> Delivery:
        """One delivery round for ``task`` (the breaker may make it wait)."""
        body = self.codec.encode_task(task)
        headers = {
            **self._headers,
            "Idempotency-Key": message_key(task),
            "Liandong-Task": str(task["id"]),
            "Liandong-Task-State": str(task.get("state", "issued")),
        }
        retry = self.settings.retry
        status: int | None = None
        detail = ""
        for attempt in range(retry.attempts):
            await self._wait_for_breaker()
            status, detail, retry_after = await self._post(body, headers)
            if status is not None and 200 <= status < 300:
                self.breaker.record_success()
                return Delivery(True, status, detail, attempt + 1)
            if status is not None and 400 <= status < 500 and status not in RETRY_STATUSES:
                self.breaker.record_success()  # the endpoint works; it refuses this message
                return Delivery(False, status, detail, attempt + 1, refused=True)
            self.breaker.record_failure()
            if attempt + 1 < retry.attempts:
                delay = backoff_delay(retry, attempt, self._rng)
                if retry_after is not None:
                    delay = min(max(delay, retry_after), retry.max_s)
                log.info(
                    "task %s to %s: %s; again in %.2f s",
                    task["id"],
                    self.settings.url,
                    status or detail,
                    delay,
                )
                await self._sleep(delay)
        return Delivery(False, status, detail, retry.attempts)

    async def _wait_for_breaker(self) -> None:
        while not self.breaker.allow():
            wait = self.breaker.retry_after()
            if self.breaker.state is BreakerState.OPEN:
                log.debug("circuit to %s open; waiting %.2f s", self.settings.url, wait)
            await self._sleep(max(wait, 0.01))

    async def _post(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str, float | None]:
        self.requests += 1
        try:
            response = await self._client.post(self.settings.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return None, detail, None
        retry_after = None
        header = response.headers.get("retry-after", "")
        if header.isdigit():
            retry_after = float(header)
        return response.status_code, response.text[:300], retry_after
