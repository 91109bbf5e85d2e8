"""Dispositions as transitions, their reason and action lists, and the transparency tables.

Revision ID: 0003
Revises: 0002

Adds ``alert_transitions`` (a disposition state machine of append-only transitions, replacing
``alert_dispositions``), ``disposition_codes`` (seeded with the default lists),
``policy_documents`` and ``transparency_designees`` (append-only). ``alert_dispositions`` is
dropped when it is empty; a database holding dispositions keeps them as
``alert_dispositions_before_0003`` (still append-only), since they are evidence.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from records._schema import NAMING_CONVENTION, run_append_only, seed_codes

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

alert_transitions = sa.Table(
    "alert_transitions",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(128), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # 1, 2, ... per alert
    sa.Column("log_id", sa.String(48), nullable=False),  # the alert's id in its Redis log
    sa.Column("alert_at", sa.BigInteger, nullable=False, index=True),  # the log id's time
    sa.Column("hotlist_id", sa.Integer, nullable=True),
    sa.Column("hotlist", sa.String(64), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("match_kind", sa.String(16), nullable=False),
    sa.Column("covert", sa.Boolean, nullable=False),
    sa.Column("from_state", sa.String(16), nullable=False),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("undo_of", sa.Integer, nullable=True),  # the seq this transition undid
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Column("at", sa.BigInteger, nullable=False, index=True),
    sa.Column("reason_code", sa.String(32), nullable=True),
    sa.Column("reason_text", sa.Text, nullable=True),
    sa.Column("action_code", sa.String(32), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("deadline_at", sa.BigInteger, nullable=True),  # set while verifying
    sa.Column("claimed_by", sa.String(64), nullable=True),  # who holds the alert after it
    sa.UniqueConstraint("alert_id", "seq"),
)

#: The reason and action lists of dispositions, managed by administrators. A code is retired,
#: never deleted, so old transitions keep their labels.
disposition_codes = sa.Table(
    "disposition_codes",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),  # reason|action
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("label", sa.String(128), nullable=False),
    sa.Column("needs_text", sa.Boolean, nullable=False),  # the transition must describe it
    sa.Column("position", sa.Integer, nullable=False),  # the order the console lists them
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("retired_by", sa.String(128), nullable=True),
    sa.Column("retired_at", sa.BigInteger, nullable=True),
)

policy_documents = sa.Table(
    "policy_documents",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("version", sa.Integer, nullable=False, unique=True),
    sa.Column("title", sa.String(256), nullable=False),
    sa.Column("media_type", sa.String(32), nullable=False),  # text/markdown | application/pdf
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("effective_on", sa.Date, nullable=False),
    sa.Column("published_by", sa.String(128), nullable=False),
    sa.Column("published_at", sa.BigInteger, nullable=False),
)

#: Who holds a public role (the ALPR administrator, the custodian of records), one row per
#: designation; the newest row of a role is the current designee.
transparency_designees = sa.Table(
    "transparency_designees",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("role", sa.String(32), nullable=False, index=True),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("since", sa.Date, nullable=False),
    sa.Column("recorded_by", sa.String(128), nullable=False),
    sa.Column("recorded_at", sa.BigInteger, nullable=False),
)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind)
    seed_codes(disposition_codes, bind)
    run_append_only(bind, ["alert_transitions", "policy_documents", "transparency_designees"])
    if sa.inspect(bind).has_table("alert_dispositions"):
        kept = bind.execute(sa.text("SELECT count(*) FROM alert_dispositions")).scalar_one()
        if kept:
            op.rename_table("alert_dispositions", "alert_dispositions_before_0003")
        else:
            op.drop_table("alert_dispositions")
