"""Opening the records database in tests, with the audit key the processes under test use.

On SQLite every process finds the key file beside the database (``audit.key``, generated on
first use); on the shared PostgreSQL the key comes from ``PLATEFLOW_AUDIT_KEY``, which
``tests/conftest.py`` sets for the session so that subprocesses sign with it too.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import records

#: The audit key of the test session on a shared database (SQLite uses its key file).
TEST_AUDIT_KEY = "test-audit-key-0123456789abcdefghijklmnopqrstuv"


def connect(url: str) -> Engine:
    """``records.connect`` with the session's audit key."""
    return records.connect(url, audit_key=os.environ.get("PLATEFLOW_AUDIT_KEY"))


def fresh(url: str) -> Engine:
    """:func:`connect` on emptied tables."""
    engine = connect(url)
    reset_schema(engine)
    return engine


def reset_schema(engine: Engine) -> None:
    """Drop and re-create every records table (and its triggers): the test fixtures' reset,
    since a configured PostgreSQL is one database shared by every test. It destroys the audit
    log, so it is no part of the records package."""
    records.metadata.drop_all(engine, checkfirst=True)
    records.metadata.create_all(engine, checkfirst=True)


def to_head(url: str) -> None:
    """Bring a shared test database to the newest migration; one that is at another revision
    (tables left by an older checkout) is emptied first, since tests keep nothing."""
    engine = records.engine_for(url)
    try:
        if records.current(engine) != records.head():
            cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
            with engine.begin() as conn:
                for table in sa.inspect(conn).get_table_names():  # old tables too
                    conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"{cascade}')
    finally:
        engine.dispose()
    records.upgrade(url)
