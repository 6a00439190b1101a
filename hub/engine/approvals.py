"""Approval requests to the regional coordinator: decide, expire, cancel.

A playbook's ``approval`` step holds the tasks of the steps after it. The runner stores the
request (``approval.requested``) in the same transaction as the tasks issued before it; then:

- a coordinator **approves**: one transaction moves the request to ``approved`` (compare-and-set,
  so of two coordinators deciding at once one wins and the other is told it is done) and issues
  the held tasks exactly as the runner issues tasks (their planned ids, ``task.issued``, their
  acknowledgement deadline counted from the approval, their playbook's own ladder if any);
- a coordinator **rejects** (with a reason): nothing is issued;
- nobody decides by ``expires``: the expiry timer (a row, ``approvals.expires_ms``, scanned by
  the escalator like the tasks' deadlines, so restarts change nothing) applies ``on_expiry``:
  ``proceed`` issues the held tasks as of the moment the request expired, ``cancel`` issues none;
- a CAP ``Cancel`` of the incident (or a ``restart`` Update of its playbook) cancels it.

Each outcome is one ``approval.approved|rejected|expired|cancelled`` event naming the tasks it
issued. Only the regional coordinator decides: anyone else gets ``NotAllowed``, nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.bus import topics
from hub.clock import Clock
from hub.engine.planning import SOURCE, render
from hub.errors import ConcurrentUpdate, Conflict, InvalidInput, NotAllowed, NotFound
from hub.model.approvals import (
    APPROVAL_DECIDED_TYPES,
    ApprovalDecided,
    ApprovalState,
    OnExpiry,
)
from hub.model.envelope import derived_id, format_time, parse_time
from hub.model.events import make_event
from hub.model.task import TaskState
from hub.store import approvals as store
from hub.store import tasks as task_store
from hub.store.approvals import Approval, HeldTask
from hub.store.db import Runner, Tx
from hub.store.outbox import Emitter

COORDINATOR = "coordinator"
"""The console role that speaks for the approver ``regional_coordinator``."""

APPROVER_ROLES = {"regional_coordinator": COORDINATOR}

_BATCH = 100


def issue_held(
    tx: Tx, emitter: Emitter, held: Iterable[HeldTask], at_ms: int, cause: str, now_ms: int
) -> list[str]:
    """Issue held tasks as of ``at_ms`` (their deadline counts from then); their ids, those
    that were new. The same rows and events the runner writes, so issuing twice is a no-op."""
    issued = []
    at = format_time(at_ms)
    for h in held:
        window = parse_time(h.task.due) - parse_time(h.task.issued)
        task = h.task.model_copy(
            update={"issued": at, "due": format_time(at_ms + window), "state": TaskState.ISSUED}
        )
        ladder = (h.ladder_step, h.ladder) if h.ladder else None
        row = render(task, cause, task.lane, ladder)
        if not task_store.insert_row(
            tx.conn, row.id, row.incident, row.target, row.due_ms, now_ms, row.body
        ):
            continue
        if row.ladder:
            store.insert_ladder(tx.conn, row.id, row.ladder_step, row.ladder)
        emitter.append(tx, topics.for_lane(topics.TASKS, task.lane), row.target, row.event, at_ms)
        issued.append(task.id)
    return issued


def decided_event_id(approval: str, state: ApprovalState) -> str:
    return derived_id(approval, APPROVAL_DECIDED_TYPES[state])


def emit_decided(
    tx: Tx,
    emitter: Emitter,
    approval: Approval,
    state: ApprovalState,
    *,
    by: str,
    reason: str | None,
    at_ms: int,
    issued: list[str],
    cause: str | None = None,
) -> None:
    """The ``approval.<state>`` event of a decision, keyed by the incident thread."""
    payload = ApprovalDecided(
        approval=approval.id,
        incident=approval.incident,
        playbook=approval.playbook,
        step=approval.step,
        state=state,
        by=by,
        reason=reason,
        at=format_time(at_ms),
        issued=sorted(issued),
    )
    envelope = make_event(
        APPROVAL_DECIDED_TYPES[state],
        payload,
        id=decided_event_id(approval.id, state),
        source=SOURCE,
        time=format_time(at_ms),
        jurisdiction=approval.sender,
        correlationid=approval.incident,
        causationid=cause or derived_id(approval.id, "approval.requested"),
        subject=approval.id,
        status=approval.lane,
    )
    topic = topics.for_lane(topics.AUDIT, approval.lane)
    emitter.append(tx, topic, approval.incident, envelope.encode(), at_ms)


def cancel_pending(
    tx: Tx,
    emitter: Emitter,
    thread: str,
    *,
    by: str,
    reason: str,
    at_ms: int,
    cause: str,
    now_ms: int,
    playbook: str | None = None,
    keep: frozenset[str] = frozenset(),
) -> int:
    """Cancel the thread's pending approvals (only ``playbook``'s, never those in ``keep``).

    One decided meanwhile by a coordinator (a lost compare-and-set) raises ``ConcurrentUpdate``:
    the caller's transaction runs again and then cancels the tasks that approval issued."""
    cancelled = 0
    pending = store.list_approvals(
        tx.conn, state=ApprovalState.REQUESTED, incident=thread, limit=10_000
    )
    for approval in pending:
        if approval.id in keep or (playbook is not None and approval.playbook != playbook):
            continue
        if not store.decide(
            tx.conn,
            approval.id,
            ApprovalState.CANCELLED,
            by=by,
            at_ms=at_ms,
            reason=reason,
            now_ms=now_ms,
        ):
            raise ConcurrentUpdate(f"approval {approval.id} was decided while being cancelled")
        emit_decided(
            tx,
            emitter,
            approval,
            ApprovalState.CANCELLED,
            by=by,
            reason=reason,
            at_ms=at_ms,
            issued=[],
            cause=cause,
        )
        cancelled += 1
    return cancelled


