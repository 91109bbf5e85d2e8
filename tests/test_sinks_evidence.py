"""Evidence export and verification: hashes, custody chain, one-byte tampering."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import sinks

DAY = date(2024, 1, 10)
AT = datetime(2024, 2, 1, 9, 30, tzinfo=timezone.utc)


def read(i: int) -> dict[str, Any]:
    ts = int(datetime(2024, 1, 10, 8, tzinfo=timezone.utc).timestamp() * 1000) + i * 60_000
    return {
        "read_id": f"r-{i}",
        "camera_id": "cam-9",
        "plate": "7ABC123" if i % 2 == 0 else f"X{i:05d}",
        "plate_raw": "7ABC 123",
        "ts": ts,
        "confidence": 0.93,
        "state": "CA",
        "lat": 37.77,
        "lon": -122.41,
        "candidates": [{"plate": "7A8C123", "confidence": 0.4}] if i == 0 else [],
        "agency": "SPD",
        "image_ref": f"img/{i}.jpg",
    }


@pytest.fixture()
def exported(data_dir: Path, tmp_path: Path) -> tuple[sinks.ReadStore, Path, dict[str, Any]]:
    store = sinks.ReadStore(data_dir, fsync=False)
    reads = [read(i) for i in range(10)]
    store.write_reads(0, "1-0", reads)
    alert = {
        "alert_id": "a-0", "read": reads[0],
        "hotlist": {"name": "ncic", "category": "stolen", "priority": 0, "covert": False},
        "entry": {"entry_id": "e", "plate": "7ABC123", "state": "CA", "reason": "stolen",
                  "case_number": "24-9", "entered_by": "u", "expires_at": None},
        "match": {"kind": "exact", "differences": 0, "substitutions": 0, "edits": [],
                  "matched_text": "7ABC123", "via_candidate": False},
        "state_mismatch": False, "verify_before_action": True, "advisories": [],
        "emitted_at": reads[0]["ts"] + 5, "sighting_of": None,
    }  # fmt: skip
    store.write_alerts(0, "1-0", [alert])
    start = datetime(2024, 1, 10, tzinfo=timezone.utc)
    pages = store.plate_history("7ABC123", start, start + timedelta(days=1))
    store.place_hold("24-9", pages, by="det. smith", at=AT, reason="robbery")
    out = tmp_path / "evidence"
    manifest = store.export_evidence(
        "24-9", out, "det. smith", at=AT, purpose="court", release={"agency": "DA"}
    )
    return store, out, manifest


def test_export_writes_every_piece(exported: tuple[sinks.ReadStore, Path, dict[str, Any]]) -> None:
    _, out, manifest = exported
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["reads.parquet", "reads.csv", "alerts.parquet", "alerts.csv", "hold.json",
         "manifest.json", "chain_of_custody.jsonl"]
    )  # fmt: skip
    reads = pq.read_table(out / "reads.parquet")
    assert sorted(reads.column("read_id").to_pylist()) == ["r-0", "r-2", "r-4", "r-6", "r-8"]
    rows = list(csv.DictReader(io.StringIO((out / "reads.csv").read_text())))
    assert [r["read_id"] for r in rows] == reads.column("read_id").to_pylist()
    assert rows[0]["ts"] == "2024-01-10T08:00:00.000Z"
    assert json.loads(rows[0]["candidates"]) == [{"plate": "7A8C123", "confidence": 0.4}]
    assert pq.read_table(out / "alerts.parquet").column("alert_id").to_pylist() == ["a-0"]
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert on_disk["case_number"] == "24-9" and on_disk["exported_by"] == "det. smith"
    assert on_disk["exported_at"] == AT.isoformat() and on_disk["release"] == {"agency": "DA"}
    assert on_disk["queries"][0]["search"] == "plate_history"
    assert on_disk["queries"][0]["plate"] == "7ABC123"
    assert on_disk["counts"] == {"reads": 5, "alerts": 1}
    for entry in on_disk["files"]:
        data = (out / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]
    chain = [json.loads(x) for x in (out / "chain_of_custody.jsonl").read_text().splitlines()]
    assert chain[0]["action"] == "exported" and chain[0]["prev"] is None
    assert (
        chain[0]["manifest_sha256"]
        == hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    )
    summary = sinks.verify_evidence(out)
    assert summary["reads"] == 5 and summary["custody_records"] == 1


def test_custody_records_chain(exported: tuple[sinks.ReadStore, Path, dict[str, Any]]) -> None:
    _, out, _ = exported
    sinks.record_custody(out, "copied to DVD", "evidence tech", note="disc 1 of 1")
    sinks.record_custody(out, "booked", "property room", note="locker 12")
    assert sinks.verify_evidence(out)["custody_records"] == 3


@pytest.mark.parametrize(
    "name",
    ["reads.parquet", "reads.csv", "alerts.parquet", "alerts.csv", "hold.json",
     "manifest.json", "chain_of_custody.jsonl"],
)  # fmt: skip
def test_one_byte_change_anywhere_fails(
    exported: tuple[sinks.ReadStore, Path, dict[str, Any]], tmp_path: Path, name: str
) -> None:
    _, out, _ = exported
    sinks.record_custody(out, "booked", "property room")
    size = (out / name).stat().st_size
    for offset in (0, size // 2, size - 1):
        for delta in (1, 0x20):
            copy = tmp_path / f"copy-{offset}-{delta}"
            shutil.copytree(out, copy)
            data = bytearray((copy / name).read_bytes())
            data[offset] = (data[offset] + delta) % 256
            (copy / name).write_bytes(bytes(data))
            with pytest.raises(
                sinks.EvidenceError, match=r"failed verification|not an evidence|not valid"
            ):
                sinks.verify_evidence(copy)


def test_missing_or_extra_files_fail(
    exported: tuple[sinks.ReadStore, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, out, _ = exported
    extra = tmp_path / "extra"
    shutil.copytree(out, extra)
    (extra / "notes.txt").write_text("hi")
    with pytest.raises(sinks.EvidenceError, match=r"notes\.txt: not in the manifest"):
        sinks.verify_evidence(extra)
    missing = tmp_path / "missing"
    shutil.copytree(out, missing)
    (missing / "alerts.csv").unlink()
    with pytest.raises(sinks.SinksError, match=r"alerts\.csv: missing"):
        sinks.verify_evidence(missing)
    with pytest.raises(sinks.SinksError, match="not an evidence export"):
        sinks.verify_evidence(tmp_path)


def test_export_refusals(
    exported: tuple[sinks.ReadStore, Path, dict[str, Any]], tmp_path: Path
) -> None:
    store, out, _ = exported
    with pytest.raises(sinks.SinksConflictError, match="not empty"):
        store.export_evidence("24-9", out, "x")
    with pytest.raises(sinks.SinksConflictError, match="no active legal hold"):
        store.export_evidence("nope", tmp_path / "n", "x")
    # The export survives a purge of the source partitions: it reads the held copy.
    later = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert {r.action for r in store.purge(later)} == {"purged"} and store.days("reads") == []
    store.export_evidence("24-9", tmp_path / "second", "x", at=later)
    assert sinks.verify_evidence(tmp_path / "second")["reads"] == 5
