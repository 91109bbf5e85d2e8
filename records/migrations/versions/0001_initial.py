"""The records schema as plateflow created it before migrations (``create_all`` on start).

Revision ID: 0001
Revises: (none)

A frozen copy of the tables of that time, created the way they were then (``create_all``), with
their append-only triggers and the one-row audit head. Never edit it: a database created by the
old code path is this revision (:func:`records._migrate.upgrade` stamps such a database 0001
and upgrades it from here), and later changes are later revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from records._schema import GENESIS_HASH, NAMING_CONVENTION, run_append_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# -- hotlists -----------------------------------------------------------------------------------

hotlists = sa.Table(
    "hotlists",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("covert", sa.Boolean, nullable=False, default=False),
    sa.Column("version", sa.Integer, nullable=False),  # the live version
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

hotlist_versions = sa.Table(
    "hotlist_versions",
    metadata,
    sa.Column("hotlist_id", sa.ForeignKey("hotlists.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("change", sa.String(16), nullable=False),  # create|import|add|remove|policy
    sa.Column("source", sa.String(512), nullable=False),  # file name, or user:<name>
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

#: One row per entry and span of versions: the entry is in version v when
#: ``version_from <= v`` and (``version_to`` is NULL or ``v < version_to``).
hotlist_entries = sa.Table(
    "hotlist_entries",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("hotlist_id", sa.ForeignKey("hotlists.id"), nullable=False),
    sa.Column("entry_key", sa.String(80), nullable=False),
    sa.Column("plate", sa.String(64), nullable=False),  # normalised plate or pattern
    sa.Column("is_pattern", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(2), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("case_number", sa.String(64), nullable=True),
    sa.Column("source", sa.String(512), nullable=False),
    sa.Column("source_line", sa.Integer, nullable=True),
    sa.Column("entered_by", sa.String(128), nullable=False),
    sa.Column("entered_at", sa.BigInteger, nullable=False),
    sa.Column("effective_from", sa.BigInteger, nullable=True),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("version_from", sa.Integer, nullable=False),
    sa.Column("version_to", sa.Integer, nullable=True),
    sa.Index(None, "hotlist_id", "version_to"),
    sa.Index(None, "hotlist_id", "entry_key"),
)

# -- people -------------------------------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("agency", sa.String(128), nullable=False),
    sa.Column("job_title", sa.String(128), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.BigInteger, nullable=True),
    sa.Column("last_login_at", sa.BigInteger, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("disabled_by", sa.String(128), nullable=True),
    sa.Column("disabled_at", sa.BigInteger, nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),
)

training = sa.Table(
    "training",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("course", sa.String(128), nullable=False),
    sa.Column("completed_on", sa.Date, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=True),
    sa.Column("recorded_by", sa.String(128), nullable=False),
    sa.Column("recorded_at", sa.BigInteger, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 of the token, never it
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Column("closed_at", sa.BigInteger, nullable=True),
)

# -- audit --------------------------------------------------------------------------------------

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ts_ms", sa.BigInteger, nullable=False, index=True),
    sa.Column("ts", sa.String(32), nullable=False),  # RFC 3339 UTC, for people reading the table
    sa.Column("kind", sa.String(16), nullable=False),  # inquiry|login|admin|hotlist|release
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("user_name", sa.String(128), nullable=False),
    sa.Column("agency", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("terms", sa.Text, nullable=False),  # canonical JSON, hashed as text
    sa.Column("case_number", sa.String(64), nullable=True),
    sa.Column("event_number", sa.String(64), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("result_count", sa.Integer, nullable=True),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),  # allowed|denied|failed
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

#: One row (id 1): the sequence number and hash of the last audit record. Appending locks it,
#: which serialises writers, and verification compares the chain's end with it.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# -- releases, purges, dispositions -------------------------------------------------------------

release_requests = sa.Table(
    "release_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("requesting_agency", sa.String(256), nullable=False),
    sa.Column("law_enforcement", sa.Boolean, nullable=False),
    sa.Column("requester", sa.String(256), nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("case_number", sa.String(64), nullable=True),
    sa.Column("terms", sa.JSON, nullable=False),  # what is asked for: plates, dates, places
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

release_decisions = sa.Table(
    "release_decisions",
    metadata,
    sa.Column("request_id", sa.ForeignKey("release_requests.id"), primary_key=True),
    sa.Column("approved", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decided_by", sa.String(128), nullable=False),
    sa.Column("decided_at", sa.BigInteger, nullable=False),
)

release_fulfilments = sa.Table(
    "release_fulfilments",
    metadata,
    sa.Column("request_id", sa.ForeignKey("release_requests.id"), primary_key=True),
    sa.Column("export_id", sa.String(256), nullable=False),
    sa.Column("fulfilled_by", sa.String(128), nullable=False),
    sa.Column("fulfilled_at", sa.BigInteger, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)

purge_records = sa.Table(
    "purge_records",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("partition", sa.String(256), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("purged_by", sa.String(128), nullable=False),
    sa.Column("purged_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("note", sa.Text, nullable=False),
)

alert_dispositions = sa.Table(
    "alert_dispositions",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(128), nullable=False, index=True),
    sa.Column("hotlist", sa.String(64), nullable=True),
    sa.Column("disposition", sa.String(16), nullable=False),  # accepted|rejected
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Column("at", sa.BigInteger, nullable=False, index=True),
)

APPEND_ONLY_0001 = (
    "audit_log",
    "hotlist_versions",
    "release_requests",
    "release_decisions",
    "release_fulfilments",
    "purge_records",
    "alert_dispositions",
)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind)
    run_append_only(bind, APPEND_ONLY_0001)
    op.execute(
        sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)").bindparams(
            genesis=GENESIS_HASH
        )
    )
