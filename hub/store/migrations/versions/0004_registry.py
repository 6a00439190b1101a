"""The resource registry: depots, the stock ledger, balances derived from it, holds, and what
each owner has lent each partner per day.

``stock_ledger`` is append-only: every change of stock is an entry with its deltas (on hand,
held), who, when and why. ``balances`` is the ledger summed, kept in the same transaction by a
guarded UPDATE, and can be rebuilt from the ledger; its CHECKs are the last line against
oversell.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "depots",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("jurisdiction", sa.Text(), nullable=False),
        sa.Column("name_zh", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("demo", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("depots_jurisdiction", "depots", ["jurisdiction"])
    op.create_table(
        "stock_ledger",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("depot", sa.Text(), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("d_on_hand", sa.BigInteger(), nullable=False),
        sa.Column("d_held", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("hold_id", sa.Text()),
        sa.Column("request", sa.Text()),
        sa.Column("partner", sa.Text()),
        sa.Column("agreement", sa.Text()),
        sa.Column("clause", sa.Text()),
        sqlite_autoincrement=True,
    )
    op.create_index("stock_ledger_depot_item", "stock_ledger", ["depot", "item", "id"])
    op.create_table(
        "balances",
        sa.Column("depot", sa.Text(), primary_key=True),
        sa.Column("item", sa.Text(), primary_key=True),
        sa.Column("on_hand", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("held", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("floor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.CheckConstraint("held >= 0 AND held <= on_hand", name="balances_held_covered"),
        sa.CheckConstraint("floor >= 0", name="balances_floor_positive"),
    )
    op.create_table(
        "holds",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("depot", sa.Text(), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("partner", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("agreement", sa.Text()),
        sa.Column("clause", sa.Text()),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("day", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger()),
        sa.Column("actor", sa.Text(), nullable=False),
    )
    op.create_index("holds_due", "holds", ["state", "expires_ms"])
    op.create_table(
        "daily_shared",
        sa.Column("owner", sa.Text(), primary_key=True),
        sa.Column("partner", sa.Text(), primary_key=True),
        sa.Column("item", sa.Text(), primary_key=True),
        sa.Column("day", sa.Text(), primary_key=True),
        sa.Column("quantity", sa.BigInteger(), nullable=False, server_default="0"),
        sa.CheckConstraint("quantity >= 0", name="daily_shared_positive"),
    )


def downgrade() -> None:
    for table in ("daily_shared", "holds", "balances", "stock_ledger", "depots"):
        op.drop_table(table)
