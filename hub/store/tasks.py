"""Tasks as stored: the current state, and the full task document as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from hub.errors import ConcurrentUpdate
from hub.model.task import Task, TaskState
from hub.store.sql import Connection, insert_values

# States in which a task waits for its target's answer: the escalation clock runs.
AWAITING_ANSWER = frozenset({TaskState.ISSUED, TaskState.DELIVERED, TaskState.ESCALATED})


def _row(task: Task, data: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps(
        task.model_dump(mode="json") if data is None else data, option=orjson.OPT_SORT_KEYS
    )


def insert_task(
    conn: Connection, task: Task, due_ms: int, now_ms: int, data: dict[str, Any] | None = None
) -> bool:
    """Insert unless a task with this id exists; True when it was new. ``data`` is the task
    already rendered as JSON-ready data, if the caller has it."""
    cur = conn.execute(
        "INSERT INTO tasks (id, incident, target, state, due_ms, updated_ms, body, next_due_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (
            task.id,
            task.incident,
            task.target,
            task.state.value,
            due_ms,
            now_ms,
            _row(task, data),
            due_ms if task.state in AWAITING_ANSWER else None,
        ),
    )
    return cur.rowcount == 1


def insert_row(
    conn: Connection,
    task_id: str,
    incident: str,
    target: str,
    due_ms: int,
    now_ms: int,
    body: bytes,
) -> bool:
    """``insert_task`` for a task already rendered (by the planner): state ``issued``."""
    return insert_rows(conn, [(task_id, incident, target, due_ms, now_ms, body)])[0]


def insert_rows(
    conn: Connection, rows: Sequence[tuple[str, str, str, int, int, bytes]]
) -> list[bool]:
    """``insert_row`` for each of ``rows`` (id, incident, target, due, now, body), written by
    multi-row statements (``sql.insert_values``); whether each was new (False: it was there
    already, or earlier in ``rows``)."""
    cursors = insert_values(
        conn,
        "INSERT INTO tasks (id, incident, target, state, due_ms, updated_ms, body, next_due_ms)",
        [
            (i, incident, target, "issued", due, now, body, due)
            for i, incident, target, due, now, body in rows
        ],
        " ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    new = {row[0] for cur in cursors for row in cur.fetchall()}
    answers = []
    for row in rows:
        answers.append(row[0] in new)
        new.discard(row[0])  # an id given twice is new once, the first time
    return answers


def save_task(conn: Connection, task: Task, now_ms: int, previous: TaskState) -> None:
    """Write ``task``'s new state over ``previous`` (compare-and-set): if another transaction
    moved the task since it was read, raise ``ConcurrentUpdate`` so the job runs again."""
    # An answer stops the escalation clock; only a task still awaiting one keeps its timer.
    stop = 0 if task.state in AWAITING_ANSWER else 1
    cur = conn.execute(
        "UPDATE tasks SET state = ?, updated_ms = ?, body = ?, "
        "next_due_ms = CASE WHEN ? = 1 THEN NULL ELSE next_due_ms END "
        "WHERE id = ? AND state = ?",
        (task.state.value, now_ms, _row(task), stop, task.id, previous.value),
    )
    if cur.rowcount != 1:
        raise ConcurrentUpdate(f"task {task.id} changed while it was being updated")


def get_task(conn: Connection, task_id: str) -> Task | None:
    row = conn.execute("SELECT body FROM tasks WHERE id = ?", (task_id,)).fetchone()
    return Task.model_validate_json(row[0]) if row else None


def list_tasks(
    conn: Connection,
    *,
    incident: str | None = None,
    target: str | None = None,
    states: tuple[str, ...] = (),
    limit: int = 500,
) -> list[Task]:
    where, args = [], []
    if incident is not None:
        where.append("incident = ?")
        args.append(incident)
    if target is not None:
        where.append("target = ?")
        args.append(target)
    if states:
        where.append(f"state IN ({','.join('?' * len(states))})")
        args.extend(states)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT body FROM tasks {clause} ORDER BY updated_ms DESC, id LIMIT ?", (*args, limit)
    ).fetchall()
    return [Task.model_validate_json(r[0]) for r in rows]


def due_for_escalation(conn: Connection, now_ms: int, limit: int) -> list[tuple[Task, int, int]]:
    """Tasks still awaiting an answer whose next escalation is due at ``now_ms``: (task, rung,
    due_ms), earliest first."""
    states = tuple(s.value for s in sorted(AWAITING_ANSWER))
    rows = conn.execute(
        "SELECT body, rung, next_due_ms FROM tasks WHERE next_due_ms IS NOT NULL "
        f"AND next_due_ms <= ? AND state IN ({','.join('?' * len(states))}) "
        "ORDER BY next_due_ms, id LIMIT ?",
        (now_ms, *states, limit),
    ).fetchall()
    return [(Task.model_validate_json(body), rung, due) for body, rung, due in rows]


def climb(conn: Connection, task: Task, rung: int, next_due_ms: int | None, now_ms: int) -> bool:
    """Move ``task`` (read at ``rung``) one rung up; False if another transaction already did."""
    cur = conn.execute(
        "UPDATE tasks SET rung = ?, next_due_ms = ?, state = ?, body = ?, updated_ms = ? "
        "WHERE id = ? AND rung = ?",
        (rung + 1, next_due_ms, task.state.value, _row(task), now_ms, task.id, rung),
    )
    return cur.rowcount == 1


def next_deadline(conn: Connection) -> int | None:
    """The earliest escalation deadline of any task awaiting an answer, if there is one."""
    states = tuple(s.value for s in sorted(AWAITING_ANSWER))
    row = conn.execute(
        f"SELECT MIN(next_due_ms) FROM tasks WHERE state IN ({','.join('?' * len(states))})",
        states,
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
