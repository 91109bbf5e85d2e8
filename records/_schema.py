"""Tables and the transaction helpers of the system of record (the engine: records._connect;
the migrations that build these tables: records/migrations).

Times are stored as epoch milliseconds UTC (``*_at`` / ``*_ms`` columns, BigInteger) so that
SQLite and PostgreSQL compare and sort them the same way; training dates are calendar dates.

The tables that hold evidence of what people did (the audit log and its head, hotlist versions,
release requests and their decisions and fulfilments, purge records, alert disposition
transitions, the posted policy's versions and the named designees) are append-only: on both
databases a trigger refuses UPDATE and DELETE, so a mistake in application code cannot rewrite
history. The application's PostgreSQL role holds DML rights only, so it cannot drop a trigger;
the owner can, and :func:`records.verify_chain` (signatures under a key outside the database)
is what detects tampering with the audit log after that.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

#: prev_hash of the first audit record.
GENESIS_HASH = "0" * 64

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

#: Constraint and index names, the same in the schema and in every migration.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

#: Today's schema: what the newest migration (records/migrations/versions) leaves. A change
#: here needs a new revision there (tests/test_records_migrations.py compares the two).
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _id(type_: Any = sa.Integer) -> sa.Column[Any]:
    """The surrogate key ``id``, numbered by the database."""
    return sa.Column("id", type_, primary_key=True, autoincrement=True)


def _who_when(
    verb: str, *, nullable: bool = False, index: bool | None = None
) -> list[sa.Column[Any]]:
    """Who did ``verb`` and when: ``{verb}_by`` (a username or a display name) and
    ``{verb}_at`` (epoch ms; ``index`` indexes it)."""
    return [
        sa.Column(f"{verb}_by", sa.String(128), nullable=nullable),
        sa.Column(f"{verb}_at", sa.BigInteger, nullable=nullable, index=index),
    ]


# -- hotlists -----------------------------------------------------------------------------------

hotlists = sa.Table(
    "hotlists",
    metadata,
    _id(),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("covert", sa.Boolean, nullable=False, default=False),
    sa.Column("version", sa.Integer, nullable=False),  # the live version
    *_who_when("created"),
    *_who_when("updated"),
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
    *_who_when("created"),
)

#: One row per entry and span of versions: the entry is in version v when
#: ``version_from <= v`` and (``version_to`` is NULL or ``v < version_to``).
hotlist_entries = sa.Table(
    "hotlist_entries",
    metadata,
    _id(_ID),
    sa.Column("hotlist_id", sa.ForeignKey("hotlists.id"), nullable=False),
    sa.Column("entry_key", sa.String(80), nullable=False),
    sa.Column("plate", sa.String(64), nullable=False),  # normalised plate or pattern
    sa.Column("is_pattern", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(2), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("case_number", sa.String(64), nullable=True),
    sa.Column("source", sa.String(512), nullable=False),
    sa.Column("source_line", sa.Integer, nullable=True),
    *_who_when("entered"),
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
    _id(),
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
    *_who_when("created"),
    *_who_when("disabled", nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    # an administrator's reset: every act but changing the password is refused until then
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    # the TOTP secret, encrypted under a key kept outside the database (records._totp)
    sa.Column("totp_secret", sa.Text, nullable=True),
    sa.Column("totp_enrolled_at", sa.BigInteger, nullable=True),
    sa.Column("totp_last_step", sa.BigInteger, nullable=True),  # a code is good once
)

training = sa.Table(
    "training",
    metadata,
    _id(),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("course", sa.String(128), nullable=False),
    sa.Column("completed_on", sa.Date, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=True),
    *_who_when("recorded"),
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
    sa.Column("last_seen_at", sa.BigInteger, nullable=True),  # the idle timeout counts from it
)

#: Per-client counters over a time window (records._throttle): failed logins for the throttle,
#: anonymous refusals for their aggregated audit record. One row per (scope, client).
client_counters = sa.Table(
    "client_counters",
    metadata,
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("client", sa.String(64), primary_key=True),
    sa.Column("window_start", sa.BigInteger, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),  # capped tallies (records._throttle)
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
    # HMAC-SHA256 of the hash under the key named (records._keys); NULL only on records
    # written before the chain was keyed (schema 0001), which the first keyed record seals
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("hmac", sa.String(64), nullable=True),
)

#: The head of the chain: one row per audit record appended (its sequence number, hash and
#: signature), never updated, so the newest row is the current head. Appending takes a lock
#: (:func:`records._audit.lock_head`) that serialises writers.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),  # NULL only for a head kept from 0001
    sa.Column("hmac", sa.String(64), nullable=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
)

# -- releases, purges, dispositions -------------------------------------------------------------

release_requests = sa.Table(
    "release_requests",
    metadata,
    _id(),
    sa.Column("requesting_agency", sa.String(256), nullable=False),
    sa.Column("law_enforcement", sa.Boolean, nullable=False),
    sa.Column("requester", sa.String(256), nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("case_number", sa.String(64), nullable=True),
    sa.Column("terms", sa.JSON, nullable=False),  # what is asked for: plates, dates, places
    *_who_when("created"),
)

release_decisions = sa.Table(
    "release_decisions",
    metadata,
    sa.Column("request_id", sa.ForeignKey("release_requests.id"), primary_key=True),
    sa.Column("approved", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    *_who_when("decided"),
)

release_fulfilments = sa.Table(
    "release_fulfilments",
    metadata,
    sa.Column("request_id", sa.ForeignKey("release_requests.id"), primary_key=True),
    sa.Column("export_id", sa.String(256), nullable=False),
    *_who_when("fulfilled"),
    sa.Column("note", sa.Text, nullable=False),
)

purge_records = sa.Table(
    "purge_records",
    metadata,
    _id(_ID),
    sa.Column("partition", sa.String(256), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    *_who_when("purged", index=True),
    sa.Column("note", sa.Text, nullable=False),
)

#: One row per transition of an alert's disposition (records/_dispositions.py); the alert's
#: current state is its row with the highest ``seq``. ``(alert_id, seq)`` is unique, so of two
#: people acting on the same state at once exactly one insert succeeds.
alert_transitions = sa.Table(
    "alert_transitions",
    metadata,
    _id(_ID),
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
    *_who_when("created"),
    *_who_when("retired", nullable=True),
)

#: The lists a new database starts with (kind, code, label, needs_text).
DEFAULT_DISPOSITION_CODES: tuple[tuple[str, str, str, bool], ...] = (
    ("reason", "misread", "Misread plate (OCR error)", False),
    ("reason", "wrong_state", "Wrong state", False),
    ("reason", "entry_cleared", "Entry cleared or expired", False),
    ("reason", "vehicle_mismatch", "Vehicle does not match", False),
    ("reason", "duplicate", "Duplicate alert", False),
    ("reason", "other", "Other (describe)", True),
    ("action", "stop_made", "Stop made", False),
    ("action", "officer_dispatched", "Officer dispatched", False),
    ("action", "bolo_broadcast", "BOLO broadcast", False),
    ("action", "no_action", "No action taken", False),
)

# -- transparency (427.2.1(e)(g)) ----------------------------------------------------------------

#: The posted ALPR policy, one row per published version (Markdown text or a PDF, as bytes).
policy_documents = sa.Table(
    "policy_documents",
    metadata,
    _id(_ID),
    sa.Column("version", sa.Integer, nullable=False, unique=True),
    sa.Column("title", sa.String(256), nullable=False),
    sa.Column("media_type", sa.String(32), nullable=False),  # text/markdown | application/pdf
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("effective_on", sa.Date, nullable=False),
    *_who_when("published"),
)

#: Who holds a public role (the ALPR administrator, the custodian of records), one row per
#: designation; the newest row of a role is the current designee.
transparency_designees = sa.Table(
    "transparency_designees",
    metadata,
    _id(_ID),
    sa.Column("role", sa.String(32), nullable=False, index=True),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("since", sa.Date, nullable=False),
    *_who_when("recorded"),
)

APPEND_ONLY = (
    "audit_log",
    "audit_head",
    "hotlist_versions",
    "release_requests",
    "release_decisions",
    "release_fulfilments",
    "purge_records",
    "alert_transitions",
    "policy_documents",
    "transparency_designees",
)

# -- triggers -----------------------------------------------------------------------------------


def _ddl(statement: str) -> sa.DDL:
    return sa.DDL(statement)  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped


_REFUSED = "the table is append-only (policy 427.5, 427.7)"

#: The PostgreSQL function every append-only trigger runs (created once per database).
PG_APPEND_ONLY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION plateflow_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'plateflow: % on % is refused: {_REFUSED}', TG_OP, TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql
"""


