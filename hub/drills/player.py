"""The drill player: drives a drill's hub through a timeline under a virtual clock.

Actions and the moments the hub must act on its own (escalation deadlines, hold expiries) are
taken in time order. Before each, the virtual clock is pinned to its moment; at speed N the
player first waits until the clock (running N times faster than the wall clock) gets there, as
fast as possible it jumps. Reports go through the intake service, then the exercise engine
handles what the intake appended (the same ``EngineRunner.handle`` the hub's consumer calls);
answers go through the task service, stock requests through the registry, deadlines through
the escalator. Because the clock is pinned at every step and each step completes before the
next, a replay's log does not depend on its speed: the same inputs give the same bytes.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from hub.clock import VirtualClock
from hub.drills.drillhub import DrillHub
from hub.drills.steps import Outcome, Steps
from hub.drills.timeline import Action, Answer, Report, StockAsk, StockMove, Timeline
from hub.errors import HubError
from hub.model.envelope import format_time, parse_time
from hub.model.task import Task, TaskState
from hub.registry.service import StockRequest
from hub.store import tasks as task_store
from hub.store.db import Tx

TAIL_MS = 4 * 3_600_000
"""After the last action, virtual time runs on this long for deadlines and answers."""
_SLICE_S = 0.1
_BATCH = 2_000
"""As fast as possible, up to this many steps are queued together (for a scenario, only those
before the responder could answer a task the batch issues)."""


class State(StrEnum):
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass
class Progress:
    actions_done: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    error: str | None = None


class Player:
    """One drill: ``run`` plays it to the end (or until ``stop``); ``pause``/``resume``."""

    def __init__(
        self,
        drill: str,
        timeline: Timeline,
        data: Path,
        playbooks: Path,
        *,
        speed: float | None = None,
        registry_from: Path | None = None,
        registry_demo: bool = False,
        tail_ms: int = TAIL_MS,
    ) -> None:
        self.drill = drill
        self.timeline = timeline
        self.data = data
        self.clock = VirtualClock(timeline.start_ms, speed)
        self.hub = DrillHub(drill, data, playbooks, self.clock)
        self.registry_from = registry_from
        self.registry_demo = registry_demo
        self.tail_ms = tail_ms
        self.state = State.READY
        self.progress = Progress()
        self.seconds = 0.0
        self.records = 0
        self.digest: str | None = None
        self.report: dict[str, Any] | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._stop = False
        self._queue: list[tuple[int, int, Action]] = []
        self._seq = 0
        self.steps = Steps(self.hub.hub, self.clock, drill)
        self._next_expiry: int | None = None

    # -- control ---------------------------------------------------------------------------
    def pause(self) -> None:
        if self.state is State.RUNNING:
            self.clock.pause()
            self._resumed.clear()
            self.state = State.PAUSED

    def resume(self) -> None:
        if self.state is State.PAUSED:
            self.clock.resume()
            self._resumed.set()
            self.state = State.RUNNING

    def stop(self) -> None:
        self._stop = True
        self._resumed.set()

    def status(self) -> dict[str, Any]:
        return {
            "drill": self.drill,
            "timeline": self.timeline.name,
            "state": self.state.value,
            "speed": "max" if self.clock.speed is None else self.clock.speed,
            "virtual_time": format_time(self.clock.now_ms()),
            "actions": len(self.timeline.actions),
            "actions_done": self.progress.actions_done,
            "counts": dict(sorted(self.progress.counts.items())),
            "records": self.records,
            "digest": self.digest,
            "seconds": round(self.seconds, 3),
            "data": str(self.data),
            "error": self.progress.error,
        }

    # -- the run ---------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.state = State.RUNNING
        await self.hub.open()
        try:
            await self.hub.seed_registry(
                self.registry_from, self.registry_demo, self.timeline.start_ms
            )
            for action in self.timeline.actions:
                self._push(action.at_ms, action)
            await self._play()
            self.records, self.digest = await self.hub.digest()
            self.report = await self.hub.report()
            if self.state is not State.STOPPED:
                self.state = State.FINISHED
        except BaseException as exc:
            self.state = State.FAILED
            self.progress.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.seconds = time.perf_counter() - started
            await self.hub.close()
        return self.status()

    def _push(self, at_ms: int, action: Action) -> None:
        heapq.heappush(self._queue, (at_ms, self._seq, action))
        self._seq += 1

    async def _play(self) -> None:
        end = self.timeline.end_ms + self.tail_ms
        fast = self.clock.speed is None
        while not self._stop and self._queue and self._queue[0][0] <= end:
            first = self._queue[0][0]
            if self._next_expiry is not None and self._next_expiry <= first:
                await self._expire(self._next_expiry)
                continue
            if not fast:  # watched at speed N: rungs are climbed when they fall due
                due = await self.hub.hub.db.run(lambda tx: task_store.next_deadline(tx.conn))
                if due is not None and due < first:
                    if await self._wait_until(due):
                        await self._run_batch([("climb", due)])
                    continue
            if not await self._wait_until(first):
                break
            batch = self._take(first, fast)
            if batch:
                await self._run_batch(batch)
            else:
                await self._apply_stock(heapq.heappop(self._queue)[2])
        # After the last action: running deadlines climb, holds expire, until ``end``.
        while not self._stop:
            due = await self.hub.hub.db.run(lambda tx: task_store.next_deadline(tx.conn))
            expiry = self._next_expiry
            moments = [t for t in (due, expiry) if t is not None]
            if not moments or min(moments) > end or not await self._wait_until(min(moments)):
                break
            if expiry is not None and expiry == min(moments):
                await self._expire(expiry)
            else:
                await self._run_batch([("climb", min(moments))])
        if self._stop:
            self.state = State.STOPPED

    def _take(self, first: int, fast: bool) -> list[tuple[str, Any]]:
        """The actions to queue together: as fast as possible, those before the responder
        could answer a task the batch issues (and before the next hold expiry); at speed N,
        those of this moment. Stock actions go one at a time (an empty batch)."""
        limit = first
        if fast:  # a recording's answers are all known: only the batch size bounds it
            responder = self.timeline.responder
            limit = first + (responder.ack_ms - 1 if responder else 2**62)
        if self._next_expiry is not None:
            limit = min(limit, self._next_expiry - 1)
        batch: list[tuple[str, Any]] = []
        while self._queue and self._queue[0][0] <= max(limit, first) and len(batch) < _BATCH:
            action = self._queue[0][2]
            if isinstance(action, StockAsk | StockMove):
                break
            heapq.heappop(self._queue)
            batch.append(("report" if isinstance(action, Report) else "answer", action))
        return batch

    async def _run_batch(self, batch: list[tuple[str, Any]]) -> None:
        steps, db = self.steps, self.hub.hub.db
        bodies: dict[str, Callable[[Tx, Any], Outcome]] = {
            "report": steps.report, "answer": steps.answer, "climb": steps.climb
        }  # fmt: skip
        jobs = [db.run(_job(bodies[kind], arg)) for kind, arg in batch]
        try:
            results = await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            self.clock.release()
        counts = self.progress.counts
        for (kind, arg), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, HubError):
                    raise result
                counts[f"{kind}s_failed"] += 1
                self.progress.error = f"{kind} at {arg if kind == 'climb' else arg.at_ms}: {result}"
                continue
            if kind != "climb" and (kind == "report" or arg.by != _RESPONDER):
                self.progress.actions_done += 1
            counts["escalations"] += result.escalations
            counts["duplicates" if result.duplicate else f"{kind}s"] += kind != "climb"
            counts["answer_moves"] += result.moves
            counts["answers_refused"] += result.refused
            counts["answers_unmatched"] += result.unmatched
            for task in result.issued:
                self._issued(task)

    async def _expire(self, at_ms: int) -> None:
        await self._run_batch([("climb", at_ms)])
        self.clock.hold(at_ms)
        try:
            expired = await self.hub.hub.registry.expire_due()
        finally:
            self.clock.release()
        self.progress.counts["holds_expired"] += len(expired)
        self._next_expiry = await self.hub.hub.db.run(_next_expiry)

    async def _wait_until(self, at_ms: int) -> bool:
        """Wait (wall clock) until the virtual clock reaches ``at_ms``; False when stopped."""
        while not self._stop:
            if not self._resumed.is_set():
                await self._resumed.wait()
                continue
            wait = self.clock.real_seconds_until(at_ms)
            if wait <= 0:
                return True
            await asyncio.sleep(min(wait, _SLICE_S))
        return False

    def _issued(self, task: Task) -> None:
        self.progress.counts["tasks"] += 1
        responder = self.timeline.responder
        if responder is None or (task.incident, task.target) in responder.declining:
            return
        issued = parse_time(task.issued)
        for delay, state in (
            (responder.ack_ms, TaskState.ACKNOWLEDGED),
            (responder.accept_ms, TaskState.ACCEPTED),
        ):
            if state is TaskState.ACCEPTED and task.response != "accept":
                continue
            at = responder.answer_time(task.target, issued + delay)
            self._push(at, Answer(at, task.incident, task.target, state, _RESPONDER, None, task.id))

    async def _apply_stock(self, action: Action) -> None:
        """A stock request or an owner's move, alone, under the pinned clock."""
        await self._run_batch([("climb", action.at_ms)])
        self.clock.hold(action.at_ms)
        self.progress.actions_done += 1
        try:
            if isinstance(action, StockAsk):
                await self._ask(action)
            elif isinstance(action, StockMove):
                await self._move_hold(action)
        finally:
            self.clock.release()

    async def _ask(self, a: StockAsk) -> None:
        req = StockRequest(
            a.request, a.depot, a.item, a.quantity, a.partner, a.agreement, a.actor, a.clause,
            drill=self.drill,
        )  # fmt: skip
        try:
            answer = await self.hub.hub.registry.request(req)
        except HubError as exc:
            self.progress.counts["stock_requests_failed"] += 1
            self.progress.error = f"stock request {a.request}: {exc}"
            return
        if answer.hold is None:
            self.progress.counts["stock_refused"] += 1
            return
        self.progress.counts["stock_held"] += 1
        expires = answer.hold.expires_ms
        if expires is not None:
            nxt = self._next_expiry
            self._next_expiry = expires if nxt is None else min(nxt, expires)

    async def _move_hold(self, m: StockMove) -> None:
        registry = self.hub.hub.registry
        try:
            if m.kind == "commit":
                await registry.approve(m.hold, m.actor)
            else:
                await registry.release(m.hold, m.actor, m.reason or "released")
            self.progress.counts[f"holds_{m.kind}"] += 1
        except HubError:
            self.progress.counts["hold_moves_refused"] += 1


_RESPONDER = "drill-responder"


def _next_expiry(tx: Tx) -> int | None:
    row = tx.conn.execute(
        "SELECT MIN(expires_ms) FROM holds WHERE state = 'held' AND expires_ms IS NOT NULL"
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _job(body: Callable[[Tx, Any], Outcome], arg: Any) -> Callable[[Tx], Outcome]:
    return lambda tx: body(tx, arg)
