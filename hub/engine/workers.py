"""Where planning runs: in the hub's process, or in worker processes.

Planning is pure CPU work; Python runs one thread at a time in a process, so a worker process
gives the engine a core of its own while the hub's process serves HTTP and commits. Workers are
started with ``spawn`` (never fork a process that has a database thread) and load the region
and the playbooks once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Protocol

from hub.engine.planning import Planned, prepare_batch
from hub.engine.playbook import Playbook, load_playbooks
from hub.errors import InvalidInput, Unavailable
from hub.model.envelope import Lane
from hub.region import Region, load_region

Results = list[Planned | InvalidInput | None]


class Planner(Protocol):
    async def plan(self, values: Sequence[bytes], lane: Lane) -> Results: ...

    def close(self) -> None: ...


class InProcessPlanner:
    def __init__(self, playbooks: Sequence[Playbook], region: Region) -> None:
        self._playbooks = tuple(playbooks)
        self._region = region

    async def plan(self, values: Sequence[bytes], lane: Lane) -> Results:
        return prepare_batch(values, lane, self._playbooks, self._region)

    def close(self) -> None:
        return None


def settle_heap() -> None:
    """Move what start-up loaded (the region's boundaries, playbooks, modules) out of the
    garbage collector's sight. A full collection walks every object (about 110,000 after
    start-up, 20-50 ms here) and would stall whatever request it lands in; frozen objects
    are never walked again."""
    gc.collect()
    gc.freeze()


def _serve(conn: Connection, playbooks_dir: str) -> None:
    """The worker process: load once, then plan each batch that arrives on the pipe."""
    playbooks = tuple(load_playbooks(Path(playbooks_dir)))
    region = load_region()
    settle_heap()
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
            if request is None:
                return
            values, lane = request
            conn.send(prepare_batch(values, Lane(lane), playbooks, region))
        except (EOFError, OSError):
            return  # the hub is gone (even by SIGKILL): its end of the pipe closed


class ProcessPlanner:
    """Plans in a worker process over a pipe; the event loop waits on the pipe's descriptor.

    One batch at a time per worker (a lock), round-robin over ``workers``. A pipe and the
    loop's own reader cost a fraction of a millisecond, where a ProcessPoolExecutor's manager
    thread and queues cost several.
    """

    def __init__(self, playbooks_dir: Path, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._workers: list[tuple[Connection, BaseProcess, asyncio.Lock]] = []
        for _ in range(workers):
            ours, theirs = context.Pipe(duplex=True)
            process = context.Process(
                target=_serve,
                args=(theirs, str(playbooks_dir)),
                daemon=True,
                name="liandong-planner",
            )
            process.start()
            theirs.close()
            if not ours.poll(60) or ours.recv() != "ready":
                raise RuntimeError("the planner worker did not start")
            self._workers.append((ours, process, asyncio.Lock()))
        self._next = 0

    async def plan(self, values: Sequence[bytes], lane: Lane) -> Results:
        conn, process, lock = self._workers[self._next % len(self._workers)]
        self._next += 1
        async with lock:
            if not process.is_alive():
                raise Unavailable("the planner worker has stopped")
            conn.send((list(values), lane.value))
            loop = asyncio.get_running_loop()
            readable: asyncio.Future[None] = loop.create_future()

            def on_readable() -> None:
                if not readable.done():
                    readable.set_result(None)

            fd = conn.fileno()
            loop.add_reader(fd, on_readable)
            try:
                await readable
                # The worker is writing the answer now: recv reads it to the end.
                result: Results = conn.recv()
            finally:
                loop.remove_reader(fd)
            return result

    def close(self) -> None:
        for conn, process, _ in self._workers:
            with contextlib.suppress(OSError):
                conn.send(None)
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
            conn.close()
        self._workers.clear()