class ApprovalService:
    """The coordinator's decisions, and the expiry of requests nobody decided."""

    def __init__(self, db: Runner, emitter: Emitter, clock: Clock) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock
        self.expired = 0

    async def get(self, approval_id: str) -> Approval:
        found = await self._db.run(lambda tx: store.get_approval(tx.conn, approval_id))
        if found is None:
            raise NotFound(f"no approval with id '{approval_id}'")
        return found

    async def find(
        self, state: ApprovalState | None = None, incident: str | None = None, limit: int = 500
    ) -> list[Approval]:
        return await self._db.run(
            lambda tx: store.list_approvals(tx.conn, state=state, incident=incident, limit=limit)
        )

    async def approve(
        self, approval_id: str, *, by: str, role: str, reason: str | None = None
    ) -> Approval:
        """Approve and issue the held tasks; approving again is answered as success."""
        return await self._db.run(
            lambda tx: self._decide(tx, approval_id, ApprovalState.APPROVED, by, role, reason)
        )

    async def reject(self, approval_id: str, *, by: str, role: str, reason: str) -> Approval:
        """Reject: the held tasks are never issued. A rejection needs a reason."""
        if not reason or not reason.strip():
            raise InvalidInput('a rejection needs a reason: {"reason": "..."}')
        return await self._db.run(
            lambda tx: self._decide(tx, approval_id, ApprovalState.REJECTED, by, role, reason)
        )

    def _decide(
        self,
        tx: Tx,
        approval_id: str,
        state: ApprovalState,
        by: str,
        role: str,
        reason: str | None,
    ) -> Approval:
        approval = store.get_approval(tx.conn, approval_id)
        if approval is None:
            raise NotFound(f"no approval with id '{approval_id}'")
        wanted = APPROVER_ROLES.get(approval.approver)
        if role != wanted:
            raise NotAllowed(
                f"approval {approval_id} is for the {approval.approver.replace('_', ' ')} "
                f"(role '{wanted}'), not for role '{role}'"
            )
        if approval.state is state:
            return approval
        if approval.state is not ApprovalState.REQUESTED:
            raise Conflict(f"approval {approval_id} is {approval.state}; it cannot be {state}")
        now = self._clock.now_ms()
        if now >= approval.expires_ms:
            raise Conflict(
                f"approval {approval_id} expired at {format_time(approval.expires_ms)}; "
                f"on_expiry '{approval.on_expiry}' applies"
            )
        if not store.decide(
            tx.conn, approval_id, state, by=by, at_ms=now, reason=reason, now_ms=now
        ):
            raise ConcurrentUpdate(f"approval {approval_id} changed while it was being decided")
        issued: list[str] = []
        if state is ApprovalState.APPROVED:
            cause = decided_event_id(approval_id, state)
            issued = issue_held(tx, self._emitter, approval.held, now, cause, now)
        emit_decided(
            tx, self._emitter, approval, state, by=by, reason=reason, at_ms=now, issued=issued
        )
        found = store.get_approval(tx.conn, approval_id)
        assert found is not None
        return found

    async def expire_due(self) -> int:
        """Apply ``on_expiry`` to every request whose time ran out (catching up after a
        restart); returns how many expired here (another instance may take some)."""
        total = 0
        while True:
            now = self._clock.now_ms()
            done = await self._db.run(lambda tx, n=now: self.expire_in(tx, n))  # type: ignore[misc]
            total += done
            if done < _BATCH:
                break
        self.expired += total
        return total

    def expire_in(self, tx: Tx, now_ms: int) -> int:
        """Apply the expiries due by ``now_ms`` (a batch of them) in the caller's transaction;
        how many were applied."""
        expired = 0
        for approval in store.due_to_expire(tx.conn, now_ms, _BATCH):
            at = approval.expires_ms  # as of when it fell due, not when the hub noticed
            reason = f"nobody decided by {format_time(at)}; on_expiry: {approval.on_expiry}"
            if not store.decide(
                tx.conn,
                approval.id,
                ApprovalState.EXPIRED,
                by="hub",
                at_ms=at,
                reason=reason,
                now_ms=now_ms,
            ):
                continue  # another instance, or a coordinator, got there first
            issued: list[str] = []
            if approval.on_expiry is OnExpiry.PROCEED:
                cause = decided_event_id(approval.id, ApprovalState.EXPIRED)
                issued = issue_held(tx, self._emitter, approval.held, at, cause, now_ms)
            emit_decided(
                tx,
                self._emitter,
                approval,
                ApprovalState.EXPIRED,
                by="hub",
                reason=reason,
                at_ms=at,
                issued=issued,
            )
            expired += 1
        return expired

    async def next_expiry(self) -> int | None:
        return await self._db.run(lambda tx: store.next_expiry(tx.conn))
