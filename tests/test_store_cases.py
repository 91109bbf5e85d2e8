"""Retention purges, legal holds and evidence exports, API and CLI (release fulfilment:
``test_store_releases.py``).

Purges run against held and unheld partitions (and are cut short by a simulated crash); the
rows that remain are counted with pyarrow. An evidence export is verified, then one byte of it
is changed and verification must fail.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

import records
import service
import sinks
from plateflow._cli_session import os_identity
from sinks import _evidence as sinks_evidence
from tests.test_store_support import (
    CASE,
    END,
    NOW,
    OLD_DAYS,
    SCENE,
    START,
    TARGET,
    WHY,
    Env,
    env_fixture,  # noqa: F401  (registers the `env` fixture)
    haversine_m,
    in_window,
    iso,
    stored,
)


def old_day(days: int) -> str:
    return (NOW - timedelta(days=days)).date().isoformat()


def rows_by_day(env: Env) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in stored(env.data_dir):
        day = datetime.fromtimestamp(row["ts"] / 1000, tz=timezone.utc).date().isoformat()
        found[day] = found.get(day, 0) + 1
    return found


def flip_one_byte(path: Path, offset: int | None = None) -> bytes:
    data = bytearray(path.read_bytes())
    where = len(data) // 2 if offset is None else offset
    original = bytes(data)
    data[where] ^= 0x01
    path.write_bytes(bytes(data))
    return original


# -- retention ----------------------------------------------------------------------------------


def test_purge_deletes_expired_partitions_held_or_not_and_records_each(env: Env) -> None:
    held_day, free_day = old_day(OLD_DAYS[0]), old_day(OLD_DAYS[1])
    before = rows_by_day(env)
    assert before[held_day] == before[free_day] == 25
    code, text = env.cli(
        "hold",
        "place",
        "--case",
        "26-H1",
        "--reason",
        "homicide evidence",
        "--plate",
        TARGET,
        "--start",
        held_day,
        "--end",
        iso(NOW - timedelta(days=390)),
        as_user="rex",
    )
    assert code == 0 and "2 reads" in text
    code, text = env.cli("hold", "list", "--case-number", "26-H1", as_user="rex")
    assert code == 0 and "26-H1" in text and "active" in text
    code, text = env.cli("retention", "purge", "--dry-run")
    assert code == 0 and "would purge 2 partition(s), 50 rows" in text
    assert "1 of them under legal hold" in text
    assert rows_by_day(env) == before and records.list_purges(env.engine) == []
    code, text = env.cli("retention", "purge")
    assert code == 0 and "purged 2 partition(s), 50 rows" in text and "2 purge(s) recorded" in text
    # Nothing kept past retention but the evidence: the held day goes, its held rows stay.
    after = rows_by_day(env)
    assert free_day not in after and held_day not in after
    assert after == {day: n for day, n in before.items() if day not in (free_day, held_day)}
    held = pq.read_table(env.data_dir / "holds/case=26-H1/reads.parquet")
    assert held.num_rows == 2 and set(held.column("plate").to_pylist()) == {TARGET}
    purges = records.list_purges(env.engine)
    assert sorted(p.partition for p in purges) == sorted(
        [f"reads/date={free_day}", f"reads/date={held_day}"]
    )
    # a scheduler's purge is nobody's data access: it is recorded with the OS identity
    assert {(p.rows, p.by) for p in purges} == {(25, os_identity())}
    record = env.audit("retention.purge")[-1]
    assert (record.kind, record.username) == ("retention", os_identity())


class Killed(BaseException):
    """The purge process dies (as if killed) while it deletes files."""


def test_a_purge_cut_short_is_finished_and_recorded_once_by_the_next_run(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rows_by_day(env)
    real_rmtree = shutil.rmtree

    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(shutil, "rmtree", die)
    with pytest.raises(Killed):
        env.cli("retention", "purge")
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert records.list_purges(env.engine) == []  # records never heard of it
    code, _ = env.cli("retention", "purge")
    assert code == 0
    purges = records.list_purges(env.engine)
    expected = sorted(f"reads/date={old_day(d)}" for d in OLD_DAYS)
    assert sorted(p.partition for p in purges) == expected and {p.rows for p in purges} == {25}
    assert not [p for p in (env.data_dir / "reads").iterdir() if p.name.endswith(".purging")]
    assert rows_by_day(env) == {
        d: n for d, n in before.items() if d not in {old_day(x) for x in OLD_DAYS}
    }
    env.cli("retention", "purge")  # nothing left: nothing recorded twice
    assert len(records.list_purges(env.engine)) == 2


def test_retention_status_shows_partitions_due_and_held(env: Env) -> None:
    code, text = env.cli("retention", "status")
    assert code == 0 and "2 partition(s) due for purge" in text
    assert f"{sum(rows_by_day(env).values()):,} rows" in text and "retention 365 days" in text
    assert old_day(OLD_DAYS[0]) in text and "expired" in text


def test_retention_compact_merges_closed_days_without_changing_a_row(env: Env) -> None:
    before = sorted(r["read_id"] for r in stored(env.data_dir))
    code, text = env.cli("retention", "compact")
    assert code == 0 and "partition(s) compacted" in text
    assert sorted(r["read_id"] for r in stored(env.data_dir)) == before  # pyarrow reads it back
    closed = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    days = [d for d in (env.data_dir / "reads").glob("date=*") if d.name[5:] < closed]
    assert days and all(len(list(d.glob("*.parquet"))) == 1 for d in days)
    code, text = env.cli("retention", "compact")
    assert code == 0 and "0 partition(s) compacted" in text  # idempotent


# -- holds --------------------------------------------------------------------------------------


def test_holds_through_the_api(env: Env) -> None:
    query = {"plate": {"plate": TARGET, "start": iso(START), "end": iso(END)}}
    body = {"reason": "robbery 26-77", **query}
    expected = {
        r["read_id"]
        for r in stored(env.data_dir)
        if r["plate"] == TARGET and in_window(r, START, END)
    }
    resp = env.client.post("/v1/holds", json=body, params=CASE, headers=env.auth("rex"))
    assert resp.status_code == 201, resp.text
    hold = resp.json()
    assert (hold["case_number"], hold["reads"], hold["alerts"]) == (CASE["case_number"], 10, 2)
    assert hold["reads"] == len(expected) and hold["placements"][0]["query"]["plate"] == TARGET
    record = env.audit("holds.place")[-1]
    assert (record.kind, record.result_count, record.username) == ("retention", 10, "rex")
    resp = env.client.get("/v1/holds", params=CASE, headers=env.auth("ivy"))
    assert [h["case_number"] for h in resp.json()] == [CASE["case_number"]]
    resp = env.client.post("/v1/holds", json=body, params=CASE, headers=env.auth("ivy"))
    assert resp.status_code == 403
    both = {"reason": "x", **query, "read_ids": ["r00001"]}
    resp = env.client.post("/v1/holds", json=both, params=CASE, headers=env.auth("rex"))
    assert resp.status_code == 422
    nothing = {"reason": "x", "plate": {"plate": "NOPE123"}}
    resp = env.client.post("/v1/holds", json=nothing, params=CASE, headers=env.auth("rex"))
    assert resp.status_code == 404 and "no reads" in resp.json()["detail"]
    begin, stop = NOW - timedelta(days=2, hours=1), NOW - timedelta(days=2) + timedelta(hours=2)
    scene = {
        "start": iso(begin),
        "end": iso(stop),
        "center": {"lat": SCENE[0], "lon": SCENE[1]},
        "radius_m": 500,
    }
    near = {
        r["read_id"]
        for r in stored(env.data_dir)
        if in_window(r, begin, stop) and haversine_m(r["lat"], r["lon"], *SCENE) <= 500
    }
    canvass = {"reason": "scene canvass", "canvass": scene}
    resp = env.client.post(
        "/v1/holds", json=canvass, params={"case_number": "26-CAN"}, headers=env.auth("rex")
    )
    assert resp.status_code == 201 and resp.json()["reads"] == len(near) == 20
    path = f"/v1/holds/{CASE['case_number']}/release"
    resp = env.client.post(path, json={"reason": "closed"}, params=CASE, headers=env.auth("rex"))
    assert resp.status_code == 200 and resp.json()["active"] is False
    resp = env.client.post("/v1/holds", json=body, params=CASE, headers=env.auth("rex"))
    assert resp.status_code == 409 and "released" in resp.json()["detail"]
    resp = env.client.post(path, json={"reason": "again"}, params=CASE, headers=env.auth("rex"))
    assert resp.status_code == 409


# -- evidence -----------------------------------------------------------------------------------


def _rewrite_manifest_without_the_key(
    out: Path, *, purpose: str | None = None, manifest: bytes | None = None
) -> None:
    """What someone without the audit key can do: change the manifest and recompute every
    hash of the custody chain over it."""
    if manifest is None:
        edited = orjson.loads((out / "manifest.json").read_bytes())
        edited["purpose"] = purpose
        manifest = orjson.dumps(edited, option=orjson.OPT_INDENT_2)
    (out / "manifest.json").write_bytes(manifest)
    digest, prev, lines = hashlib.sha256(manifest).hexdigest(), None, []
    for line in (out / "chain_of_custody.jsonl").read_bytes().splitlines():
        link = dict(orjson.loads(line), manifest_sha256=digest, prev=prev)
        link["hash"] = prev = sinks_evidence._record_hash(link)
        lines.append(orjson.dumps(link, option=orjson.OPT_SORT_KEYS) + b"\n")
    (out / "chain_of_custody.jsonl").write_bytes(b"".join(lines))


def test_evidence_export_verifies_and_one_changed_byte_fails_it(env: Env, tmp_path: Path) -> None:
    code, _ = env.cli(
        "hold",
        "place",
        "--case",
        "26-100",
        "--reason",
        "court",
        "--plate",
        TARGET,
        "--days",
        "30",
        as_user="rex",
    )
    assert code == 0
    out = tmp_path / "usb" / "26-100"
    code, text = env.cli(
        "evidence",
        "export",
        "--case",
        "26-100",
        "--out",
        str(out),
        "--purpose",
        "trial",
        as_user="ivy",
    )
    assert code == 0 and "10 reads, 2 alerts" in text
    since = datetime.now(timezone.utc) - timedelta(days=31)
    expected = {
        r["read_id"]
        for r in stored(env.data_dir)
        if r["plate"] == TARGET and in_window(r, since, END)
    }
    assert set(pq.read_table(out / "reads.parquet").column("read_id").to_pylist()) == expected
    assert pq.read_table(out / "alerts.parquet").num_rows == 2
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert (manifest["case_number"], manifest["exported_by"]) == ("26-100", "ivy")
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    chain = [
        orjson.loads(line) for line in (out / "chain_of_custody.jsonl").read_bytes().splitlines()
    ]
    assert [c["action"] for c in chain] == ["exported", "registered"]
    record = env.audit("evidence.export")[-1]
    assert (record.result_count, record.terms["export_id"]) == (10, chain[1]["note"].split()[-1])
    code, text = env.cli("evidence", "verify", str(out), *WHY, as_user="ivy")
    assert code == 0 and "evidence intact" in text and "10 reads" in text
    for name in ("reads.csv", "reads.parquet", "chain_of_custody.jsonl"):
        original = flip_one_byte(out / name)
        code, text = env.cli("evidence", "verify", str(out), *WHY, as_user="ivy")
        assert code == 1 and "FAILED" in text and name in text, text
        (out / name).write_bytes(original)
    assert env.cli("evidence", "verify", str(out), *WHY, as_user="ivy")[0] == 0
    manifest_bytes = (out / "manifest.json").read_bytes()
    assert record.terms["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    _rewrite_manifest_without_the_key(out, purpose="a purpose nobody recorded")
    assert sinks.verify_evidence(out)["custody_records"] == 2  # every hash recomputed...
    code, text = env.cli("evidence", "verify", str(out), *WHY, as_user="ivy")
    assert code == 1 and "manifest.sig" in text and "manifest altered" in text, text  # ...not this
    _rewrite_manifest_without_the_key(out, manifest=manifest_bytes)
    code, _ = env.cli(
        "evidence",
        "custody",
        str(out),
        "--action",
        "booked",
        *WHY,
        as_user="ivy",
    )
    assert code == 0 and env.cli("evidence", "verify", str(out), *WHY, as_user="ivy")[0] == 0
    with pytest.raises(service.Forbidden, match="covert-list alert"):
        env.cli(
            "evidence",
            "export",
            "--case",
            "26-100",
            "--out",
            str(tmp_path / "x"),
            as_user="rex",
        )
    assert not (tmp_path / "x").exists()
    assert env.audit("evidence.export")[-1].outcome == "failed"


def test_evidence_through_the_api_export_fetch_verify(env: Env) -> None:
    case = {"case_number": "26-200"}
    body = {"reason": "burglary", "partial": {"pattern": "7A8C*", "start": iso(START)}}
    resp = env.client.post("/v1/holds", json=body, params=case, headers=env.auth("rex"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["reads"] == 2
    resp = env.client.post(
        "/v1/evidence/exports", json={**case, "purpose": "court"}, headers=env.auth("rex")
    )
    assert resp.status_code == 201, resp.text
    export = resp.json()
    assert export["manifest"]["counts"] == {"reads": 2, "alerts": 0}
    base = f"/v1/evidence/exports/{export['export_id']}"
    directory = env.data_dir / "evidence" / export["export_id"]
    resp = env.client.get(f"{base}/files/reads.csv", params=case, headers=env.auth("ivy"))
    assert resp.status_code == 200 and resp.content == (directory / "reads.csv").read_bytes()
    chain = (directory / "chain_of_custody.jsonl").read_text()
    assert '"action":"downloaded"' in chain and "reads.csv by" in chain
    assert env.audit("evidence.download")[-1].terms["file"] == "reads.csv"
    resp = env.client.get(f"{base}/verify", params=case, headers=env.auth("ivy"))
    assert resp.json()["ok"] is True and resp.json()["summary"]["reads"] == 2
    flip_one_byte(directory / "reads.csv")
    resp = env.client.get(f"{base}/verify", params=case, headers=env.auth("ivy"))
    assert resp.json()["ok"] is False and "reads.csv" in resp.json()["problems"]
    for path in (f"{base}/files/secret.txt", "/v1/evidence/exports/nope/verify"):
        assert env.client.get(path, params=case, headers=env.auth("ivy")).status_code == 404
    resp = env.client.post("/v1/evidence/exports", json=case, headers=env.auth("ivy"))
    assert resp.status_code == 201  # a second export of the same case: a new directory
    resp = env.client.post(
        "/v1/evidence/exports", json={"case_number": "26-none"}, headers=env.auth("ivy")
    )
    assert resp.status_code == 409 and "no active legal hold" in resp.json()["detail"]


def test_a_covert_export_is_fetched_and_verified_only_with_the_covert_right(env: Env) -> None:
    case = {"case_number": "26-201"}
    body = {"reason": "covert op", "plate": {"plate": TARGET, "start": iso(START)}}
    resp = env.client.post("/v1/holds", json=body, params=case, headers=env.auth("rex"))
    assert resp.status_code == 201, resp.text
    resp = env.client.post("/v1/evidence/exports", json=case, headers=env.auth("ivy"))
    assert resp.status_code == 201, resp.text
    export = resp.json()
    assert export["manifest"]["counts"]["alerts"] == 2  # one of them from a covert list
    base = f"/v1/evidence/exports/{export['export_id']}"
    for path in (f"{base}/files/alerts.csv", f"{base}/verify"):
        resp = env.client.get(path, params=case, headers=env.auth("rex"))  # records supervisor
        assert resp.status_code == 403 and "covert-list alert" in resp.text, resp.text
        assert env.audit()[-1].outcome == "denied"
    resp = env.client.get(f"{base}/files/alerts.csv", params=case, headers=env.auth("ivy"))
    assert resp.status_code == 200
    assert env.audit("evidence.download")[-1].terms["exporter"] == "ivy"
    resp = env.client.get(f"{base}/verify", params=case, headers=env.auth("ivy"))
    assert resp.json()["ok"] is True
    assert env.audit("evidence.verify")[-1].terms["exporter"] == "ivy"
    # A manifest altered to list a file outside the export is refused, never opened.
    directory = env.data_dir / "evidence" / export["export_id"]
    manifest = orjson.loads((directory / "manifest.json").read_bytes())
    manifest["files"].append({"name": "../../plateflow.db", "bytes": 1, "sha256": "0"})
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest))
    resp = env.client.get(f"{base}/verify", params=case, headers=env.auth("ivy"))
    assert resp.json()["ok"] is False and "outside the export directory" in resp.json()["problems"]
    resp = env.client.get(
        f"{base}/files/..%2F..%2Fplateflow.db", params=case, headers=env.auth("ivy")
    )
    assert resp.status_code == 404
