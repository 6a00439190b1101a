"""Deadlines and escalation that survive restarts.

A task waits for its target's acknowledgement until ``due``. When that passes unanswered, the
hub climbs the ladder of the agreement that authorised the task (``Why.agreement``): the
neighbour's duty liaison, then its district command, its city command, the regional coordinator,
waiting at each rung as long as the agreement says. A task whose playbook gives it a ladder of
its own (an ``escalate`` step with rungs, stored with the task in ``task_ladders``) climbs those
rungs with their waits instead. Each climb is one transaction: a
compare-and-set on the task's rung and a ``task.escalated`` event whose id is derived from the
task and the rung, so every rung is called exactly once, whichever hub instance gets there first
and however often the escalator restarts. Timers are rows (``tasks.next_due_ms``), not sleeps: a
deadline that passed while no hub ran is acted on at the next start, rung by rung, each at the
time it fell due (the next deadline counts from the previous one, not from when the hub noticed),
so a replay under a virtual clock escalates at the same moments.

The escalator also runs the approval requests' expiry timers (:mod:`hub.engine.approvals`): the
same kind of row, scanned the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from hub.bus import topics
from hub.clock import Clock
from hub.engine.approvals import ApprovalService
from hub.errors import HubError
from hub.model.envelope import derived_id, format_time
from hub.model.events import TaskUpdated, make_event
from hub.model.region import Agreement
from hub.model.task import Task, TaskState
from hub.region import Region
from hub.region.region import UnknownAgreement
from hub.store import approvals as approval_store
from hub.store import tasks as task_store
from hub.store.db import Runner, Tx
from hub.store.outbox import Emitter

log = logging.getLogger(__name__)

_BATCH = 200
_IDLE_POLL_S = 1.0


class Escalator:
    """Finds tasks whose deadline passed and calls the next rung of their agreement's ladder."""

    def __init__(self, db: Runner, emitter: Emitter, clock: Clock, region: Region) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock
        self._region = region
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.escalated = 0
        self.approvals = ApprovalService(db, emitter, clock)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """A new deadline may be nearer than the one the loop sleeps towards."""
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.05
        while not self._stopping.is_set():
            try:
                await self.run_once()
                upcoming = await self._db.run(_next_timer)
                backoff = 0.05
            except HubError as exc:  # the database is away: try again later
                log.warning("escalation: %s; retrying in %.2f s", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            wait = _IDLE_POLL_S
            if upcoming is not None:
                wait = min(wait, max(0.0, (upcoming - self._clock.now_ms()) / 1000))
            await self._sleep(wait)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def run_once(self) -> int:
        """Expire the approval requests whose time ran out, then climb every rung that is due
        now (catching up rung by rung); returns how many rungs were climbed."""
        await self.approvals.expire_due()
        total = 0
        while True:
            now = self._clock.now_ms()
            climbed = await self._db.run(lambda tx, n=now: self.climb_due_in(tx, n))  # type: ignore[misc]
            total += climbed
            if climbed == 0:
                break
        self.escalated += total
        return total

    def climb_due_in(self, tx: Tx, now_ms: int) -> int:
        """Climb the rungs due by ``now_ms`` (a batch of them) in the caller's transaction;
        how many were climbed."""
        climbed = 0
        for task, rung, due_ms in task_store.due_for_escalation(tx.conn, now_ms, _BATCH):
            if self._climb(tx, task, rung, due_ms, now_ms):
                climbed += 1
        return climbed

    def _agreement_of(self, task: Task) -> Agreement | None:
        try:
            return self._region.agreement(task.why.agreement)
        except UnknownAgreement:
            log.error("task %s names unknown agreement %s", task.id, task.why.agreement)
            return None

    def _ladder_of(
        self, tx: Tx, task: Task, agreement: Agreement | None
    ) -> tuple[approval_store.Rungs, str]:
        """The rungs ``task`` climbs and under what: its playbook's own, else its agreement's."""
        own = approval_store.ladder_of(tx.conn, task.id)
        if own is not None:
            step, rungs = own
            return rungs, f"on the ladder of playbook {task.why.playbook} step {step}"
        if agreement is None:
            return (), ""
        rungs = tuple((r.level, int(r.wait.total_seconds() * 1000)) for r in agreement.escalation)
        return rungs, f"under {task.why.agreement} clause {task.why.clause}"

    def _climb(self, tx: Tx, task: Task, rung: int, due_ms: int, now_ms: int) -> bool:
        agreement = self._agreement_of(task)
        ladder, under = self._ladder_of(tx, task, agreement)
        if rung >= len(ladder):  # the top was called, or no ladder: nobody left to call
            task_store.climb(tx.conn, task, rung, None, now_ms)  # stop its clock
            return False
        level, wait_ms = ladder[rung]
        next_due = due_ms + wait_ms if rung + 1 < len(ladder) else None
        escalated = task.model_copy(update={"state": TaskState.ESCALATED})
        if not task_store.climb(tx.conn, escalated, rung, next_due, now_ms):
            return False  # another instance climbed this rung first
        contact = None
        if agreement is not None and level == "duty_liaison":
            contact = next((x.contact for x in agreement.liaison if x.party == task.target), None)
        when = format_time(due_ms)
        update = TaskUpdated(
            task=task.id,
            incident=task.incident,
            target=task.target,
            previous=task.state,
            state=TaskState.ESCALATED,
            by="hub",
            reason=(
                f"no acknowledgement from {task.target} by {when}; calling {level} "
                f"(rung {rung + 1} of {len(ladder)}) {under}"
            ),
            at=when,
            rung=rung + 1,
            level=level,
            contact=contact,
        )
        envelope = make_event(
            "task.escalated",
            update,
            id=derived_id(task.id, "task.escalated", str(rung + 1)),
            source="/liandong/hub/escalation",
            time=when,
            jurisdiction=task.target,
            correlationid=task.incident,
            subject=task.id,
            status=task.lane,
        )
        lane_topic = topics.for_lane(topics.TASK_UPDATES, task.lane)
        self._emitter.append(tx, lane_topic, task.target, envelope.encode(), due_ms)
        return True


def _next_timer(tx: Tx) -> int | None:
    """The earliest pending timer: a task's escalation deadline or an approval's expiry."""
    times = (task_store.next_deadline(tx.conn), approval_store.next_expiry(tx.conn))
    found = [t for t in times if t is not None]
    return min(found) if found else None
