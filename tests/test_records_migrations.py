"""Migrations replace create_all: the revisions build exactly today's schema, a database made
by the previous schema is upgraded with its rows, PostgreSQL refuses to start below the newest
revision, and the application's DML-only role cannot undo the append-only guarantees."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import records
from records._connect import engine_for
from records._migrate import _config
from tests import records_support

KEY = records_support.TEST_AUDIT_KEY
_PG = os.environ.get("PLATEFLOW_DATABASE_URL", "").startswith("postgresql")
needs_postgres = pytest.mark.skipif(not _PG, reason="needs PLATEFLOW_DATABASE_URL=postgresql...")


@pytest.fixture()
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a database created on the configured server."""
    configured = os.environ.get("PLATEFLOW_DATABASE_URL")
    if not _PG or configured is None:
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    name = f"plateflow_migrate_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine(configured, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(configured).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        server.dispose()


def test_the_revisions_build_exactly_the_schema_of_the_metadata(empty_url: str) -> None:
    assert records.upgrade(empty_url) == "(empty)"
    engine = records.engine_for(empty_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), records.metadata)
    engine.dispose()
    # a table or column added to records/_schema.py needs a revision that adds it
    assert diff == []
    assert records.upgrade(empty_url) == records.head()  # nothing left to do


def _previous_schema_with_rows(url: str, n: int) -> list[str]:
    """What plateflow before migrations left: the 0001 tables (its create_all, triggers and
    one-row head) without ``alembic_version``, and an unsigned chain of ``n`` records."""
    engine = records.engine_for(url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0001")
        conn.exec_driver_sql("DROP TABLE alembic_version")
    hashes, prev = [], "0" * 64
    with engine.begin() as conn:
        for seq in range(1, n + 1):
            row = {
                "seq": seq,
                "ts_ms": 1_700_000_000_000 + seq,
                "ts": records.iso_utc(1_700_000_000_000 + seq),
                "kind": "inquiry",
                "username": "inv.lee",
                "user_name": "Inv Lee",
                "agency": "Example SO",
                "action": "reads.search",
                "terms": records.canonical_json({"plate": f"P{seq}"}),
                "case_number": f"26-{seq}",
                "event_number": None,
                "description": None,
                "result_count": seq,
                "client": "10.0.0.1",
                "outcome": "allowed",
                "reason": None,
                "prev_hash": prev,
            }
            row["hash"] = prev = records.record_hash(row)
            conn.execute(sa.table("audit_log", *map(sa.column, row)).insert().values(**row))
            hashes.append(prev)
        conn.exec_driver_sql(f"UPDATE audit_head SET seq = {n}, hash = '{prev}' WHERE id = 1")
    engine.dispose()
    return hashes


def test_a_database_made_by_the_previous_schema_is_upgraded_with_its_rows(empty_url: str) -> None:
    hashes = _previous_schema_with_rows(empty_url, 4)
    old = records.engine_for(empty_url)
    assert records.current(old) == "0001"
    old.dispose()
    if _PG:
        with pytest.raises(records.SchemaError, match="run `plateflow db upgrade` with PLATEFLOW"):
            records.connect(empty_url, audit_key=KEY)
        assert records.upgrade(empty_url) == "0001"
    engine = records.connect(empty_url, audit_key=KEY)  # SQLite: upgraded here
    assert records.current(engine) == records.head()
    kept = records.read_audit(engine)
    assert [r.hash for r in kept] == hashes and {r.key_id for r in kept} == {None}
    result = records.verify_chain(engine)
    assert result.ok and (result.unsigned, result.head_seq) == (4, 4), result.describe()
    with engine.begin() as conn:
        records.append_audit(conn, username="admin", action="users.list", kind="admin")
    result = records.verify_chain(engine)
    assert result.ok and result.records == 5 and result.head_key_id == records.key_id(KEY)
    # the upgraded head is append-only too
    records_support.assert_append_only(engine, ["DELETE FROM audit_head"])
    engine.dispose()


def test_processes_upgrading_together_take_turns(empty_url: str) -> None:
    records_support.start_together(f"import records; records.upgrade({empty_url!r})", 3)
    engine = records.engine_for(empty_url)
    assert records.current(engine) == records.head()
    engine.dispose()


def test_db_upgrade_command_uses_the_owner_url(empty_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PLATEFLOW_DATABASE_URL": empty_url,
        "PLATEFLOW_DATABASE_OWNER_URL": empty_url,
        "PLATEFLOW_DATA_DIR": str(tmp_path / "data"),
    }
    run = [sys.executable, "-m", "plateflow.cli", "db"]
    done = subprocess.run([*run, "current"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "revision (empty)" in done.stdout, done.stderr
    done = subprocess.run([*run, "upgrade"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"upgraded from revision (empty) to {records.head()}" in done.stdout
    done = subprocess.run([*run, "upgrade"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "already at revision" in done.stdout
    flag = subprocess.run(
        [*run, "upgrade", "--database-owner-url", empty_url],
        env=env,
        capture_output=True,
        text=True,
    )
    assert flag.returncode == 2 and "secret and never a flag" in flag.stderr


@needs_postgres
def test_connect_refuses_a_postgres_database_below_the_newest_revision(empty_url: str) -> None:
    with pytest.raises(records.SchemaError, match=r"revision \(empty\).*plateflow db upgrade"):
        records.connect(empty_url, audit_key=KEY)


@needs_postgres
def test_the_dml_only_role_cannot_undo_the_append_only_guarantees(empty_url: str) -> None:
    records.upgrade(empty_url)  # as the owner
    owner = records.engine_for(empty_url)
    role = "plateflow_app"
    with owner.begin() as conn:
        exists = conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'").first()
        if not exists:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.exec_driver_sql(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        conn.exec_driver_sql(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    app_url = sa.make_url(empty_url).set(username=role, password=None)
    app = records.connect(app_url.render_as_string(hide_password=False), audit_key=KEY)
    try:
        records_support_people(app)
        assert records.verify_chain(app).ok
        refused = [
            "DROP TRIGGER audit_log_append_only ON audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "ALTER TABLE audit_head DISABLE TRIGGER audit_head_append_only",
            "DROP FUNCTION plateflow_append_only() CASCADE",
            "TRUNCATE audit_log",
            "CREATE TABLE audit_log_copy (seq bigint)",
        ]
        for statement in refused:
            with pytest.raises(sa.exc.ProgrammingError, match=r"must be owner|permission denied"):
                with app.begin() as conn:
                    conn.exec_driver_sql(statement)
        records_support.assert_append_only(
            app,
            (
                "UPDATE audit_log SET username = 'someone' WHERE seq = 1",
                "DELETE FROM audit_log",
                "UPDATE audit_head SET hmac = NULL",
                "DELETE FROM audit_head",
            ),
        )
        # what the role can do, INSERT, is caught: a forged record and head by plain DML
        with app.connect() as conn:
            last = dict(
                conn.execute(sa.text("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1"))
                .mappings()
                .one()
            )
        forged = dict(last, seq=last["seq"] + 1, prev_hash=last["hash"], username="nobody")
        forged["hash"] = records.record_hash(forged)
        with app.begin() as conn:
            conn.execute(sa.table("audit_log", *map(sa.column, forged)).insert().values(**forged))
            conn.exec_driver_sql(
                "INSERT INTO audit_head (seq, hash, key_id, hmac, at_ms) VALUES "
                f"({forged['seq']}, '{forged['hash']}', '{forged['key_id']}', '{'0' * 64}', 0)"
            )
        result = records.verify_chain(app)
        assert not result.ok and result.first_bad == forged["seq"]
        assert set(result.forged) == {forged["seq"]}
    finally:
        app.dispose()
        with owner.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
        owner.dispose()


def records_support_people(engine: sa.engine.Engine) -> None:
    """A user and an audited search, written by the application role."""
    from tests.people import add_person

    add_person(engine, "inv.lee", ["investigator"], password="Correct-Horse-42")
    records_support.audited_search(
        engine, records.Inquiry("inv.lee", case_number="26-1"), result_count=1
    )


def test_a_new_sqlite_database_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    """Two flow processes opening a new SQLite file together: switching it to WAL finds the other
    one's write lock and SQLite refuses at once; the engine waits instead of failing start-up."""
    path = tmp_path / "records.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE started (x)")
    threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
    with engine_for(f"sqlite:///{path}").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("SELECT count(*) FROM started").scalar() == 0
    other.close()
