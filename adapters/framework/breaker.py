"""A circuit breaker for one destination, and the backoff between tries.

A city endpoint that keeps failing should not be hammered by every task the hub issues for it:
after ``failures`` consecutive failures the breaker *opens* and no request goes out for
``open_s``; then it is *half-open*: exactly one probe may go; its success *closes* the breaker,
its failure opens it again for twice as long (up to ``max_open_s``). The breaker takes its time
from a clock function, so its behaviour can be tested without sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from adapters.framework.manifest import Breaker, Retry

__all__ = ["BreakerState", "CircuitBreaker", "Transition", "backoff_delay"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, for logs, metrics and tests."""

    at: float
    before: BreakerState
    after: BreakerState
    failures: int  # consecutive failures when it happened


class CircuitBreaker:
    """Closed → open after N consecutive failures → half-open (one probe) → closed or open."""

    def __init__(
        self,
        settings: Breaker,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[Transition], None] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._open_for = settings.open_s
        self._probing = False
        self.transitions: list[Transition] = []

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose time is up reports half-open)."""
        if self._state is BreakerState.OPEN and self._clock() >= self._opened_at + self._open_for:
            self._move(BreakerState.HALF_OPEN)
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def retry_after(self) -> float:
        """Seconds until a request may go (0 when one may go now)."""
        state = self.state
        if state is BreakerState.OPEN:
            return max(0.0, self._opened_at + self._open_for - self._clock())
        if state is BreakerState.HALF_OPEN and self._probing:
            return min(self._open_for, 1.0)  # the probe's outcome decides; ask again soon
        return 0.0

    def allow(self) -> bool:
        """May a request go now? In half-open state only the first caller gets a yes (the
        probe) until its outcome is recorded."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        if self._state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)
        self._failures = 0
        self._probing = False
        self._open_for = self.settings.open_s

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN:
            self._probing = False
            self._open_for = min(self._open_for * 2, self.settings.max_open_s)
            self._open()
        elif self._state is BreakerState.CLOSED and self._failures >= self.settings.failures:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, after: BreakerState) -> None:
        change = Transition(self._clock(), self._state, after, self._failures)
        self._state = after
        self.transitions.append(change)
        if self._on_change is not None:
            self._on_change(change)


def backoff_delay(retry: Retry, attempt: int, rng: random.Random) -> float:
    """How long to wait after failed attempt ``attempt`` (0-based): exponential, capped, with
    jitter so that adapters which failed together do not retry together."""
    base = min(retry.max_s, retry.initial_s * retry.factor ** min(attempt, 64))
    return base * (1.0 - retry.jitter * rng.random())