def append_only(table: str, dialect: str) -> list[str]:
    """The statements that make ``table`` append-only on ``dialect`` (``sqlite`` or
    ``postgresql``): triggers refusing UPDATE, DELETE (and on PostgreSQL TRUNCATE). The one
    place they are written: the schema and the migrations both use it. On PostgreSQL the
    function :data:`PG_APPEND_ONLY_FUNCTION` must exist first."""
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION plateflow_append_only()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION plateflow_append_only()",
        ]
    return [
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
        f"SELECT RAISE(ABORT, 'plateflow: {op} on {table} is refused: {_REFUSED}'); END"
        for op in ("UPDATE", "DELETE")
    ]


def seed_codes(target: sa.Table, connection: Connection, **_: Any) -> None:
    """Insert the default reason and action lists (the migrations and create_all both do)."""
    connection.execute(
        sa.insert(target),
        [
            {
                "kind": kind,
                "code": code,
                "label": label,
                "needs_text": needs_text,
                "position": i,
                "created_by": "(default)",
                "created_at": now_ms(),
            }
            for i, (kind, code, label, needs_text) in enumerate(DEFAULT_DISPOSITION_CODES)
        ],
    )


def run_append_only(conn: Connection, tables: Iterable[str]) -> None:
    """Make ``tables`` append-only on the connection's database (the function first, on
    PostgreSQL): what the schema and the migrations run."""
    dialect = conn.dialect.name
    statements = [PG_APPEND_ONLY_FUNCTION] if dialect == "postgresql" else []
    statements += [statement for table in tables for statement in append_only(table, dialect)]
    for statement in statements:
        # sa.DDL formats with %: the function's own % placeholders are doubled for it
        conn.execute(_ddl(statement.replace("%", "%%")))


