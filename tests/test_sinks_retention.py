"""Retention purge and legal holds on real files, including purges killed part-way."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import sinks

DAY0 = date(2023, 1, 1)
DAY_MS = 86_400_000


def ms(day: date, hour: int = 12) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc).timestamp() * 1000)


def read(i: int, day: date, plate: str = "ABC123") -> dict[str, Any]:
    return {
        "read_id": f"r-{day.isoformat()}-{i}",
        "camera_id": "cam-1",
        "plate": plate,
        "plate_raw": plate,
        "ts": ms(day) + i,
        "confidence": 0.9,
        "state": "CA",
        "lat": 37.0,
        "lon": -122.0,
        "candidates": [],
        "agency": "SPD",
        "image_ref": None,
    }


def alert_for(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": "a-" + r["read_id"],
        "read": r,
        "hotlist": {"name": "ncic", "category": "stolen", "priority": 0, "covert": False},
        "entry": {"entry_id": "e-1", "plate": r["plate"], "state": "CA", "reason": "stolen",
                  "case_number": None, "entered_by": "u", "expires_at": None},
        "match": {"kind": "exact", "differences": 0, "substitutions": 0, "edits": [],
                  "matched_text": r["plate"], "via_candidate": False},
        "state_mismatch": False,
        "verify_before_action": True,
        "advisories": [],
        "emitted_at": r["ts"] + 10,
        "sighting_of": None,
    }  # fmt: skip


def fill(store: sinks.ReadStore, days: int, per_day: int = 20) -> None:
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        reads = [
            read(i, day, plate="HOT777" if i == 0 else f"P{d:03d}{i:02d}") for i in range(per_day)
        ]
        store.write_reads(0, f"{ms(day)}-0", reads)
        store.write_alerts(0, f"{ms(day)}-0", [alert_for(reads[0])])


def utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def test_purge_deletes_expired_partitions_held_or_not(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir, fsync=False)
    fill(store, 10)
    # Day 0-9 retain until day+365. On DAY0+370 days 0-4 are expired (day+365 < now).
    now = utc(DAY0 + timedelta(days=370))
    held = store.plate_history(
        "HOT777", utc(DAY0 + timedelta(days=2)), utc(DAY0 + timedelta(days=4))
    )
    hold = store.place_hold("C-42", held, by="det. smith", at=now, reason="homicide 23-100")
    assert hold.reads == 2 and hold.alerts == 2
    assert hold.days == (DAY0 + timedelta(days=2), DAY0 + timedelta(days=3))

    planned = store.purge(now, dry_run=True, by="records supervisor")
    assert {(r.kind, r.day.day, r.action) for r in planned} == {
        (kind, d, "would_purge") for kind in ("reads", "alerts") for d in (1, 2, 3, 4, 5)
    }
    assert len(store.days("reads")) == 10  # a dry run deletes nothing

    records = store.purge(now, by="records supervisor")
    purged = {(r.kind, r.day) for r in records if r.action == "purged"}
    expired = {(k, DAY0 + timedelta(days=d)) for k in ("reads", "alerts") for d in range(5)}
    assert purged == expired and len(records) == 10
    assert all(r.rows == (20 if r.kind == "reads" else 1) for r in records)
    assert sorted(r.day.day for r in records if r.holds == ("C-42",)) == [3, 3, 4, 4]
    assert store.days("reads") == [DAY0 + timedelta(days=d) for d in (5, 6, 7, 8, 9)]
    assert not list((data_dir / "reads").glob("*.purging"))
    # The purge log (independent JSON reading) records each purge once, with who and rows.
    log = [json.loads(line) for line in (data_dir / sinks.PURGE_LOG).read_text().splitlines()]
    assert sorted((r["kind"], r["date"]) for r in log) == sorted(
        (k, d.isoformat()) for k, d in purged
    )
    assert {r["by"] for r in log} == {"records supervisor"}
    assert store.purge(now) == []  # nothing left to purge
    assert pq.read_table(data_dir / "holds/case=C-42/reads.parquet").num_rows == 2


def test_a_hold_keeps_its_copy_until_release(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir, fsync=False)
    fill(store, 3)
    now = utc(DAY0 + timedelta(days=400))
    day = DAY0 + timedelta(days=1)
    ids = [f"r-{day.isoformat()}-{i}" for i in (0, 3)]
    store.place_hold(
        "C-7", ids, by="det. jones", at=now, start=utc(day), end=utc(day + timedelta(days=1))
    )
    sidecar = json.loads((data_dir / f"reads/date={day}/_retention.json").read_text())
    assert [h["case_number"] for h in sidecar["legal_holds"]] == ["C-7"]
    assert sidecar["legal_holds"][0]["reads"] == 2
    held = pq.read_table(data_dir / "holds/case=C-7/reads.parquet")
    assert sorted(held.column("read_id").to_pylist()) == sorted(ids)
    assert pq.read_table(data_dir / "holds/case=C-7/alerts.parquet").num_rows == 1

    with pytest.raises(sinks.SinksValueError, match="needs a reason"):
        store.release_hold("C-7", by="sgt", at=now, reason=" ")
    released = store.release_hold("C-7", by="sgt", at=now, reason="case closed")
    assert released.released is not None and released.released["by"] == "sgt"
    sidecar = json.loads((data_dir / f"reads/date={day}/_retention.json").read_text())
    assert sidecar["legal_holds"] == [] and sidecar["released_holds"][0]["reason"] == "case closed"
    assert not (data_dir / "holds/case=C-7/reads.parquet").exists()
    assert store.holds() == [] and store.holds(include_released=True)[0].case_number == "C-7"
    assert [r.action for r in store.purge(now)] == ["purged"] * 6
    assert store.days("reads") == []
    with pytest.raises(sinks.SinksConflictError, match="was released"):
        store.place_hold("C-7", ids, by="x", at=now)
    with pytest.raises(sinks.SinksConflictError, match="no active legal hold"):
        store.release_hold("C-7", by="sgt", at=now, reason="again")


def test_a_held_day_is_purged_and_only_the_held_rows_live_on_in_the_hold(
    data_dir: Path, tmp_path: Path
) -> None:
    store = sinks.ReadStore(data_dir, fsync=False)
    fill(store, 3)
    now = utc(DAY0 + timedelta(days=400))
    day = DAY0 + timedelta(days=1)
    ids = [f"r-{day.isoformat()}-{i}" for i in (0, 3)]
    window = {"start": utc(day), "end": utc(day + timedelta(days=1))}
    store.place_hold("C-7", ids, by="det. jones", at=now, **window)  # type: ignore[arg-type]
    records = store.purge(now, by="cron")
    assert {(r.kind, r.action) for r in records} == {("reads", "purged"), ("alerts", "purged")}
    assert len(records) == 6 and store.days("reads") == [] and store.days("alerts") == []
    assert {r.holds for r in records if r.day == day} == {("C-7",)}  # the log names the hold
    # The copies are the evidence: exactly the held rows and their alerts, still exportable.
    held = pq.read_table(data_dir / "holds/case=C-7/reads.parquet")
    assert sorted(held.column("read_id").to_pylist()) == sorted(ids)
    manifest = store.export_evidence("C-7", tmp_path / "export", by="sgt", at=now)
    assert manifest["counts"]["reads"] == 2 and manifest["counts"]["alerts"] == 1


def test_hold_placement_adds_reads_and_checks_ids(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir, fsync=False)
    fill(store, 2)
    at = datetime(2023, 2, 1, tzinfo=timezone.utc)
    first = store.place_hold("24/001", [f"r-{DAY0}-1"], by="a", at=at)
    second = store.place_hold("24/001", [f"r-{DAY0}-1", f"r-{DAY0}-2"], by="b", at=at)
    assert first.reads == 1 and second.reads == 2 and len(second.placements) == 2
    assert (data_dir / "holds/case=24%2F001/hold.json").exists()  # case number made file-safe
    with pytest.raises(sinks.SinksNotFoundError, match="1 of 2 read ids are not in the store"):
        store.place_hold("24/002", [f"r-{DAY0}-1", "nope"], by="a", at=at)
    with pytest.raises(sinks.SinksNotFoundError, match="no reads to hold"):
        store.place_hold("24/003", store.plate_history("NOSUCH"), by="a", at=at)
    with pytest.raises(sinks.SinksValueError, match="case number") as refused:
        store.place_hold("", [f"r-{DAY0}-1"], by="a", at=at)
    assert refused.value.field == "case_number"


def test_retention_extension_protects_existing_partitions(data_dir: Path) -> None:
    sinks.ReadStore(data_dir, retention_days=365, fsync=False).write_reads(
        0, "1-0", [read(0, DAY0)]
    )
    longer = sinks.ReadStore(data_dir, retention_days=730, fsync=False)
    assert longer.purge(utc(DAY0 + timedelta(days=400))) == []
    assert longer.days("reads") == [DAY0]
    assert [r.action for r in longer.purge(utc(DAY0 + timedelta(days=731)))] == ["purged"]


def test_interrupted_purge_is_finished_by_the_next_run(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir, fsync=False)
    fill(store, 2)
    now = utc(DAY0 + timedelta(days=500))
    # Simulate a crash right after the rename: a tombstone with its record, not yet logged.
    directory = data_dir / f"reads/date={DAY0}"
    record = sinks.PurgeRecord(
        purge_id="abc", kind="reads", day=DAY0, action="purged", rows=20, files=1, bytes=1,
        retain_until=DAY0 + timedelta(days=365), holds=(), at=now, by="cron",
    )  # fmt: skip
    (directory / "_purge.json").write_text(json.dumps(record.to_dict()))
    directory.rename(directory.with_name(directory.name + ".purging"))
    assert store.days("reads") == [DAY0 + timedelta(days=1)]  # scans no longer see it
    records = store.purge(now)
    assert [r.purge_id for r in records][:1] == ["abc"]
    assert not list((data_dir / "reads").iterdir())
    assert [r.purge_id for r in store.purge_log()].count("abc") == 1


PURGER = """
import sys
from datetime import datetime, timezone
from pathlib import Path
import sinks
store = sinks.ReadStore(Path(sys.argv[1]), fsync=True)
print("ready", flush=True)
store.purge(datetime.fromisoformat(sys.argv[2]), by="cron")
print("done", flush=True)
"""


def test_purge_killed_at_random_points_never_loses_held_rows(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir, fsync=False)
    fill(store, 40, per_day=5)
    now = utc(DAY0 + timedelta(days=500))
    held_days = {DAY0 + timedelta(days=d) for d in (3, 17, 31)}
    for day in held_days:
        store.place_hold(f"C-{day.day}", [f"r-{day.isoformat()}-2"], by="det", at=now)
    expected_rows = {
        day: sum(pq.read_metadata(f).num_rows for f in store.files("reads", day))
        for day in store.days("reads")
    }
    env = {**os.environ, "PYTHONPATH": str(Path(sinks.__file__).resolve().parents[1])}
    rng = random.Random(5)
    remaining = []
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", PURGER, str(data_dir), now.isoformat()],
            stdout=subprocess.PIPE, env=env,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Whatever the kill point: a partition is whole or gone, every visible one readable,
        # and the held rows are in their copies.
        for day in store.days("reads"):
            rows = sum(pq.read_metadata(f).num_rows for f in store.files("reads", day))
            assert rows == expected_rows[day]
        for day in held_days:
            assert (
                pq.read_metadata(data_dir / f"holds/case=C-{day.day}/reads.parquet").num_rows == 1
            )
        for day in store.days("reads"):
            for f in store.files("reads", day):
                pq.read_metadata(f)
        remaining.append(len(store.days("reads")) + len(store.days("alerts")))
    store.purge(now)
    assert store.days("reads") == [] and store.days("alerts") == []
    assert not [p for p in (data_dir / "reads").iterdir() if p.name.endswith(".purging")]
    log = [r.day for r in store.purge_log() if r.kind == "reads"]
    assert sorted(log) == sorted(set(log))  # each partition logged once
    assert len(log) == 40
    # The kills landed part-way through at least once (not all before or after the purge).
    assert any(0 < n < 80 for n in remaining), remaining
