"""Initial schema: event log and offsets (embedded bus), outbox (Kafka relay), adapters,
incidents, tasks, emitted-once events.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A 64-bit id on PostgreSQL; on SQLite the rowid alias (INTEGER PRIMARY KEY).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log",
        sa.Column("offset", BigId, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text()),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("log_topic_offset", "log", ["topic", "offset"])
    op.create_table(
        "consumer_offsets",
        sa.Column("grp", sa.Text(), primary_key=True),
        sa.Column("topic", sa.Text(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("offset", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text()),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("sent_ms", sa.BigInteger()),
        sqlite_autoincrement=True,
    )
    op.create_index("outbox_unsent", "outbox", ["sent_ms", "id"])
    op.create_table(
        "adapters",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("jurisdiction", sa.Text(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False, unique=True),
        sa.Column("created", sa.Text(), nullable=False),
        sa.Column("revoked", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "incidents",
        sa.Column("sender", sa.Text(), primary_key=True),
        sa.Column("identifier", sa.Text(), primary_key=True),
        sa.Column("thread", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("msg_type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("sent", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    op.create_index("incidents_thread", "incidents", ["thread", "version"])
    op.create_index("incidents_identifier", "incidents", ["identifier"])
    op.create_index("incidents_received", "incidents", ["received_ms"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("incident", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    op.create_index("tasks_incident", "tasks", ["incident"])
    op.create_index("tasks_target_state", "tasks", ["target", "state"])
    op.create_table("emitted", sa.Column("event_id", sa.Text(), primary_key=True))


def downgrade() -> None:
    for table in ("emitted", "tasks", "incidents", "adapters", "outbox", "consumer_offsets", "log"):
        op.drop_table(table)
