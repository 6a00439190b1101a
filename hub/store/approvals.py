"""Approval requests as stored, and the ladders of tasks whose playbook gives them their own.

Every change of an approval's state is a compare-and-set on ``state``: of two coordinators
deciding at once, or a decision racing the expiry timer, exactly one changes the row; the other
gets ``False`` and reads what won.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hub.model.approvals import ApprovalState, OnExpiry
from hub.model.envelope import Lane
from hub.model.task import Task
from hub.store.sql import Connection

Rungs = tuple[tuple[str, int], ...]
"""A ladder: (level, wait in ms before the next rung), lowest rung first."""


@dataclass(frozen=True, slots=True)
class HeldTask:
    """A task an approval holds, and the playbook's own ladder it climbs once issued."""

    task: Task
    ladder_step: str = ""
    ladder: Rungs = ()


@dataclass(frozen=True, slots=True)
class Approval:
    id: str
    incident: str
    sender: str
    lane: Lane
    cause: str
    playbook: str
    version: int
    step: str
    approver: str
    question_zh: str
    question_en: str
    requested_ms: int
    expires_ms: int
    on_expiry: OnExpiry
    state: ApprovalState
    held: tuple[HeldTask, ...]
    decided_by: str | None = None
    decided_ms: int | None = None
    reason: str | None = None


_COLUMNS = (
    "id, incident, sender, lane, cause, playbook, version, step, approver, question_zh, "
    "question_en, requested_ms, expires_ms, on_expiry, state, tasks_json, decided_by, "
    "decided_ms, reason"
)


def held_json(held: Sequence[HeldTask]) -> bytes:
    """The held tasks as stored (and as the planner renders them): sorted by task id."""
    return orjson.dumps(
        [
            {
                "task": h.task.model_dump(mode="json"),
                "ladder_step": h.ladder_step,
                "ladder": [list(r) for r in h.ladder],
            }
            for h in sorted(held, key=lambda h: h.task.id)
        ],
        option=orjson.OPT_SORT_KEYS,
    )


def parse_held(raw: bytes | str) -> tuple[HeldTask, ...]:
    items: list[dict[str, Any]] = orjson.loads(raw)
    return tuple(
        HeldTask(
            Task.model_validate(h["task"]),
            h["ladder_step"],
            tuple((str(level), int(wait)) for level, wait in h["ladder"]),
        )
        for h in items
    )


def _approval(row: Sequence[Any]) -> Approval:
    return Approval(
        id=row[0],
        incident=row[1],
        sender=row[2],
        lane=Lane(row[3]),
        cause=row[4],
        playbook=row[5],
        version=int(row[6]),
        step=row[7],
        approver=row[8],
        question_zh=row[9],
        question_en=row[10],
        requested_ms=int(row[11]),
        expires_ms=int(row[12]),
        on_expiry=OnExpiry(row[13]),
        state=ApprovalState(row[14]),
        held=parse_held(bytes(row[15])),
        decided_by=row[16],
        decided_ms=None if row[17] is None else int(row[17]),
        reason=row[18],
    )


def insert_approval(conn: Connection, a: Approval, tasks_json: bytes, now_ms: int) -> bool:
    """Insert unless an approval with this id exists; True when it was new."""
    cur = conn.execute(
        f"INSERT INTO approvals ({_COLUMNS}, updated_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (
            a.id,
            a.incident,
            a.sender,
            a.lane.value,
            a.cause,
            a.playbook,
            a.version,
            a.step,
            a.approver,
            a.question_zh,
            a.question_en,
            a.requested_ms,
            a.expires_ms,
            a.on_expiry.value,
            a.state.value,
            tasks_json,
            a.decided_by,
            a.decided_ms,
            a.reason,
            now_ms,
        ),
    )
    return cur.rowcount == 1


def get_approval(conn: Connection, approval_id: str) -> Approval | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
    return _approval(row) if row else None


def list_approvals(
    conn: Connection,
    *,
    state: ApprovalState | None = None,
    incident: str | None = None,
    limit: int = 500,
) -> list[Approval]:
    """Approvals, the soonest to expire first."""
    where, args = [], []
    if state is not None:
        where.append("state = ?")
        args.append(state.value)
    if incident is not None:
        where.append("incident = ?")
        args.append(incident)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM approvals {clause} ORDER BY expires_ms, id LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [_approval(r) for r in rows]


def replace_held(conn: Connection, approval_id: str, tasks_json: bytes, now_ms: int) -> bool:
    """Store a pending approval's held tasks anew (an Update reached more targets)."""
    cur = conn.execute(
        "UPDATE approvals SET tasks_json = ?, updated_ms = ? WHERE id = ? AND state = ?",
        (tasks_json, now_ms, approval_id, ApprovalState.REQUESTED.value),
    )
    return cur.rowcount == 1


def decide(
    conn: Connection,
    approval_id: str,
    state: ApprovalState,
    *,
    by: str,
    at_ms: int,
    reason: str | None,
    now_ms: int,
) -> bool:
    """Move a pending approval to ``state``; False if it was no longer pending."""
    cur = conn.execute(
        "UPDATE approvals SET state = ?, decided_by = ?, decided_ms = ?, reason = ?, "
        "updated_ms = ? WHERE id = ? AND state = ?",
        (state.value, by, at_ms, reason, now_ms, approval_id, ApprovalState.REQUESTED.value),
    )
    return cur.rowcount == 1


def due_to_expire(conn: Connection, now_ms: int, limit: int) -> list[Approval]:
    """Pending approvals whose time ran out at ``now_ms``, the earliest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM approvals WHERE state = ? AND expires_ms <= ? "
        "ORDER BY expires_ms, id LIMIT ?",
        (ApprovalState.REQUESTED.value, now_ms, limit),
    ).fetchall()
    return [_approval(r) for r in rows]


def next_expiry(conn: Connection) -> int | None:
    row = conn.execute(
        "SELECT MIN(expires_ms) FROM approvals WHERE state = ?", (ApprovalState.REQUESTED.value,)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def insert_ladder(conn: Connection, task_id: str, step: str, rungs: Rungs) -> None:
    """Give a task its playbook's own ladder (kept if it already has one)."""
    conn.execute(
        "INSERT INTO task_ladders (task, step, rungs) VALUES (?, ?, ?) "
        "ON CONFLICT (task) DO NOTHING",
        (task_id, step, orjson.dumps([list(r) for r in rungs]).decode()),
    )


def ladder_of(conn: Connection, task_id: str) -> tuple[str, Rungs] | None:
    """The escalate step and rungs of a task's own ladder; None: its agreement's ladder."""
    row = conn.execute("SELECT step, rungs FROM task_ladders WHERE task = ?", (task_id,)).fetchone()
    if row is None:
        return None
    return row[0], tuple((str(level), int(wait)) for level, wait in orjson.loads(row[1]))
