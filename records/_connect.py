"""The engine factory of the records database: SQLite or PostgreSQL, with the audit keys."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from records._keys import ENGINE_OPTION, KEY_FILE, AuditKeys, generated_key
from records._migrate import require_head, upgrade_engine

__all__ = ["connect", "engine_for"]

log = logging.getLogger(__name__)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock at BEGIN: two writers wait for each other (busy_timeout)
        # instead of failing when a read snapshot cannot be upgraded.
        write = conn.get_execution_options().get("plateflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _wal(cursor: Any) -> None:
    """Put the database in WAL mode (persistent: once set, every later connection finds it).
    Switching needs a moment with no other connection, and SQLite answers "database is locked"
    at once instead of waiting out the busy timeout, so two processes opening a new database
    together (two flow pods) retry for up to the same 30 s."""
    deadline = time.monotonic() + 30.0
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def engine_for(url: str, *, echo: bool = False) -> Engine:
    """An engine on ``url``, nothing checked or created: SQLite in WAL mode with foreign keys
    on and a 30 s busy timeout (its parent directory created), PostgreSQL with psycopg 3."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, echo=echo, connect_args={"timeout": 30})
        _sqlite_setup(engine)
        return engine
    return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)


def connect(
    url: str,
    *,
    audit_key: str | None = None,
    retired_audit_keys: Sequence[str] = (),
    echo: bool = False,
) -> Engine:
    """An engine on the records database at ``url``, at the current schema, carrying the
    audit keys (:mod:`records._keys`) that sign and verify the audit log.

    Schema: a SQLite database is upgraded to the newest migration (one user owns the file);
    a PostgreSQL database must already be there (``plateflow db upgrade``, as its owner), else
    :class:`~records._migrate.SchemaError` says what to run. Upgrading is idempotent.

    ``audit_key`` signs new audit records; ``retired_audit_keys`` are earlier keys that
    verification still accepts. Without ``audit_key``, a SQLite file database uses (and on
    first use creates, mode 0600) ``audit.key`` beside the database file, an in-memory one a
    random key; a PostgreSQL database is then opened for reading and verifying only, and
    appending an audit record is refused.

    PostgreSQL URLs use psycopg 3 (``postgresql+psycopg://user@host:5432/db``).
    """
    engine = engine_for(url, echo=echo)
    database = engine.url.database
    if engine.dialect.name == "sqlite":
        if audit_key is None and database and database != ":memory:":
            audit_key = generated_key(Path(database).expanduser().parent / KEY_FILE)
        elif audit_key is None:
            audit_key = secrets.token_urlsafe(32)
        upgrade_engine(engine)
    else:
        require_head(engine)
    engine.update_execution_options(**{ENGINE_OPTION: AuditKeys.of(audit_key, retired_audit_keys)})
    log.debug("records database ready at %s", engine.url.render_as_string(hide_password=True))
    return engine
