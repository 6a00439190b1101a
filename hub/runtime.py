"""The running hub: opens the data directory, wires the parts together, runs the consumers.

One process owns a data directory (a lock file says so), which is what lets the embedded bus
have exactly one member per consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from typing import IO

from hub.bus.consumer import ConsumerLoop
from hub.bus.embedded import EmbeddedBus
from hub.clock import Clock, SystemClock
from hub.engine.playbook import Playbook, load_playbooks
from hub.engine.runner import EngineRunner
from hub.engine.tasks import TaskService
from hub.errors import Conflict
from hub.intake.service import IntakeService
from hub.metrics import Metrics
from hub.model.envelope import Lane
from hub.region import Region, load_region
from hub.settings import Settings
from hub.store.db import Database, Tx

log = logging.getLogger(__name__)

_LAG_REFRESH_S = 2.0


class Hub:
    """Everything one hub process runs, started and stopped together."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        settings.check()
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.metrics = Metrics()
        self.region: Region = load_region()
        self.playbooks: list[Playbook] = load_playbooks(settings.playbooks)
        self.db = Database(settings.database_path, settings.sqlite_synchronous)
        self.bus = EmbeddedBus(self.db, self.clock)
        self.intake = IntakeService(self.db, self.bus, self.clock, self.region)
        self.tasks = TaskService(self.db, self.bus, self.clock)
        self.engines = [
            EngineRunner(
                self.db,
                self.bus,
                self.clock,
                self.region,
                self.playbooks,
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
        self._lock = _lock_data_dir(self.settings)
        self.db.open()
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
        self._running.append(asyncio.create_task(self._refresh_lag(), name="lag"))

    async def stop(self) -> None:
        for loop in self._loops:
            loop.stop()
        for task in self._running:
            task.cancel()
        for task in self._running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._running.clear()
        self.db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def _refresh_lag(self) -> None:
        groups = [(e.group, t) for e in self.engines for t in e.topics]

        def count(tx: Tx) -> dict[tuple[str, str], int]:
            out = {}
            for group, topic in groups:
                row = tx.conn.execute(
                    'SELECT "offset" FROM consumer_offsets WHERE grp = ? AND topic = ?',
                    (group, topic),
                ).fetchone()
                (n,) = tx.conn.execute(
                    'SELECT COUNT(*) FROM log WHERE topic = ? AND "offset" > ?',
                    (topic, row[0] if row else 0),
                ).fetchone()
                out[(group, topic)] = n
            return out

        while True:
            with contextlib.suppress(Exception):  # metrics must never take the hub down
                self._lag = await self.db.run(count)
            await asyncio.sleep(_LAG_REFRESH_S)


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
