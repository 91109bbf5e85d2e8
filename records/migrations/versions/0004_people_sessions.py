"""People and sessions: forced password change, TOTP, idle timeout; per-client counters.

Revision ID: 0004
Revises: 0003

``users`` gains ``must_change_password`` (false for existing users), ``totp_secret``,
``totp_enrolled_at`` and ``totp_last_step``; ``sessions`` gains ``last_seen_at`` (NULL on the
sessions already open: their idle time counts from their creation); ``client_counters`` is new.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("users", sa.Column("totp_secret", sa.Text, nullable=True))
    op.add_column("users", sa.Column("totp_enrolled_at", sa.BigInteger, nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger, nullable=True))
    op.add_column("sessions", sa.Column("last_seen_at", sa.BigInteger, nullable=True))
    op.create_table(
        "client_counters",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
