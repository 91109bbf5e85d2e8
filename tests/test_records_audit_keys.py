"""The keyed audit chain: forgeries written with plain DML, key rotation, the exported head."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import records
from records._schema import audit_head, audit_log
from tests import records_support
from tests.people import add_person
from tests.test_records_audit import _drop_guards

KEY_A = "audit-key-A-0123456789abcdefghijklmnopqrstuvwxyz"
KEY_B = "audit-key-B-0123456789abcdefghijklmnopqrstuvwxyz"


def _seed(engine: Engine, n: int) -> None:
    add_person(engine, "inv.lee", ["investigator"], password="Correct-Horse-42")
    for i in range(n):
        inquiry = records.Inquiry("inv.lee", case_number=f"26-{i}")
        records_support.audited_search(engine, inquiry, result_count=i, terms={"plate": "ABC123"})


def _newest(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        query = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)
        return dict(conn.execute(query).mappings().one())


def test_forged_rows_and_a_head_advanced_by_plain_dml_fail_verification(engine: Engine) -> None:
    _seed(engine, 3)
    assert records.verify_chain(engine).ok
    last = _newest(engine)
    first_forged = int(last["seq"]) + 1  # type: ignore[call-overload]
    # What a DML-only insider can do: INSERT well-formed records (hashes recomputed, linked,
    # naming the real key id) and advance the head by inserting rows; no trigger is touched.
    prev = last
    with engine.begin() as conn:
        for seq in (first_forged, first_forged + 1):
            forged = dict(prev, seq=seq, prev_hash=prev["hash"], username="nobody", client="x")
            forged["hash"] = records.record_hash(forged)
            forged["hmac"] = records.record_hash(dict(forged, prev_hash=forged["hash"]))
            conn.execute(sa.insert(audit_log).values(**forged))
            conn.execute(
                sa.insert(audit_head).values(
                    seq=seq, hash=forged["hash"], key_id=forged["key_id"], hmac="0" * 64, at_ms=1
                )
            )
            prev = forged
    result = records.verify_chain(engine)
    assert not result.ok
    assert result.first_bad == first_forged
    assert result.forged == [first_forged, first_forged + 1, first_forged + 1]  # 2 rows, head
    assert f"the first bad record is {first_forged}" in result.describe()
    # and the head cannot be rewritten in place either: it is append-only
    records_support.assert_append_only(
        engine, ("UPDATE audit_head SET hmac = 'x'", "DELETE FROM audit_head")
    )


def test_an_unkeyed_head_and_record_are_forged(engine: Engine) -> None:
    _seed(engine, 1)
    last = _newest(engine)
    seq = int(last["seq"]) + 1  # type: ignore[call-overload]
    forged = dict(last, seq=seq, prev_hash=last["hash"], key_id=None, hmac=None)
    forged["hash"] = records.record_hash(forged)
    with engine.begin() as conn:
        conn.execute(sa.insert(audit_log).values(**forged))
        conn.execute(sa.insert(audit_head).values(seq=seq, hash=forged["hash"], at_ms=1))
    result = records.verify_chain(engine)
    assert [(p.seq, p.kind) for p in result.problems] == [(seq, "forged"), (seq, "forged")]
    assert "not signed with an audit key" in result.describe()


def test_a_chain_signed_under_two_keys_verifies_after_rotation(database_url: str) -> None:
    first = records.connect(database_url, audit_key=KEY_A)
    records_support.reset_schema(first)
    _seed(first, 2)
    first.dispose()
    rotated = records.connect(database_url, audit_key=KEY_B, retired_audit_keys=[KEY_A])
    _seed_more = records.Inquiry("inv.lee", case_number="26-9")
    with records.audited(rotated, _seed_more, "reads.search", permission="reads:search"):
        pass
    ids = {r.key_id for r in records.read_audit(rotated)}
    assert ids == {records.key_id(KEY_A), records.key_id(KEY_B)}
    result = records.verify_chain(rotated)
    assert result.ok, result.describe()
    assert result.head_key_id == records.key_id(KEY_B)
    rotated.dispose()
    # without the retired key, the old records cannot be checked: named, not passed
    forgetful = records.connect(database_url, audit_key=KEY_B)
    result = records.verify_chain(forgetful)
    assert not result.ok and result.first_bad == 1
    assert {p.kind for p in result.problems} == {"unknown_key"}
    assert "PLATEFLOW_AUDIT_KEYS_FILE" in result.describe()
    forgetful.dispose()
    # a database opened without any key may verify but never append
    reader = records.connect(database_url, retired_audit_keys=[KEY_A, KEY_B])
    assert records.verify_chain(reader).ok
    if reader.dialect.name == "postgresql":
        with pytest.raises(records.AuditError, match="PLATEFLOW_AUDIT_KEY_FILE"):
            with reader.begin() as conn:
                records.append_audit(conn, username="x", action="x", kind="admin")
    reader.dispose()


def test_a_short_key_is_refused() -> None:
    with pytest.raises(records.AuditError, match="at least 32"):
        records.AuditKeys.of("short")


def test_the_generated_key_file_is_private_and_reused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'plateflow.db'}"
    engine = records.connect(url)
    key_file = tmp_path / "db" / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = records.connect(url)
    assert records.audit_keys(engine) == records.audit_keys(again)
    assert records.audit_keys(engine).current == records.key_id(key_file.read_text().strip())
    assert "keys" not in repr(records.audit_keys(engine)).replace("AuditKeys", "")
    engine.dispose()
    again.dispose()
    os.chmod(key_file, 0o644)
    with pytest.raises(records.AuditError, match="chmod 600"):
        records.connect(url)


def test_the_exported_head_anchors_later_checks(engine: Engine, tmp_path: Path) -> None:
    _seed(engine, 2)
    exported = tmp_path / "ship" / "audit-head.jsonl"
    head = records.export_head(exported, records.verify_chain(engine))
    assert set(head) == {"seq", "hash", "hmac", "key_id", "at"}
    line = json.loads(exported.read_text())
    assert line["seq"] == records.verify_chain(engine).head_seq
    assert records.exported_heads(exported) == {line["seq"]: line["hash"]}
    exported.write_text(exported.read_text() + "not json\n")
    with pytest.raises(records.AuditError, match="line 2"):
        records.exported_heads(exported)


def test_the_scheduled_check_catches_a_rewrite_by_someone_holding_the_key(
    engine: Engine, tmp_path: Path
) -> None:
    import service

    _seed(engine, 2)
    door = service.Door(engine, service.ServiceConfig(data_dir=tmp_path))
    exported = tmp_path / "audit-head.jsonl"
    assert service.verify_audit_scheduled(door, "os:cron", "cron", head_file=exported).ok
    # the owner, holding the key, rewrites record 3 and re-signs everything after it
    keys = records.audit_keys(engine)
    _drop_guards(engine)
    with engine.begin() as conn:
        rows = [
            dict(r) for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).mappings()
        ]
        prev = rows[1]["hash"]
        for row in rows[2:]:
            if row["seq"] == 3:
                row["client"] = "somewhere else"
            row["prev_hash"] = prev
            row["hash"] = prev = records.record_hash(row)
            row["hmac"] = keys.mac(row["key_id"], records.record_message(row))
            conn.execute(sa.update(audit_log).where(audit_log.c.seq == row["seq"]).values(**row))
            conn.execute(
                sa.update(audit_head)
                .where(audit_head.c.seq == row["seq"])
                .values(hash=row["hash"], hmac=keys.sign(records.head_message(row["seq"], prev))[1])
            )
    assert records.verify_chain(engine).ok  # consistent and signed: only the export can tell
    result = service.verify_audit_scheduled(door, "os:cron", "cron", head_file=exported)
    assert not result.ok and [p.kind for p in result.problems] == ["anchor"]
    assert len(exported.read_text().splitlines()) == 1
