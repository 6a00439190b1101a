"""Console users, their sessions and sign-in attempts (issue 7).

``users``: argon2 password hashes only; an officer has exactly one jurisdiction, a coordinator
or an administrator none. ``sessions``: the SHA-256 of the cookie, never the cookie itself.
``signin_attempts``: every sign-in (ok, failed, limited), counted by username and by client
address for the rate limit, in the database so that every hub instance counts the same.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("jurisdiction", sa.Text()),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(role = 'officer' AND jurisdiction IS NOT NULL) OR "
            "(role IN ('coordinator', 'admin') AND jurisdiction IS NULL)",
            name="users_role_jurisdiction",
        ),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column(
            "username",
            sa.Text(),
            sa.ForeignKey("users.username", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("sessions_username", "sessions", ["username"])
    op.create_index("sessions_expires", "sessions", ["expires_ms"])
    op.create_table(
        "signin_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('ok', 'failed', 'limited')", name="signin_attempts_outcome"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("signin_attempts_username", "signin_attempts", ["username", "at_ms"])
    op.create_index("signin_attempts_address", "signin_attempts", ["address", "at_ms"])


def downgrade() -> None:
    for table in ("signin_attempts", "sessions", "users"):
        op.drop_table(table)
