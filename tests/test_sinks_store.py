"""The Parquet store: files, schema, metadata and sidecars read back with pyarrow (not polars)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

import sinks

DAY0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
DAY0_MS = int(DAY0.timestamp() * 1000)
HOUR = 3_600_000


def make_read(i: int, ts: int, plate: str | None = None) -> dict[str, Any]:
    return {
        "read_id": f"r-{i}",
        "camera_id": f"cam-{i % 3}",
        "plate": plate or f"ABC{i:04d}",
        "plate_raw": f"abc-{i:04d}",
        "ts": ts,
        "confidence": 0.5 + (i % 5) / 10,
        "state": None if i % 4 == 0 else "CA",
        "lat": None if i % 7 == 0 else 37.0 + i / 1000,
        "lon": None if i % 7 == 0 else -122.0,
        "candidates": [] if i % 2 else [{"plate": "X1", "confidence": 0.25}],
        "agency": "SPD",
        "image_ref": f"img/{i}.jpg" if i % 3 == 0 else None,
    }


def make_alert(i: int, read: dict[str, Any], covert: bool = False) -> dict[str, Any]:
    return {
        "alert_id": f"a-{i}",
        "read": read,
        "hotlist": {"name": "ncic", "category": "stolen", "priority": 1, "covert": covert},
        "entry": {
            "entry_id": f"e-{i}",
            "plate": read["plate"],
            "state": None,
            "reason": "x",
            "case_number": None,
            "entered_by": "u",
            "expires_at": None,
        },
        "match": {
            "kind": "ocr",
            "differences": 0,
            "substitutions": 1,
            "edits": [],
            "matched_text": read["plate"],
            "via_candidate": False,
        },
        "state_mismatch": False,
        "verify_before_action": True,
        "advisories": [],
        "emitted_at": read["ts"] + 5,
        "sighting_of": None,
    }


def test_write_reads_files_schema_and_metadata(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir, retention_days=400)
    # 30 reads spanning the midnight between 1 and 2 March (UTC).
    reads = [make_read(i, DAY0_MS + 23 * HOUR + i * 240_000) for i in range(30)]
    paths = store.write_reads(2, "1709251200000-0", reads)
    assert paths == [
        data_dir / "reads/date=2024-03-01/part-002-1709251200000-0.parquet",
        data_dir / "reads/date=2024-03-02/part-002-1709251200000-0.parquet",
    ]
    tables = [pq.read_table(path) for path in paths]
    assert sum(t.num_rows for t in tables) == 30
    table = tables[0]
    assert table.schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("confidence").type == pa.float32()
    assert table.schema.field("lat").type == pa.float64()
    assert table.schema.field("partition").type == pa.int16()
    cand = table.schema.field("candidates").type
    assert pa.types.is_list(cand) or pa.types.is_large_list(cand)
    assert {cand.value_type.field(i).name for i in range(2)} == {"plate", "confidence"}
    assert table.schema.names == list(sinks.READS_SCHEMA)
    rows = table.to_pylist()
    assert rows[0]["read_id"] == "r-0"
    assert rows[0]["candidates"] == [{"plate": "X1", "confidence": 0.25}]
    assert rows[0]["lat"] is None and rows[1]["lat"] == pytest.approx(37.001)
    assert rows[0]["ts"] == datetime.fromtimestamp((DAY0_MS + 23 * HOUR) / 1000, timezone.utc)
    assert all(r["partition"] == 2 for r in rows)
    # Every row of a file lies in its date.
    for path, t in zip(paths, tables, strict=True):
        day = date.fromisoformat(path.parent.name.removeprefix("date="))
        assert {v.date() for v in t.column("ts").to_pylist()} == {day}
        meta = {k.decode(): v.decode() for k, v in pq.read_metadata(path).metadata.items()}
        assert meta["plateflow.retention_days"] == "400"
        assert meta["plateflow.retain_until"] == (day + timedelta(days=400)).isoformat()
        assert meta["plateflow.partition"] == "2"
        assert meta["plateflow.first_stream_id"] == "1709251200000-0"
        sidecar = json.loads((path.parent / "_retention.json").read_text())
        assert sidecar["retain_until"] == (day + timedelta(days=400)).isoformat()
        assert sidecar["legal_holds"] == [] and sidecar["purge"] is None
    assert pq.ParquetFile(paths[0]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_replayed_batch_rewrites_the_same_file(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir)
    reads = [make_read(i, DAY0_MS + i) for i in range(10)]
    first = store.write_reads(0, "5-0", reads)
    # The sidecar is never overwritten by a writer (a hold placed in between must survive).
    sidecar = first[0].parent / "_retention.json"
    content = json.loads(sidecar.read_text())
    content["legal_holds"].append({"case_number": "C-1"})
    sidecar.write_text(json.dumps(content))
    again = sinks.ReadStore(data_dir).write_reads(0, "5-0", reads)
    assert again == first
    assert pq.read_table(first[0]).num_rows == 10
    assert len(list(first[0].parent.glob("*.parquet"))) == 1
    assert not list(first[0].parent.glob(".*"))  # no temporaries left
    assert json.loads(sidecar.read_text())["legal_holds"] == [{"case_number": "C-1"}]


def test_alert_files(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir)
    read = make_read(1, DAY0_MS + 1000)
    alerts = [make_alert(1, read), make_alert(2, read, covert=True)]
    alerts[1]["sighting_of"] = "a-1"
    (path,) = store.write_alerts(1, "9-0", alerts)
    assert path == data_dir / "alerts/date=2024-03-01/part-001-9-0.parquet"
    table = pq.read_table(path)
    for name in [
        "alert_id",
        "emitted_at",
        "read_id",
        "camera_id",
        "plate",
        "ts",
        "hotlist",
        "category",
        "kind",
        "entry_id",
        "covert",
        "sighting_of",
        "alert",
    ]:
        assert name in table.schema.names
    rows = table.to_pylist()
    assert [r["covert"] for r in rows] == [False, True]
    assert rows[1]["sighting_of"] == "a-1"
    assert json.loads(rows[0]["alert"]) == alerts[0]
    assert rows[0]["kind"] == "ocr" and rows[0]["hotlist"] == "ncic"
    assert store.scan_alerts().collect().height == 2


def test_scan_prunes_date_directories(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir)
    for d in range(5):
        reads = [make_read(d * 100 + i, DAY0_MS + d * 24 * HOUR + i * HOUR) for i in range(10)]
        store.write_reads(0, f"{d}-0", reads)
    # Make day 0 unreadable: a scan outside it must never open it.
    broken = data_dir / "reads/date=2024-03-01/part-000-0-0.parquet"
    broken.write_bytes(b"not parquet")
    start = DAY0 + timedelta(days=1, hours=5)
    end = DAY0 + timedelta(days=3, hours=2)
    got = store.scan_reads(start, end).collect()
    expected = [
        r
        for d in range(1, 5)
        for r in pq.read_table(data_dir / f"reads/date=2024-03-0{d + 1}").to_pylist()
        if start <= r["ts"] < end
    ]
    assert got.height == len(expected) == 5 + 10 + 2
    assert sorted(got["read_id"].to_list()) == sorted(r["read_id"] for r in expected)
    assert store.days_between("reads", start, end) == [date(2024, 3, d) for d in (2, 3, 4)]
    assert store.scan_reads(DAY0 + timedelta(days=30)).collect().height == 0
    assert store.scan_reads().collect_schema() == pl.Schema(sinks.READS_SCHEMA)
    with pytest.raises(sinks.SinksError, match="no time zone"):
        store.scan_reads(datetime(2024, 3, 1))


def test_empty_store_scans_empty(data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir)
    assert store.scan_reads().collect().height == 0
    assert store.write_reads(0, "1-0", []) == []


def test_progress_commit_and_recover(redis_client: redis.Redis, data_dir: Path) -> None:
    store = sinks.ReadStore(data_dir)
    progress = sinks.StreamProgress(redis_client)
    assert progress.committed(0) is None
    reads = [make_read(i, DAY0_MS + i) for i in range(5)]
    paths = store.paths_for("reads", 0, "10-0", [r["ts"] for r in reads])
    progress.begin(0, paths)
    assert store.write_reads(0, "10-0", reads) == paths
    progress.commit(0, "10-4")
    assert progress.committed(0) == "10-4"
    assert progress.pending(0) == []
    assert progress.recover(0) == []
    assert paths[0].exists()

    # A crash between begin and commit: the next start deletes the half-done batch's files.
    later = [make_read(i, DAY0_MS + 2 * 24 * HOUR + i) for i in range(5, 9)]
    crashed = store.paths_for("reads", 0, "11-0", [r["ts"] for r in later])
    progress.begin(0, crashed)
    store.write_reads(0, "11-0", later)
    assert crashed[0].exists()
    fresh = sinks.StreamProgress(redis_client)
    assert fresh.recover(0) == crashed
    assert not crashed[0].exists()
    assert fresh.committed(0) == "10-4"
    assert redis_client.hget(sinks.PENDING_KEY, "0") is None
    # Replay, cut differently: entries <= committed are dropped; the rest land exactly once.
    assert not sinks.is_after("10-4", fresh.committed(0))
    assert sinks.is_after("11-0", fresh.committed(0))
    store.write_reads(0, "11-0", later[:2])
    store.write_reads(0, "11-2", later[2:])
    fresh.commit(0, "11-3")
    ids = sorted(store.scan_reads().collect()["read_id"].to_list())
    assert ids == sorted(f"r-{i}" for i in range(9))
    assert fresh.committed_all() == {0: "11-3"}


def test_progress_trim(redis_client: redis.Redis) -> None:
    progress = sinks.StreamProgress(redis_client)
    ids = [redis_client.xadd(sinks.stream_key(0), {b"data": b"{}"}) for _ in range(5)]
    assert progress.trim(0) == 0
    progress.commit(0, ids[2].decode())
    assert progress.trim(0) == 2
    assert redis_client.xlen(sinks.stream_key(0)) == 3
    with pytest.raises(sinks.SinksError, match="not a Redis stream id"):
        progress.commit(0, "latest")


def test_the_ingest_token_id_is_a_column_and_older_files_read_as_null(data_dir: Path) -> None:
    from matchers.reads import validate_read

    store = sinks.ReadStore(data_dir, retention_days=400)
    # The flow validates each read again: the fast and the careful path keep token_id.
    fast = validate_read(make_read(1, DAY0_MS + HOUR) | {"token_id": "cam-1", "candidates": []})
    careful = validate_read(make_read(2, DAY0_MS + 2 * HOUR) | {"token_id": "agent-n"})
    assert (fast["token_id"], careful["token_id"]) == ("cam-1", "agent-n")
    [path] = store.write_reads(0, "1709251200000-0", [fast, careful])
    assert pq.read_table(path).column("token_id").to_pylist() == ["cam-1", "agent-n"]
    # A file written before the column existed: scans insert it as null.
    old = pq.read_table(path).drop_columns(["token_id"]).replace_schema_metadata(None)
    pq.write_table(old, path.with_name("part-001-1709251100000-0.parquet"))
    got = store.scan_reads().sort(["read_id", "token_id"], nulls_last=True).collect()
    assert got["token_id"].to_list() == ["cam-1", None, "agent-n", None]
