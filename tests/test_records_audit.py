"""Justified inquiries and the append-only, hash-chained audit log, tampered with directly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

import records
import records._schema
from records._schema import audit_head, audit_log, purge_records
from tests import records_support
from tests.people import add_person

PASSWORD = "Correct-Horse-42"


def person(engine: Engine, username: str, roles: list[str], *, trained: bool = True) -> None:
    add_person(engine, username, roles, password=PASSWORD, job_title="Deputy", trained=trained)


def search(engine: Engine, inquiry: records.Inquiry, *, permission: str = "reads:search") -> int:
    with records.audited(
        engine,
        inquiry,
        "reads.search",
        permission=permission,
        terms={"plate": "ABC123", "from": "2026-10-01", "to": "2026-10-02"},
        client="10.1.2.3",
        min_description_length=20,
    ) as access:
        access.result_count = 3
    return 3


@contextmanager
def search_writing_a_row(engine: Engine) -> Iterator[records.AuditedAccess]:
    """An audited search by inv.lee whose block writes a row (a purge record) before the
    caller's part of the block runs: what a failure must roll back."""
    with records.audited(
        engine,
        records.Inquiry("inv.lee", case_number="26-9"),
        "reads.search",
        permission="reads:search",
    ) as access:
        access.conn.execute(
            sa.insert(purge_records).values(
                partition="p", rows=1, purged_by="x", purged_at=1, note=""
            )
        )
        yield access


def purge_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(purge_records)).scalar_one())


def test_inquiry_without_case_number_is_refused_and_audited(engine: Engine) -> None:
    person(engine, "inv.lee", ["investigator"])
    with pytest.raises(records.AccessDenied, match="needs a case_number or event_number") as info:
        search(engine, records.Inquiry("inv.lee"))
    assert (info.value.reason, info.value.field) == ("no_justification", "case_number")
    with pytest.raises(records.AccessDenied, match="description is 5 characters") as info:
        search(engine, records.Inquiry("inv.lee", description="looks"))
    assert info.value.field == "description"
    assert search(engine, records.Inquiry("inv.lee", case_number="26-0042")) == 3
    assert search(engine, records.Inquiry("inv.lee", event_number="E26-77")) == 3
    assert (
        search(
            engine,
            records.Inquiry(
                "inv.lee", description="armed robbery at 5th and Main, suspect vehicle grey sedan"
            ),
        )
        == 3
    )
    log = records.read_audit(engine, kind="inquiry")
    assert [r.outcome for r in log] == ["denied", "denied", "allowed", "allowed", "allowed"]
    allowed = log[2]
    assert (allowed.username, allowed.user_name, allowed.agency) == (
        "inv.lee",
        "Inv.Lee",
        "Example SO",
    )
    assert allowed.terms == {"plate": "ABC123", "from": "2026-10-01", "to": "2026-10-02"}
    assert (allowed.case_number, allowed.result_count, allowed.client) == ("26-0042", 3, "10.1.2.3")
    assert allowed.ts.endswith("Z")
    assert log[0].reason is not None and log[0].reason.startswith("no_justification")


def test_untrained_wrong_role_disabled_and_unknown_are_refused(engine: Engine) -> None:
    person(engine, "new.hire", ["investigator"], trained=False)
    person(engine, "disp.kim", ["dispatcher"])
    person(engine, "gone", ["investigator"])
    records.disable_user(engine, "gone", by="admin", reason="retired")
    cases = [
        ("new.hire", "untrained", "no current ALPR training"),
        ("disp.kim", "forbidden", "may not 'reads:search'"),
        ("gone", "inactive", "disabled"),
        ("ghost", "unknown_user", "no user 'ghost'"),
    ]
    for username, reason, text in cases:
        with pytest.raises(records.AccessDenied, match=text) as info:
            search(engine, records.Inquiry(username, case_number="26-1"))
        assert info.value.reason == reason
    records.record_training(
        engine,
        "new.hire",
        course="ALPR",
        completed_on=date(2020, 1, 1),
        expires_on=date(2021, 1, 1),
        by="admin",
    )
    with pytest.raises(records.AccessDenied, match="training"):
        search(engine, records.Inquiry("new.hire", case_number="26-1"))
    denied = records.read_audit(engine, kind="inquiry")
    assert [(r.username, r.outcome) for r in denied] == [
        ("new.hire", "denied"),
        ("disp.kim", "denied"),
        ("gone", "denied"),
        ("ghost", "denied"),
        ("new.hire", "denied"),
    ]
    assert records.verify_chain(engine).ok


