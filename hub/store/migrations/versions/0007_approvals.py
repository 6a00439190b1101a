"""Approval requests to the regional coordinator, and playbook-own escalation ladders (issue 5).

``approvals``: one row per approval step and cause (its id derives from them like a task id, so
a redelivered incident finds it there). The held tasks wait in ``tasks_json`` (each with its
ladder) until a coordinator approves; ``expires_ms`` is the expiry timer, a row scanned like the
tasks' deadlines, and every decision is a compare-and-set on ``state``.

``task_ladders``: the rungs (``[[level, wait_ms], ...]``) a task climbs when its playbook gives
it a ladder of its own (``step``: the escalate step that did); a task without a row climbs its
agreement's ladder.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("incident", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("lane", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("playbook", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("approver", sa.Text(), nullable=False),
        sa.Column("question_zh", sa.Text(), nullable=False),
        sa.Column("question_en", sa.Text(), nullable=False),
        sa.Column("requested_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("on_expiry", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("tasks_json", sa.LargeBinary(), nullable=False),
        sa.Column("decided_by", sa.Text()),
        sa.Column("decided_ms", sa.BigInteger()),
        sa.Column("reason", sa.Text()),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("approvals_state_expires", "approvals", ["state", "expires_ms"])
    op.create_index("approvals_incident", "approvals", ["incident"])
    op.create_table(
        "task_ladders",
        sa.Column("task", sa.Text(), primary_key=True),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("rungs", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("task_ladders")
    op.drop_index("approvals_incident", table_name="approvals")
    op.drop_index("approvals_state_expires", table_name="approvals")
    op.drop_table("approvals")
