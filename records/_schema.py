"""Tables, the engine factory and the transaction helpers of the system of record.

Times are stored as epoch milliseconds UTC (``*_at`` / ``*_ms`` columns, BigInteger) so that
SQLite and PostgreSQL compare and sort them the same way; training dates are calendar dates.

The tables that hold evidence of what people did (the audit log, hotlist versions, release
requests and their decisions and fulfilments, purge records, alert disposition transitions,
the posted policy's versions and the named designees) are append-only: on both databases a
trigger refuses UPDATE and DELETE, so a mistake in application code cannot rewrite history.
A database owner can still drop a trigger; :func:`records.verify_chain` is what detects
tampering with the audit log after that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

#: prev_hash of the first audit record.
GENESIS_HASH = "0" * 64

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _ms() -> sa.Column[Any]:
    return sa.Column(sa.BigInteger, nullable=False)


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

#: One row per transition of an alert's disposition (records/_dispositions.py); the alert's
#: current state is its row with the highest ``seq``. ``(alert_id, seq)`` is unique, so of two
#: people acting on the same state at once exactly one insert succeeds.
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

APPEND_ONLY = (
    "audit_log",
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


_PG_FUNCTION = _ddl(
    """
CREATE OR REPLACE FUNCTION plateflow_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'plateflow: %% on %% is refused: the table is append-only (policy 427.5, 427.7)',
    TG_OP, TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql
"""
)


def _install_triggers() -> None:
    event.listen(metadata, "before_create", _PG_FUNCTION.execute_if(dialect="postgresql"))
    for name in APPEND_ONLY:
        table = metadata.tables[name]
        pg = _ddl(
            f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
            "FOR EACH ROW EXECUTE FUNCTION plateflow_append_only()"
        )
        pg_truncate = _ddl(
            f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
            "FOR EACH STATEMENT EXECUTE FUNCTION plateflow_append_only()"
        )
        event.listen(table, "after_create", pg.execute_if(dialect="postgresql"))
        event.listen(table, "after_create", pg_truncate.execute_if(dialect="postgresql"))
        for op in ("UPDATE", "DELETE"):
            lite = _ddl(
                f"CREATE TRIGGER {name}_no_{op.lower()} BEFORE {op} ON {name} BEGIN "
                f"SELECT RAISE(ABORT, 'plateflow: {op} on {name} is refused: the table is "
                "append-only (policy 427.5, 427.7)'); END"
            )
            event.listen(table, "after_create", lite.execute_if(dialect="sqlite"))
    head_row = _ddl(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')")
    event.listen(audit_head, "after_create", head_row)
    event.listen(disposition_codes, "after_create", _seed_codes)


def _seed_codes(target: sa.Table, connection: Connection, **_: Any) -> None:
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


_install_triggers()

# -- engine -------------------------------------------------------------------------------------


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock at BEGIN: two writers wait for each other (busy_timeout)
        # instead of failing when a read snapshot cannot be upgraded.
        write = conn.get_execution_options().get("plateflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def connect(url: str, *, echo: bool = False) -> Engine:
    """An engine on ``url`` with every records table created if missing.

    SQLite (``sqlite:///path``) runs in WAL mode with foreign keys on and a 30 s busy timeout;
    its parent directory is created. PostgreSQL URLs use psycopg 3
    (``postgresql+psycopg://user@host:5432/db``). Creating tables is idempotent.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, echo=echo, connect_args={"timeout": 30})
        _sqlite_setup(engine)
    else:
        engine = sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    _create_tables(engine)
    log.debug("records database ready at %s", parsed.render_as_string(hide_password=True))
    return engine


#: The PostgreSQL advisory lock key under which processes create the tables one at a time.
_SCHEMA_LOCK = 0x706C6174  # "plat"


def _create_tables(engine: Engine) -> None:
    """Create the missing tables in one write transaction, so processes that start together on
    one database (a cluster's pods, a benchmark's flow processes) take turns instead of failing:
    on SQLite the transaction holds the write lock from BEGIN, on PostgreSQL an advisory lock."""
    with engine.connect().execution_options(plateflow_write=True) as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        metadata.create_all(conn, checkfirst=True)


def reset_schema(engine: Engine) -> None:
    """Drop and re-create every records table (and its triggers). For tests and fresh installs
    only: it destroys the audit log.

    The test fixture pattern (PostgreSQL is one shared database in CI, so every test starts
    from empty tables; SQLite gets a fresh file per test anyway)::

        @pytest.fixture()
        def engine(database_url):
            eng = records.connect(database_url)
            records.reset_schema(eng)
            yield eng
            eng.dispose()
    """
    metadata.drop_all(engine, checkfirst=True)
    metadata.create_all(engine, checkfirst=True)


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on exit and rolled back on error."""
    with engine.connect() as conn:
        conn.execution_options(plateflow_write=True)
        with conn.begin():
            yield conn


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