def test_administration_needs_no_training_but_the_permission(engine: Engine) -> None:
    person(engine, "admin", ["administrator"], trained=False)
    with records.audited(
        engine,
        records.Inquiry("admin"),
        "users.list",
        permission="users:manage",
        kind="admin",
        data_access=False,
    ) as access:
        access.result_count = 1
    assert records.read_audit(engine, kind="admin")[-1].action == "users.list"


def test_failed_operation_rolls_back_and_is_audited(engine: Engine) -> None:
    person(engine, "inv.lee", ["investigator"])
    with pytest.raises(RuntimeError, match="scan failed"):
        with search_writing_a_row(engine):
            raise RuntimeError("scan failed")
    assert purge_rows(engine) == 0
    last = records.read_audit(engine, kind="inquiry")[-1]
    assert (last.outcome, last.reason) == ("failed", "RuntimeError: scan failed")


def test_operation_fails_when_the_audit_record_cannot_be_written(engine: Engine) -> None:
    person(engine, "inv.lee", ["investigator"])
    with engine.begin() as conn:  # occupy the next sequence number so the append collides
        head = conn.execute(sa.select(sa.func.max(audit_head.c.seq))).scalar_one()
        conn.execute(
            sa.insert(audit_log).values(
                seq=head + 1,
                ts_ms=0,
                ts="",
                kind="admin",
                username="x",
                user_name="x",
                agency="",
                action="x",
                terms="{}",
                outcome="allowed",
                prev_hash="",
                hash="",
            )
        )
    with pytest.raises(records.AuditError, match="could not be written"):
        with search_writing_a_row(engine) as access:
            access.result_count = 1
    assert purge_rows(engine) == 0


def _seed(engine: Engine, n: int = 8) -> None:
    person(engine, "inv.lee", ["investigator"])
    for i in range(n):
        search(engine, records.Inquiry("inv.lee", case_number=f"26-{i}"))


def _drop_guards(engine: Engine) -> None:
    """What a database owner could do: remove the append-only triggers."""
    with engine.begin() as conn:
        for table in ("audit_log", "audit_head"):
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            else:
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_update")
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_delete")


def test_append_only_triggers_refuse_update_and_delete(engine: Engine) -> None:
    _seed(engine, 2)
    records_support.assert_append_only(
        engine, ("UPDATE audit_log SET result_count = 0", "DELETE FROM audit_log")
    )
    assert records.verify_chain(engine).ok


def test_verify_finds_an_edited_record(engine: Engine) -> None:
    _seed(engine)
    chain = records.verify_chain(engine)
    assert chain.ok and chain.records == chain.head_seq == 10  # 2 admin + 8 inquiries
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 6).values(result_count=0))
    result = records.verify_chain(engine)
    assert result.edited == [6] and not result.deleted and not result.inserted
    assert "record 6: edited" in result.describe()


def test_verify_finds_deleted_records(engine: Engine) -> None:
    _seed(engine)
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq.in_([4, 5])))
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 10))
    result = records.verify_chain(engine)
    assert result.deleted == [4, 5, 10]
    assert not result.edited


