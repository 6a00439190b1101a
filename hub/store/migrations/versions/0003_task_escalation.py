"""Durable escalation: each task's rung on its agreement's ladder and when the next one is due.

``next_due_ms`` starts as the acknowledgement deadline; the escalator climbs one rung when it
passes (compare-and-set on ``rung``, so one climb per rung however many hubs run) and sets the
next deadline from the ladder, or NULL at the top. Timers are rows, not sleeps: a deadline that
passes while no hub runs is found at the next start.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("rung", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_due_ms", sa.BigInteger(), nullable=True))
    op.execute("UPDATE tasks SET next_due_ms = due_ms WHERE state IN ('issued', 'delivered')")
    op.create_index("tasks_next_due", "tasks", ["next_due_ms"])


def downgrade() -> None:
    op.drop_index("tasks_next_due", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("next_due_ms")
        batch.drop_column("rung")
