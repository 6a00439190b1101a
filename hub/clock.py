"""Time as a dependency: decision code is given a ``Clock`` and never reads the system time."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """Wall-clock time in milliseconds since the epoch."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FixedClock:
    """A clock that moves only when told to (tests, replays)."""

    def __init__(self, start_ms: int) -> None:
        self._ms = start_ms

    def now_ms(self) -> int:
        return self._ms

    def advance(self, ms: int) -> None:
        self._ms += ms


class VirtualClock:
    """A drill's clock: virtual time that runs ``speed`` times faster than the wall clock, or,
    with ``speed`` None (as fast as possible), moves only when ``set`` or ``advance`` move it.

    It can be paused (virtual time stands still) and resumed; ``set`` pins it to a moment, from
    which it runs on. A player pins it to each recorded moment before acting, so what the hub
    writes does not depend on how fast the drill ran.
    """

    def __init__(self, start_ms: int, speed: float | None = 1.0) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed {speed}: must be above 0 (or None: as fast as possible)")
        self.speed = speed
        self._base_ms = start_ms
        self._base_real = time.monotonic()
        self._paused = False
        self._held = False

    @property
    def paused(self) -> bool:
        return self._paused

    def now_ms(self) -> int:
        if self.speed is None or self._paused or self._held:
            return self._base_ms
        return self._base_ms + int((time.monotonic() - self._base_real) * 1000 * self.speed)

    def set(self, ms: int) -> None:
        """Pin virtual time to ``ms``; it runs on from there (unless paused or as fast as
        possible)."""
        self._base_ms = ms
        self._base_real = time.monotonic()

    def hold(self, ms: int) -> None:
        """Pin virtual time to ``ms`` and keep it there (while a step acts) until ``release``."""
        self._base_ms = ms
        self._held = True

    def release(self) -> None:
        """Let virtual time run on from where ``hold`` pinned it."""
        if self._held:
            self._held = False
            self._base_real = time.monotonic()

    def advance(self, ms: int) -> None:
        self.set(self.now_ms() + ms)

    def pause(self) -> None:
        if not self._paused:
            self.set(self.now_ms())
            self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._base_real = time.monotonic()

    def real_seconds_until(self, ms: int) -> float:
        """Wall-clock seconds until virtual time reaches ``ms`` (0 as fast as possible;
        infinite while paused)."""
        if self.speed is None:
            return 0.0
        if self._paused:
            return float("inf")
        if self._held:
            return max(0.0, (ms - self._base_ms) / 1000 / self.speed)
        return max(0.0, (ms - self.now_ms()) / 1000 / self.speed)
