"""One drill step = one job of the drill hub's writer: the hub's own transaction bodies, run in
time order under a pinned virtual clock.

A step pins the clock to its moment, climbs every escalation rung due by then (as the
escalator does, each at the time it fell due), then acts: a report goes through the intake's
transaction and the exercise engine plans what it appended (``prepare_batch``, the planner's
pure function) and writes it (the engine runner's transaction); an answer goes through the
task service's. Steps are queued together and the writer group-commits them, each in its own
savepoint, in order: a batch gives the same log as one step at a time, only faster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from hub.bus import topics
from hub.clock import VirtualClock
from hub.drills.timeline import Answer, Report
from hub.engine.planning import Planned, prepare_batch
from hub.errors import Conflict, InvalidInput, NotFound
from hub.model.envelope import Lane
from hub.model.task import OPEN_STATES, Task, TaskState
from hub.runtime import Hub
from hub.store import approvals as approval_store
from hub.store import tasks as task_store
from hub.store.adapters import AdapterCredential
from hub.store.db import Tx

_INCIDENTS = topics.for_lane(topics.INCIDENTS, Lane.EXERCISE)
_TASKS = topics.for_lane(topics.TASKS, Lane.EXERCISE)
_NEW = 'SELECT "offset", topic, value FROM log WHERE "offset" > ? ORDER BY "offset"'
_LAST = 'SELECT COALESCE(MAX("offset"), 0) FROM log'
_NEEDS_ACK = (TaskState.DECLINED, TaskState.ACCEPTED, TaskState.DONE)
_NEVER = 2**62


@dataclass
class Outcome:
    """What a step did: tasks it issued (for the responder), escalations, answers."""

    issued: list[Task] = field(default_factory=list)
    escalations: int = 0
    moves: int = 0
    refused: int = 0
    unmatched: int = 0
    duplicate: bool = False


class Steps:
    """The step bodies over one drill hub (called on its writer thread)."""

    def __init__(self, hub: Hub, clock: VirtualClock, drill: str) -> None:
        self.hub = hub
        self.clock = clock
        self.credential_name = f"drill-{drill}"
        self._floor = 0  # nothing falls due before this moment (0: look at the first step)
        self._candidate = 0

    def _begin(self, tx: Tx, at_ms: int, out: Outcome) -> None:
        """Pin the clock; then, as the escalator's round does, expire the approval requests
        whose time ran out and climb every rung due by ``at_ms`` (skipped while nothing can
        be due yet: ``_floor`` is the earliest deadline or expiry the database holds)."""
        self.clock.hold(at_ms)
        self._candidate = self._floor  # becomes the floor only if the step completes
        if at_ms < self._floor:
            return
        approvals = getattr(self.hub.escalator, "approvals", None)
        while approvals is not None and approvals.expire_in(tx, at_ms):
            pass
        while True:
            climbed = self.hub.escalator.climb_due_in(tx, at_ms)
            out.escalations += climbed
            if climbed == 0:
                break
        self._candidate = _NEVER
        self._lower_floor(tx)

    def _lower_floor(self, tx: Tx) -> None:
        """After a step that may have set new deadlines (tasks issued, approvals asked)."""
        due = task_store.next_deadline(tx.conn)
        expiry = approval_store.next_expiry(tx.conn)
        for moment in (due, expiry):
            if moment is not None and moment < self._candidate:
                self._candidate = moment

    def report(self, tx: Tx, action: Report) -> Outcome:
        out = Outcome()
        self._begin(tx, action.at_ms, out)
        incident = action.incident
        credential = AdapterCredential(self.credential_name, incident.sender)
        if not self.hub.region.is_known(incident.sender):
            raise InvalidInput(f"sender '{incident.sender}' is not a jurisdiction of the region")
        (before,) = tx.conn.execute(_LAST).fetchone()
        receipt = self.hub.intake.accept_in(tx, incident, credential)
        out.duplicate = receipt.duplicate
        rows = tx.conn.execute(_NEW, (before,)).fetchall()
        values = [bytes(v) for _, t, v in rows if t == _INCIDENTS]
        if values:
            engine = next(e for e in self.hub.engines if e.lane is Lane.EXERCISE)
            planned = prepare_batch(values, Lane.EXERCISE, self.hub.playbooks, self.hub.region)
            work: list[Planned] = []
            for result in planned:
                if isinstance(result, InvalidInput):
                    raise result
                if result is not None:
                    work.append(result)
            if work:
                engine.write_in(tx, work)
                self._lower_floor(tx)
        out.issued = _issued(tx, before)
        self._floor = self._candidate
        return out

    def answer(self, tx: Tx, action: Answer) -> Outcome:
        """The task the answer names, or else the target's open tasks of the incident; an
        answer that needs an acknowledgement first (decline, accept, done) acknowledges."""
        out = Outcome()
        self._begin(tx, action.at_ms, out)
        (before,) = tx.conn.execute(_LAST).fetchone()
        task = task_store.get_task(tx.conn, action.task) if action.task else None
        if task is not None:
            chosen = [task]
        else:
            states = tuple(s.value for s in sorted(OPEN_STATES))
            chosen = sorted(
                task_store.list_tasks(
                    tx.conn, incident=action.thread, target=action.target, states=states,
                    limit=1000,
                ),
                key=lambda t: t.id,
            )  # fmt: skip
        if not chosen:
            out.unmatched += 1
        for one in chosen:
            moves = [action.state]
            if action.state in _NEEDS_ACK and one.state not in (
                TaskState.ACKNOWLEDGED,
                action.state,
                TaskState.ACCEPTED,
            ):
                moves.insert(0, TaskState.ACKNOWLEDGED)
            try:
                for state in moves:
                    self.hub.tasks.move_in(tx, one.id, state, one.target, action.by, action.reason)
                    out.moves += 1
            except (Conflict, NotFound):
                out.refused += 1
        if action.state is TaskState.DECLINED:  # may hand the step to the next candidate
            out.issued = _issued(tx, before)
            if out.issued:
                self._lower_floor(tx)
        self._floor = self._candidate
        return out

    def climb(self, tx: Tx, at_ms: int) -> Outcome:
        out = Outcome()
        self._begin(tx, at_ms, out)
        self._floor = self._candidate
        return out


def _issued(tx: Tx, after: int) -> list[Task]:
    out = []
    for _, topic, value in tx.conn.execute(_NEW, (after,)).fetchall():
        if topic == _TASKS:
            envelope: dict[str, Any] = orjson.loads(bytes(value))
            if envelope["type"] == "task.issued":
                out.append(Task.model_validate(envelope["data"]["task"]))
    return out