def test_verify_finds_inserted_records(engine: Engine) -> None:
    _seed(engine)
    _drop_guards(engine)
    with engine.connect() as conn:
        row = dict(conn.execute(sa.select(audit_log).where(audit_log.c.seq == 10)).mappings().one())
    forged = dict(row, seq=11, prev_hash=row["hash"], description="forged")
    forged["hash"] = records.record_hash(forged)
    with engine.begin() as conn:
        conn.execute(sa.insert(audit_log).values(**forged))
        # a forged record with a self-consistent hash in place of a deleted one
        original = dict(
            conn.execute(sa.select(audit_log).where(audit_log.c.seq == 7)).mappings().one()
        )
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 7))
        replacement = dict(original, username="someone.else")
        replacement["hash"] = records.record_hash(replacement)
        conn.execute(sa.insert(audit_log).values(**replacement))
    result = records.verify_chain(engine)
    assert result.inserted == [11]
    assert [(p.seq, p.kind) for p in result.problems if p.seq != 11] == [
        (7, "forged"),  # its hash is consistent, its signature is not
        (8, "unlinked"),
    ]


def test_anchor_detects_a_rewritten_chain(engine: Engine) -> None:
    _seed(engine, 3)
    anchor = records.verify_chain(engine)
    _drop_guards(engine)
    # an owner holding the key rewrites everything consistently, head included: only the
    # anchor can tell
    keys = records.audit_keys(engine)
    with engine.begin() as conn:
        rows = [
            dict(r) for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).mappings()
        ]
        conn.execute(sa.delete(audit_log))
        conn.execute(sa.delete(audit_head))
        prev = "0" * 64
        for row in rows:
            row.update(prev_hash=prev, client="192.0.2.1")
            row["hash"] = prev = records.record_hash(row)
            row["hmac"] = keys.mac(row["key_id"], records.record_message(row))
            conn.execute(sa.insert(audit_log).values(**row))
        key, mac = keys.sign(records.head_message(rows[-1]["seq"], prev))
        conn.execute(
            sa.insert(audit_head).values(
                seq=rows[-1]["seq"], hash=prev, key_id=key, hmac=mac, at_ms=0
            )
        )
    assert records.verify_chain(engine).ok
    result = records.verify_chain(engine, anchors={anchor.head_seq: anchor.head_hash})
    assert [p.kind for p in result.problems] == ["anchor"]


def test_concurrent_writers_keep_one_chain(engine: Engine) -> None:
    person(engine, "inv.lee", ["investigator"])
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(8):
                search(engine, records.Inquiry("inv.lee", case_number=f"{worker}-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = records.verify_chain(engine)
    assert result.ok and result.records == 2 + 32


def test_unauthenticated_attempts_are_audited(engine: Engine) -> None:
    record = records.record_denied(
        engine,
        "reads.search",
        reason="unauthenticated: no session",
        client="203.0.113.9",
        terms={"plate": "ABC123"},
    )
    assert (record.username, record.outcome, record.seq) == ("(anonymous)", "denied", 1)
    assert records.verify_chain(engine).ok
    assert records.AccessDenied("x", reason="no_justification").http_status == 422
    assert records.AccessDenied("x", reason="unauthenticated").http_status == 401
    assert records.AccessDenied("x", reason="untrained").http_status == 403


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_verify_reports_exactly_the_deleted_and_edited_records(
    engine: Engine, data: st.DataObject
) -> None:
    records_support.reset_schema(engine)
    n = data.draw(st.integers(min_value=1, max_value=25), label="records")
    with records._schema.write_tx(engine) as conn:
        for i in range(n):
            records.append_audit(
                conn,
                username=f"u{i % 3}",
                action="reads.search",
                kind="inquiry",
                terms={"plate": f"P{i}"},
                case_number=str(i),
            )
    seqs = list(range(1, n + 1))
    deleted = data.draw(st.sets(st.sampled_from(seqs)), label="deleted")
    edited = data.draw(st.sets(st.sampled_from(seqs)), label="edited") - deleted
    _drop_guards(engine)
    with engine.begin() as conn:
        if edited:
            conn.execute(
                sa.update(audit_log)
                .where(audit_log.c.seq.in_(edited))
                .values(case_number="changed")
            )
        if deleted:
            conn.execute(sa.delete(audit_log).where(audit_log.c.seq.in_(deleted)))
    result = records.verify_chain(engine)
    assert set(result.deleted) == deleted
    assert set(result.edited) == edited
    assert not result.inserted
    assert result.ok == (not deleted and not edited)
