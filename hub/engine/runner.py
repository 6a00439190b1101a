"""The engine's consumer: incidents in, tasks stored and published, in one transaction.

At-least-once delivery is made exactly-once in effect by derived task ids: a redelivered incident
plans the same ids, the store refuses them, and no ``task.issued`` is emitted twice. Approval
requests (:mod:`hub.engine.approvals`) are stored the same way: a derived id, asked once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hub.bus import topics
from hub.bus.port import Record
from hub.clock import Clock
from hub.engine import approvals
from hub.engine.planning import SOURCE, ApprovalRow, IssuedRow, Planned
from hub.engine.workers import Planner
from hub.errors import ConcurrentUpdate, InvalidInput
from hub.model.approvals import APPROVAL_EXTENDED, ApprovalExtended, ApprovalState, OnExpiry
from hub.model.envelope import Lane, derived_id, format_time, parse_time
from hub.model.events import TASK_UPDATE_TYPES, EvaluationFailed, TaskUpdated, make_event
from hub.model.task import OPEN_STATES, Task, TaskState
from hub.store import approvals as approval_store
from hub.store import incidents as incident_store
from hub.store import tasks as task_store
from hub.store.approvals import HeldTask
from hub.store.db import Runner, Tx
from hub.store.outbox import Emitter, first_emission
from hub.store.sql import pipeline

ReleaseHolds = Callable[[Tx, Task, str], None]
"""Called in the cancelling transaction for each task a Cancel or a restart cancels, with the
reason: where what the task holds (the registry's stock holds) is given back."""


def release_nothing(tx: Tx, task: Task, reason: str) -> None:
    """The default ``ReleaseHolds``: tasks hold nothing until the registry ties its holds to
    them (the registry's wiring in ``hub/runtime.py`` passes its own)."""


class EngineRunner:
    """Turns ``incident.reported`` events of one lane into tasks.

    Planning (pure) runs wherever the ``Planner`` puts it; writing happens here, in one
    transaction per batch: task rows and their ``task.issued`` events together.
    """

    def __init__(
        self,
        db: Runner,
        emitter: Emitter,
        clock: Clock,
        planner: Planner,
        lane: Lane = Lane.ACTUAL,
        on_issued: Callable[[int], None] | None = None,
        release: ReleaseHolds | None = None,
    ) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock
        self._planner = planner
        self.lane = lane
        self.group = "engine" if lane is Lane.ACTUAL else "engine.exercise"
        self.topics = (topics.for_lane(topics.INCIDENTS, lane),)
        self._on_issued = on_issued
        self._release = release or release_nothing

    async def handle(self, records: Sequence[Record]) -> None:
        results = await self._planner.plan([r.value for r in records], self.lane)
        work: list[Planned] = []
        for record, result in zip(records, results, strict=True):
            if isinstance(result, InvalidInput):
                raise InvalidInput(f"{record.topic}@{record.offset}: {result}")
            if result is not None:
                work.append(result)
        if work:
            issued = await self._db.run(lambda tx: self.write_in(tx, work))
            if issued and self._on_issued is not None:
                self._on_issued(issued)

    def write_in(self, tx: Tx, work: list[Planned]) -> int:
        """Write planned work (tasks, approvals, cancellations) in the caller's transaction;
        how many tasks were issued.

        Items are written in order; a run of items that cancel and restart nothing has its
        task rows written together (``_issue``): a few statements for the whole run, not a few
        per incident."""
        issued = 0
        run: list[tuple[Planned, Sequence[IssuedRow], Sequence[ApprovalRow]]] = []
        for item in work:
            if not item.cancel and not item.restart:
                run.append((item, item.rows, item.approvals))
                continue
            issued += self._issue(tx, run)
            run = []
            if item.cancel:
                reason = f"incident cancelled by {item.key}"
                self._cancel_approvals(tx, item, None, reason)  # first: no approval issues more
                self._cancel_open(tx, item, None, reason)
                continue
            rows, asks = self._restart(tx, item)
            issued += self._issue(tx, [(item, rows, asks)])
        return issued + self._issue(tx, run)

    def _issue(
        self, tx: Tx, run: Sequence[tuple[Planned, Sequence[IssuedRow], Sequence[ApprovalRow]]]
    ) -> int:
        """Issue the task rows of ``run`` (each item with its rows and approvals to ask), then
        ask each item's approvals and record its failures, item by item; how many tasks were
        issued. Two round trips on PostgreSQL however many tasks: the inserts, then the ladders
        and events of those that were new."""
        if not run:
            return 0
        tasks_topic = topics.for_lane(topics.TASKS, self.lane)
        now = self._clock.now_ms()
        rows = [row for _, item_rows, _ in run for row in item_rows]
        new = task_store.insert_rows(
            tx.conn, [(r.id, r.incident, r.target, r.due_ms, now, r.body) for r in rows]
        )
        fresh = [row for row, is_new in zip(rows, new, strict=True) if is_new]
        with pipeline(tx.conn):
            for row in fresh:
                if row.ladder:
                    approval_store.insert_ladder(tx.conn, row.id, row.ladder_step, row.ladder)
            self._emitter.append_many(
                tx, [(tasks_topic, row.target, row.event, now) for row in fresh]
            )
        issued = len(fresh)
        for item, _, asks in run:
            for ask in asks:
                issued += self._request(tx, item, ask, now)
            for playbook, reason in item.failures:
                self._emit_failure(tx, item, playbook, reason)
        return issued

    def _restart(
        self, tx: Tx, item: Planned
    ) -> tuple[tuple[IssuedRow, ...], tuple[ApprovalRow, ...]]:
        """Cancel the earlier rounds of the playbooks this Update restarts (open tasks and
        pending approvals); the rows to issue and the approvals to ask.

        A redelivered Update plans the same ids, which are kept (not cancelled, not issued
        twice). An Update the thread has moved past since (a redelivery after a later Update)
        restarts nothing and issues nothing for those playbooks: the later one decides."""
        if incident_store.next_version(tx.conn, item.thread) - 1 > item.version:
            rows = tuple(row for row in item.rows if row.playbook not in item.restart)
            asks = tuple(a for a in item.approvals if a.playbook not in item.restart)
            return rows, asks
        keep = frozenset(row.id for row in item.rows)
        asked = frozenset(a.id for a in item.approvals)
        for playbook in item.restart:
            reason = f"incident updated by {item.key}: playbook {playbook} restarted"
            self._cancel_approvals(tx, item, playbook, reason, asked)
            self._cancel_open(tx, item, playbook, reason, keep)
        return item.rows, item.approvals

    def _request(self, tx: Tx, item: Planned, ask: ApprovalRow, now: int) -> int:
        """Ask the coordinator once per approval id; returns how many tasks were issued (an
        Update of a thread whose approval was granted issues its newly reached held tasks)."""
        request = approval_store.Approval(
            id=ask.id,
            incident=item.thread,
            sender=item.sender,
            lane=self.lane,
            cause=item.cause,
            playbook=ask.playbook,
            version=ask.version,
            step=ask.step,
            approver=ask.approver,
            question_zh=ask.question_zh,
            question_en=ask.question_en,
            requested_ms=parse_time(item.received),
            expires_ms=ask.expires_ms,
            on_expiry=ask.on_expiry,
            state=ApprovalState.REQUESTED,
            held=ask.held,
        )
        if approval_store.insert_approval(tx.conn, request, ask.tasks_json, now):
            topic = topics.for_lane(topics.AUDIT, self.lane)
            self._emitter.append(tx, topic, item.thread, ask.event)
            return 0
        existing = approval_store.get_approval(tx.conn, ask.id)
        if existing is None:
            return 0
        known = {h.task.id for h in existing.held}
        new = [h for h in ask.held if h.task.id not in known]
        if not new:
            return 0  # a redelivery: asked already
        if existing.state is ApprovalState.REQUESTED:
            merged = approval_store.held_json((*existing.held, *new))
            if not approval_store.replace_held(tx.conn, ask.id, merged, now):
                raise ConcurrentUpdate(f"approval {ask.id} was decided meanwhile")  # run again
            self._emit_extended(tx, item, existing, new)
            return 0
        proceeded = existing.on_expiry is OnExpiry.PROCEED
        if existing.state is ApprovalState.APPROVED or (
            existing.state is ApprovalState.EXPIRED and proceeded
        ):
            at = parse_time(item.received)
            return len(approvals.issue_held(tx, self._emitter, new, at, item.cause, now))
        return 0  # rejected, cancelled, or expired with on_expiry: cancel

    def _emit_extended(
        self, tx: Tx, item: Planned, approval: approval_store.Approval, added: list[HeldTask]
    ) -> None:
        """``approval.extended``: the held tasks ``item`` (an Update) added to a pending
        request. Once per Update: a redelivery finds them held already and adds nothing."""
        payload = ApprovalExtended(
            approval=approval.id,
            incident=approval.incident,
            playbook=approval.playbook,
            step=approval.step,
            by=item.sender,
            at=item.received,
            tasks=[h.task for h in added],
        )
        envelope = make_event(
            APPROVAL_EXTENDED,
            payload,
            id=derived_id(approval.id, item.cause, APPROVAL_EXTENDED),
            source=SOURCE,
            time=item.received,
            jurisdiction=approval.sender,
            correlationid=approval.incident,
            causationid=item.cause,
            subject=approval.id,
            status=self.lane,
        )
        topic = topics.for_lane(topics.AUDIT, self.lane)
        self._emitter.append(tx, topic, approval.incident, envelope.encode())

    def _cancel_approvals(
        self,
        tx: Tx,
        item: Planned,
        playbook: str | None,
        reason: str,
        keep: frozenset[str] = frozenset(),
    ) -> None:
        approvals.cancel_pending(
            tx,
            self._emitter,
            item.thread,
            by=item.sender,
            reason=reason,
            at_ms=parse_time(item.received),
            cause=item.cause,
            now_ms=self._clock.now_ms(),
            playbook=playbook,
            keep=keep,
        )

    def _cancel_open(
        self,
        tx: Tx,
        item: Planned,
        playbook: str | None,
        reason: str,
        keep: frozenset[str] = frozenset(),
    ) -> None:
        """Cancel the thread's open tasks (only ``playbook``'s, if given; never those in
        ``keep``), each with a ``task.cancelled``, and release what each holds."""
        thread = item.thread
        states = tuple(s.value for s in sorted(OPEN_STATES))
        for task in task_store.list_tasks(tx.conn, incident=thread, states=states, limit=10_000):
            if task.id in keep or (playbook is not None and task.why.playbook != playbook):
                continue
            cancelled = task.model_copy(update={"state": TaskState.CANCELLED})
            task_store.save_task(tx.conn, cancelled, self._clock.now_ms(), task.state)
            self._release(tx, cancelled, reason)
            update = TaskUpdated(
                task=task.id,
                incident=thread,
                target=task.target,
                previous=task.state,
                state=TaskState.CANCELLED,
                by=item.sender,
                reason=reason,
                at=item.received,
            )
            envelope = make_event(
                TASK_UPDATE_TYPES[TaskState.CANCELLED],
                update,
                id=derived_id(task.id, "task.cancelled"),
                source=SOURCE,
                time=item.received,
                jurisdiction=task.target,
                correlationid=thread,
                causationid=item.cause,
                subject=task.id,
                status=self.lane,
            )
            self._emitter.append(
                tx, topics.for_lane(topics.TASK_UPDATES, self.lane), task.target, envelope.encode()
            )

    def _emit_failure(self, tx: Tx, item: Planned, playbook: str, reason: str) -> None:
        event_id = derived_id(item.cause, "evaluation.failed", playbook)
        if not first_emission(tx.conn, event_id):
            return
        payload = EvaluationFailed(incident=item.thread, playbook=playbook, reason=reason)
        envelope = make_event(
            "evaluation.failed",
            payload,
            id=event_id,
            source=SOURCE,
            time=format_time(self._clock.now_ms()),
            jurisdiction=item.sender,
            correlationid=item.thread,
            causationid=item.cause,
            status=self.lane,
        )
        self._emitter.append(
            tx, topics.for_lane(topics.AUDIT, self.lane), item.thread, envelope.encode()
        )