event.listen(disposition_codes, "after_create", seed_codes)


@event.listens_for(metadata, "after_create")
def _after_create(_target: Any, connection: Connection, **_kw: Any) -> None:
    # create_all (the tests' reset) leaves the same triggers as the migrations
    run_append_only(connection, [t for t in APPEND_ONLY if t in metadata.tables])


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on exit and rolled back on error."""
    with engine.connect() as conn:
        conn.execution_options(plateflow_write=True)
        with conn.begin():
            yield conn


def connection(
    engine_or_conn: Engine | Connection, *, write: bool = False
) -> AbstractContextManager[Connection]:
    """The caller's own connection (used in its transaction, left open), or a new one on the
    engine: read-only, or with ``write`` in a :func:`write_tx`."""
    if isinstance(engine_or_conn, Connection):
        return nullcontext(engine_or_conn)
    return write_tx(engine_or_conn) if write else engine_or_conn.connect()


_Record = TypeVar("_Record")


def record_from_row(cls: type[_Record], row: Mapping[Any, Any], **computed: Any) -> _Record:
    """The record dataclass ``cls`` of one row: each field from the column of its name, a
    ``*_ms`` field from the column without the suffix (``created_at``...); ``computed`` gives
    the fields whose value is not a column's as it is."""
    values = dict(computed)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # cls is a dataclass
        if f.name not in values:
            values[f.name] = row[f.name if f.name in row else f.name.removesuffix("_ms")]
    return cls(**values)


_Query = TypeVar("_Query", bound="sa.Select[Any]")


def in_window(query: _Query, column: Any, start_ms: int | None, end_ms: int | None) -> _Query:
    """``query`` narrowed to rows whose ``column`` lies in ``[start_ms, end_ms)``; a bound
    that is None is left open."""
    if start_ms is not None:
        query = query.where(column >= start_ms)
    if end_ms is not None:
        query = query.where(column < end_ms)
    return query


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000
