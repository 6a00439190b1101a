"""One row per (thread, version): the constraint, not the isolation level, numbers versions.

On PostgreSQL the hub runs at READ COMMITTED: two Updates of one thread committing at the same
time would both read the same highest version; with this index the second fails with a unique
violation, is retried, and takes the next number.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("incidents_thread", table_name="incidents")
    op.create_index("incidents_thread", "incidents", ["thread", "version"], unique=True)


def downgrade() -> None:
    op.drop_index("incidents_thread", table_name="incidents")
    op.create_index("incidents_thread", "incidents", ["thread", "version"])
