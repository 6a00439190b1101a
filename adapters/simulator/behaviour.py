"""How a simulated city answers one task, decided up front and deterministically.

:func:`decide` draws every choice for a task (silence, the delays, decline and its reason,
done) from a random generator seeded with the run's seed and what identifies the task across
runs: the city, the scenario's name of the incident, the target and the action. Task ids are
derived from incident identifiers, which carry a run id, so they differ between runs; these do
not. The same seed and scenario therefore give the same answers in every run, whatever order
the tasks arrive in.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from adapters.simulator.region_scenario import (
    Answers,
    Delay,
    Exponential,
    Fixed,
    Lognormal,
    Uniform,
)

__all__ = ["Decision", "decide", "sample"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the city will do with one task (delays in scenario seconds)."""

    silent: bool
    acknowledge_after_s: float
    then_after_s: float  # after acknowledging: decline, or accept (a task asking for it)
    decline_reason: str | None  # None: it does not decline
    done_after_s: float | None  # after accepting; None: it does not report done

    @property
    def declines(self) -> bool:
        return self.decline_reason is not None


def sample(delay: Delay, rng: random.Random) -> float:
    """One delay in seconds."""
    if isinstance(delay, Fixed):
        return delay.s
    if isinstance(delay, Uniform):
        return rng.uniform(delay.min_s, delay.max_s)
    if isinstance(delay, Lognormal):
        value = rng.lognormvariate(math.log(delay.median_s), delay.sigma)
    else:
        assert isinstance(delay, Exponential)
        value = rng.expovariate(1.0 / delay.mean_s)
    return min(value, delay.max_s) if delay.max_s is not None else value


def _rng(seed: int, *parts: str) -> random.Random:
    # str hashing is salted per process; a digest is the same in every run.
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def decide(
    seed: int, answers: Answers, *, city: str, incident: str, target: str, action: str
) -> Decision:
    """Every choice for one task; the draws happen in a fixed order, so changing one
    probability in the scenario does not shift the others."""
    rng = _rng(seed, city, incident, target, action)
    silent = rng.random() < answers.silence
    acknowledge = sample(answers.delay, rng)
    then = sample(answers.then or answers.delay, rng)
    declining = rng.random() < answers.decline.probability
    reasons = [r for r in answers.decline.reasons if r.strip()]
    reason = rng.choice(reasons) if reasons else None
    done = rng.random() < answers.done
    done_after = sample(answers.then or answers.delay, rng)
    return Decision(
        silent=silent,
        acknowledge_after_s=acknowledge,
        then_after_s=then,
        decline_reason=reason if declining else None,
        done_after_s=done_after if done else None,
    )
