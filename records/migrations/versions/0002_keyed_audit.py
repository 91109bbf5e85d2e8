"""The keyed audit chain: a signature on every record, an append-only head.

Revision ID: 0002
Revises: 0001

``audit_log`` gains ``key_id`` and ``hmac`` (NULL on the records already there: they were
written before the chain was keyed, and the first signed record seals them). The one-row,
updated ``audit_head`` becomes an append-only table of one signed row per record; the head kept
from 0001 (if any record was written) is its first row, unsigned.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from records._schema import now_ms, run_append_only

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("key_id", sa.String(32), nullable=True))
    op.add_column("audit_log", sa.Column("hmac", sa.String(64), nullable=True))
    bind = op.get_bind()
    old = bind.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
    op.drop_table("audit_head")
    head = op.create_table(
        "audit_head",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("hmac", sa.String(64), nullable=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    if old is not None and int(old.seq) > 0:
        op.bulk_insert(head, [{"seq": int(old.seq), "hash": old.hash, "at_ms": now_ms()}])
    run_append_only(bind, ["audit_head"])
