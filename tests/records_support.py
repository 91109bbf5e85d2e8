"""Opening the records database in tests, with the audit key the processes under test use,
and the records (searches, release requests) and checks many tests make the same way.

On SQLite every process finds the key file beside the database (``audit.key``, generated on
first use); on the shared PostgreSQL the key comes from ``PLATEFLOW_AUDIT_KEY``, which
``tests/conftest.py`` sets for the session so that subprocesses sign with it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import pytest
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


def assert_append_only(engine: Engine, statements: Iterable[str]) -> None:
    """Each statement (an UPDATE or DELETE of an append-only table) is refused by its trigger."""
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.exec_driver_sql(statement)


def start_together(code: str, processes: int) -> None:
    """Run the Python ``code`` in ``processes`` processes at once; each must exit with 0 (the
    assertion shows the end of each one's standard error)."""
    starts = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
        for _ in range(processes)
    ]
    errors = [p.communicate(timeout=120)[1].decode()[-800:] for p in starts]
    assert [p.returncode for p in starts] == [0] * processes, errors


def audited_search(
    engine: Engine, inquiry: records.Inquiry, *, result_count: int | None = None, **audit: Any
) -> None:
    """One audited plate search (``reads.search``) for ``inquiry`` that found ``result_count``
    reads; ``audit`` goes to :func:`records.audited` (terms, client...)."""
    with records.audited(
        engine, inquiry, "reads.search", permission="reads:search", **audit
    ) as access:
        access.result_count = result_count


def release_request(engine: Engine, by: str, **particulars: Any) -> records.ReleaseRequest:
    """A law-enforcement release request (427.7) recorded by ``by``, with stand-in particulars
    that ``particulars`` replace or add to (case number, terms...): for tests of what becomes of
    a request rather than of what it says."""
    fields: dict[str, Any] = {
        "requesting_agency": "County Sheriff",
        "law_enforcement": True,
        "requester": "Sgt. Diaz",
        "purpose": "homicide 26-118",
        **particulars,
    }
    return records.create_release_request(engine, by=by, **fields)
