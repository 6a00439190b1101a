"""The circuit breaker on a fake clock, the backoff's bounds, and HttpDelivery against a real
local HTTP server (time advanced by the injected sleep, so nothing waits for real)."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.framework.breaker import BreakerState, CircuitBreaker, backoff_delay
from adapters.framework.codec import CapCodec
from adapters.framework.http_out import Breakers, HttpDelivery, destination
from adapters.framework.manifest import Breaker, HttpDeliver, Retry
from hub.codecs.cap import decode_cap
from tests.integration.city_endpoint import CityEndpoint, Step

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
TASK = (
    Path(__file__).resolve().parents[2]
    / "adapters/cities/shanghai/fixtures/task-protect-intakes.json"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def breaker(
    clock: Clock, failures: int = 3, open_s: float = 10.0, max_open_s: float = 35.0
) -> CircuitBreaker:
    return CircuitBreaker(
        Breaker(failures=failures, open_s=open_s, max_open_s=max_open_s), clock=clock
    )


def test_opens_after_n_consecutive_failures_only() -> None:
    clock = Clock()
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()  # a success in between starts the count again
    b.record_failure()
    b.record_failure()
    assert b.state is CLOSED and b.allow()
    b.record_failure()
    assert b.state is OPEN and not b.allow()
    assert b.retry_after() == pytest.approx(10.0)


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    b = breaker(clock, failures=1)
    b.record_failure()
    clock.now += 9.9
    assert b.state is OPEN and not b.allow()
    clock.now += 0.1
    assert b.state is HALF
    assert b.allow() is True
    assert b.allow() is False  # the probe is out; others wait for its outcome
    b.record_success()
    assert b.state is CLOSED and b.allow() and b.failures == 0
    assert [(t.before, t.after) for t in b.transitions] == [
        (CLOSED, OPEN),
        (OPEN, HALF),
        (HALF, CLOSED),
    ]


def test_a_failed_probe_opens_again_for_longer_up_to_the_cap() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, open_s=10.0, max_open_s=35.0)
    b.record_failure()
    waits = []
    for _ in range(4):
        clock.now += b.retry_after()
        assert b.allow()
        b.record_failure()
        waits.append(b.retry_after())
    assert waits == [20.0, 35.0, 35.0, 35.0]
    clock.now += 35.0
    assert b.allow()
    b.record_success()
    b.record_failure()  # closed again: the next opening starts from open_s
    assert b.state is OPEN and b.retry_after() == 10.0


def test_backoff_grows_exponentially_within_its_jitter_and_cap() -> None:
    retry = Retry(initial_s=0.5, max_s=8.0, factor=2.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, base in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        delays = [backoff_delay(retry, attempt, rng) for _ in range(200)]
        assert all(base * 0.5 <= d <= base for d in delays)
        assert max(delays) - min(delays) > base * 0.3  # jitter spreads them
    assert backoff_delay(Retry(jitter=0.0, initial_s=1.0), 3, rng) == 8.0


def test_destinations_are_scheme_host_and_port() -> None:
    assert destination("https://a.example/x/y") == "https://a.example:443"
    assert destination("http://a.example:8080/x") == "http://a.example:8080"
    settings = HttpDeliver(url="http://a.example/tasks")
    breakers = Breakers()
    assert breakers.get("http://a.example/tasks", settings) is breakers.get(
        "http://a.example:80/other", settings
    )
    assert breakers.get("http://b.example/tasks", settings) is not breakers.get(
        "http://a.example/tasks", settings
    )


@pytest.fixture
async def city() -> AsyncIterator[CityEndpoint]:
    endpoint = await CityEndpoint().start()
    try:
        yield endpoint
    finally:
        await endpoint.close()


def delivery(city: CityEndpoint, clock: Clock, attempts: int = 6) -> HttpDelivery:
    settings = HttpDeliver(
        url=city.url,
        timeout_s=5,
        retry=Retry(attempts=attempts, initial_s=1.0, max_s=4.0),
        breaker=Breaker(failures=2, open_s=30.0),
    )
    return HttpDelivery(
        settings,
        CapCodec("liandong"),
        adapter_id="test",
        token="city-secret",
        breakers=Breakers(clock),
        sleep=clock.sleep,
        rng=random.Random(1),
    )


def task() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(TASK.read_bytes())
    return data


async def test_delivery_retries_through_the_breaker_and_the_city_applies_once(
    city: CityEndpoint,
) -> None:
    script: list[Step] = ["503", "apply-then-500", "drop", "ok"]
    city.script = list(script)
    clock = Clock()
    out = delivery(city, clock)
    try:
        result = await out.deliver(task())
    finally:
        await out.aclose()
    assert result.delivered and result.attempts == 4 and result.status == 200
    assert [r.answered for r in city.received] == [503, 500, None, 200]
    key = task()["id"]
    assert city.applied == {key: 1}  # sent twice after it took effect; applied once
    first = city.received[0].headers
    assert first["idempotency-key"] == key and first["authorization"] == "Bearer city-secret"
    assert first["liandong-task-state"] == "issued"
    assert decode_cap(city.received[-1].body).identifier == key
    path = [(t.before, t.after) for t in out.breaker.transitions]
    assert path == [(CLOSED, OPEN), (OPEN, HALF), (HALF, OPEN), (OPEN, HALF), (HALF, CLOSED)]
    # The breaker held the third and fourth requests back for its open time (30 s, then 60 s).
    gaps = [b.at - a.at for a, b in itertools.pairwise(out.breaker.transitions)]
    assert gaps[0] == pytest.approx(30.0) and gaps[2] == pytest.approx(60.0)


async def test_a_round_gives_up_after_its_attempts_and_a_refusal_is_not_retried(
    city: CityEndpoint,
) -> None:
    clock = Clock()
    city.script = ["429", "ok"]
    out = delivery(city, clock)
    try:
        assert (await out.deliver(task())).delivered  # 429 with Retry-After: tried again
        city.script = ["503"] * 10
        given_up = await out.deliver({**task(), "id": "other-task"})
        assert not given_up.delivered and not given_up.refused and given_up.status == 503
        assert given_up.attempts == 6 and len(city.received) == 2 + 6
        assert out.breaker.state is OPEN  # the next round waits for it
        clock.now += out.breaker.retry_after()
        city.script = ["422"]
        refused = await out.deliver({**task(), "id": "third-task"})
        assert refused.refused and not refused.delivered and refused.attempts == 1
        assert out.breaker.state is CLOSED  # the endpoint answered: it is up
        assert "third-task" not in city.applied
    finally:
        await out.aclose()
