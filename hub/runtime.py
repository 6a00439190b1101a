"""The running hub: wires the parts together on the configured backends, runs the consumers.

In the embedded default one process owns a data directory (a lock file says so), which is what
lets the embedded bus have one member per consumer group. With Kafka, any number of instances
share the consumer groups, and one of them relays the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from typing import IO

from hub import backends
from hub.bus import topics
from hub.bus.consumer import ConsumerLoop
from hub.clock import Clock, SystemClock
from hub.engine.deadlines import Escalator
from hub.engine.playbook import Playbook, load_playbooks
from hub.engine.runner import EngineRunner
from hub.engine.tasks import TaskService
from hub.engine.workers import InProcessPlanner, Planner, ProcessPlanner
from hub.errors import Conflict, HubError
from hub.intake.deadletters import IntakeDeadLetters
from hub.intake.service import IntakeService
from hub.metrics import Metrics
from hub.model.envelope import Lane
from hub.region import Region, load_region
from hub.registry.service import Registry
from hub.settings import Settings

log = logging.getLogger(__name__)

_LAG_REFRESH_S = 2.0


class Hub:
    """Everything one hub process runs, started and stopped together."""

    hold_expiry_s = 5.0
    """How often holds awaiting approval are checked for expiry."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        settings.check()
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.instance = f"{socket.gethostname()}-{os.getpid()}"
        self.metrics = Metrics()
        self.region: Region = load_region()
        self.playbooks: list[Playbook] = load_playbooks(settings.playbooks)
        self.backends = backends.build(settings, self.clock, self.instance)
        self.db = self.backends.db
        self.bus = self.backends.bus
        emitter = self.backends.emitter
        self.intake = IntakeService(self.db, emitter, self.clock, self.region)
        self.deadletters = IntakeDeadLetters(self.db, emitter, self.clock)
        self.tasks = TaskService(
            self.db, emitter, self.clock, playbooks=self.playbooks, region=self.region
        )
        self.registry = Registry(self.db, emitter, self.clock, self.region)
        self.escalator = Escalator(self.db, emitter, self.clock, self.region)
        self.planner: Planner = (
            ProcessPlanner(settings.playbooks, settings.engine_workers)
            if settings.engine_workers > 0
            else InProcessPlanner(self.playbooks, self.region)
        )
        self.engines = [
            EngineRunner(
                self.db,
                emitter,
                self.clock,
                self.planner,
                lane,
                on_issued=self.metrics.tasks_issued.labels(lane.value).inc,
            )
            for lane in (Lane.ACTUAL, Lane.EXERCISE)
        ]
        self._loops: list[ConsumerLoop] = []
        self._running: list[asyncio.Task[None]] = []
        self._lock: IO[str] | None = None
        self._lag: dict[tuple[str, str], int] = {}
        self.metrics.watch_lag(lambda: dict(self._lag))

    async def start(self) -> None:
        if self.backends.embedded:
            self._lock = _lock_data_dir(self.settings)
        await self.db.start()
        if self.backends.bootstrap is not None:
            from hub.bus.kafka import ensure_topics

            await ensure_topics(self.backends.bootstrap, topics.ALL_TOPICS)
        relay = self.backends.relay
        if relay is not None:
            self._running.append(asyncio.create_task(relay.run(), name="outbox-relay"))
        for engine in self.engines:
            consumer = self.bus.consumer(engine.group, engine.topics)
            loop = ConsumerLoop(
                self.bus,
                consumer,
                engine.group,
                engine.handle,
                self.clock,
                on_deadletter=self.metrics.deadlettered.labels(engine.group).inc,
            )
            self._loops.append(loop)
            self._running.append(asyncio.create_task(loop.run(), name=f"consumer:{engine.group}"))
        self._running.append(asyncio.create_task(self.escalator.run(), name="escalation"))
        self._running.append(asyncio.create_task(self._refresh_lag(), name="lag"))
        self._running.append(asyncio.create_task(self._expire_holds(), name="hold-expiry"))

    async def stop(self) -> None:
        for loop in self._loops:
            loop.stop()
        if self.backends.relay is not None:
            self.backends.relay.stop()
        self.escalator.stop()
        for task in self._running:
            task.cancel()
        for task in self._running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._running.clear()
        await self.bus.close()
        await self.db.stop()
        self.planner.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def _refresh_lag(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # metrics must never take the hub down
                lag: dict[tuple[str, str], int] = {}
                for engine in self.engines:
                    for topic, n in (await self.bus.lag(engine.group, engine.topics)).items():
                        lag[(engine.group, topic)] = n
                self._lag = lag
            await asyncio.sleep(_LAG_REFRESH_S)

    async def _expire_holds(self) -> None:
        while True:
            try:
                await self.registry.expire_due()
            except HubError as exc:  # the database is away: the next tick tries again
                log.warning("expiring stock holds: %s", exc)
            except Exception:  # the loop's boundary: log, and try again at the next tick
                log.exception("expiring stock holds failed")
            await asyncio.sleep(self.hold_expiry_s)


def _lock_data_dir(settings: Settings) -> IO[str]:
    settings.data.mkdir(parents=True, exist_ok=True)
    handle = (settings.data / "hub.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise Conflict(f"another hub is already running on {settings.data}") from None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
