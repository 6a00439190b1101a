"""Up: a city's native message → codec → the hub's API, with the adapter's token.

:class:`Upstream` is shared by every inbound transport (the HTTP listener, the Kafka bridge).
It decodes a message, sends an incident to ``POST /api/v1/incidents`` (canonical JSON) or an
answer to ``POST /api/v1/tasks/{id}/{answer}``, and retries while the hub is unreachable or
busy. What it returns tells the transport whether the message is settled (taken, or refused for
good: acknowledge it to the city, commit it) or must stay with the city to come again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from adapters.framework.breaker import backoff_delay
from adapters.framework.codec import Channel, Codec, canonical_bytes
from adapters.framework.manifest import Retry
from adapters.links.hub_api import HubApi, Outcome
from adapters.links.mqtt_protocol import TaskAnswer
from adapters.links.unreadable import unreadable_report
from hub.errors import InvalidInput

log = logging.getLogger(__name__)

__all__ = ["Result", "Upstream"]

HUB_RETRY = Retry(attempts=100, initial_s=0.2, max_s=5.0)
UNREADABLE_PATIENCE_S = 10.0


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one message from the city."""

    kind: str  # "incident", "answer", or "unreadable"
    key: str  # the incident's sender,identifier or the task id ("" when unreadable)
    status: int | None  # the hub's HTTP status (422 for what the codec refused; None: no answer)
    detail: str
    settled: bool  # True: taken or refused for good; False: try again later
    body: bytes = b""  # the hub's answer

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Upstream:
    """Sends decoded city messages to the hub for one adapter (one jurisdiction)."""

    def __init__(self, api: HubApi, token: str, codec: Codec, *, retry: Retry = HUB_RETRY) -> None:
        self.api = api
        self.codec = codec
        self._token = token
        self._retry = retry
        self._rng = random.Random()
        self.stats: Counter[str] = Counter()

    async def forward(
        self, raw: bytes, channel: Channel, *, patience_s: float | None = None
    ) -> Result:
        """Decode and send one message. Retries while the hub cannot answer, for at most
        ``patience_s`` (None: until it answers)."""
        try:
            message = self.codec.decode(raw, channel)
        except InvalidInput as exc:
            self.stats["unreadable"] += 1
            log.warning("refused a message on %s: %s", channel, exc)
            await self._keep_unreadable(raw, channel, str(exc))
            return Result("unreadable", "", 422, str(exc), settled=True)
        except Exception as exc:  # a codec bug must not turn one message into a crash loop
            self.stats["unreadable"] += 1
            log.exception("the %s codec failed on a message on %s", self.codec.kind, channel)
            await self._keep_unreadable(raw, channel, f"the codec failed: {exc!r}")
            return Result("unreadable", "", 422, f"the codec failed: {exc!r}", settled=True)
        if isinstance(message, TaskAnswer):
            kind, key = "answer", message.task
            body = message

            async def call() -> Outcome:
                return await self.api.answer_task(self._token, body)

        else:
            kind, key = "incident", message.key
            payload = canonical_bytes(message)

            async def call() -> Outcome:
                return await self.api.report_incident(self._token, payload)

        outcome = await self._patiently(call, f"{kind} {key}", patience_s)
        settled = not outcome.retry
        fate = "forwarded" if outcome.ok else "refused" if settled else "held"
        self.stats[f"{kind}s_{fate}"] += 1
        if settled and not outcome.ok:
            log.warning("hub refused %s %s: %s %s", kind, key, outcome.status, outcome.detail())
        return Result(kind, key, outcome.status, outcome.detail(), settled, outcome.body)

    async def _keep_unreadable(self, raw: bytes, channel: Channel, reason: str) -> None:
        """Hand what the codec refused to the hub's dead-letter store (a few tries; the
        message is settled either way, so a hub that stays away costs a log line)."""
        media_type = getattr(self.codec, "content_type", None)
        report = unreadable_report(channel, self.codec.kind, media_type, raw, reason)

        async def call() -> Outcome:
            return await self.api.report_unreadable(self._token, report)

        outcome = await self._patiently(call, "unreadable message", UNREADABLE_PATIENCE_S)
        if outcome.ok:
            self.stats["unreadable_kept"] += 1
        else:
            log.warning("could not hand an unreadable message to the hub: %s", outcome.detail())

    async def _patiently(
        self, call: Callable[[], Awaitable[Outcome]], what: str, patience_s: float | None
    ) -> Outcome:
        deadline = None if patience_s is None else time.monotonic() + patience_s
        attempt = 0
        while True:
            outcome = await call()
            if not outcome.retry:
                return outcome
            self.stats["hub_retries"] += 1
            delay = backoff_delay(self._retry, attempt, self._rng)
            attempt += 1
            if deadline is not None and time.monotonic() + delay > deadline:
                return outcome
            log.info(
                "hub did not take %s (%s %s); again in %.2f s",
                what,
                outcome.status,
                outcome.detail(),
                delay,
            )
            await asyncio.sleep(delay)
