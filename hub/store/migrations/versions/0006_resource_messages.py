"""EDXL-RM resource messages and their line states (issue 6), and a minimum level per stock.

``rm_lines``: one row per line of a resource request, keyed by the hold that set its stock
aside; ``state`` follows ``hub.registry.rm_state`` and every move is a compare-and-set on
``version``. The CHECKs repeat the state machine's quantity rules, so no code path can store a
line that commits more than was requested.
``balances.minimum``: the level under which free stock (on hand − held) raises ``stock.low``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rm_lines",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("hold_id", sa.Text(), nullable=False),
        sa.Column("depot", sa.Text(), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("needed_by", sa.Text(), nullable=False),
        sa.Column("deliver_to", sa.Text(), nullable=False),
        sa.Column("requester", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("answered", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("committed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("request", "line_no", name="rm_lines_request_line"),
        sa.CheckConstraint("quantity > 0", name="rm_lines_quantity_positive"),
        sa.CheckConstraint("answered >= 0 AND answered <= quantity", name="rm_lines_answered"),
        sa.CheckConstraint(
            "committed >= 0 AND committed <= quantity AND committed <= answered",
            name="rm_lines_committed",
        ),
    )
    op.add_column(
        "balances",
        sa.Column("minimum", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("balances", "minimum")
    op.drop_table("rm_lines")
