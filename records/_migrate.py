"""Schema migrations (Alembic) of the records database.

The tables are built and changed only by the revisions in ``records/migrations/versions``, run
by :func:`upgrade`: ``plateflow db upgrade`` with the database owner's URL
(``PLATEFLOW_DATABASE_OWNER_URL``) on PostgreSQL, where the application's own role holds DML
rights only; :func:`records.connect` itself on SQLite (one user owns the file). Processes that
upgrade together take turns: the migrations run in one transaction under the SQLite write lock
(``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock.

A database created before migrations (the tables plateflow's ``create_all`` made, with no
``alembic_version``) is revision 0001: it is stamped so and upgraded from there, its rows kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._errors import RecordsError

__all__ = ["SchemaError", "current", "head", "upgrade", "upgrade_engine"]

log = logging.getLogger(__name__)

_SCRIPTS = Path(__file__).parent / "migrations"
#: The revision a database made by the pre-migration ``create_all`` is.
_BEFORE_MIGRATIONS = "0001"
#: The PostgreSQL advisory lock key under which processes change the schema one at a time.
_SCHEMA_LOCK = 0x706C6174  # "plat"


class SchemaError(RecordsError):
    """The records database is not at the schema this plateflow needs."""


def _config(conn: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config  # imported late: only processes that migrate need it

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = conn
    return config


def head() -> str:
    """The newest revision: the schema of :data:`records.metadata`."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None, "records/migrations has no revision"
    return revision


def _revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None and sa.inspect(conn).has_table("audit_log"):
        return _BEFORE_MIGRATIONS
    return revision


def current(engine: Engine) -> str | None:
    """The database's revision: None for an empty database, 0001 for one made before
    migrations."""
    with engine.connect() as conn:
        return _revision(conn)


def upgrade_engine(engine: Engine) -> str:
    """Bring the database of ``engine`` to :func:`head` (nothing to do is a quick check) and
    return the revision it was at. The engine must be allowed to change the schema."""
    target = head()
    was = current(engine)
    if was == target:
        return was
    with engine.connect().execution_options(plateflow_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        was = _revision(conn)  # again, under the lock: another process may have done it
        if was == target:
            return was
        from alembic import command

        config = _config(conn)
        if was == _BEFORE_MIGRATIONS and not sa.inspect(conn).has_table("alembic_version"):
            command.stamp(config, _BEFORE_MIGRATIONS)
        command.upgrade(config, "head")
    log.info("records database upgraded from revision %s to %s", was or "(empty)", target)
    return was or "(empty)"


def upgrade(owner_url: str) -> str:
    """:func:`upgrade_engine` on the database at ``owner_url`` (its owner's URL); returns the
    revision it was at."""
    from records._connect import engine_for

    engine = engine_for(owner_url)
    try:
        return upgrade_engine(engine)
    finally:
        engine.dispose()


def require_head(engine: Engine) -> None:
    """Refuse a database that is not at :func:`head`, with what to run."""
    at, target = current(engine), head()
    if at != target:
        where = engine.url.render_as_string(hide_password=True)
        msg = (
            f"the records database {where} is at schema revision {at or '(empty)'}, and this "
            f"plateflow needs {target}: run `plateflow db upgrade` with "
            "PLATEFLOW_DATABASE_OWNER_URL set to the URL of the database's owner"
        )
        raise SchemaError(msg)
