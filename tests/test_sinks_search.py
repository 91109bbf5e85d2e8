"""Stored-read search and compaction, every count checked against pyarrow reading the files."""

from __future__ import annotations

import json
import math
import random
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from shapely.geometry import Polygon

import sinks

START = datetime(2024, 5, 1, tzinfo=timezone.utc)
START_MS = int(START.timestamp() * 1000)
DAY_MS = 86_400_000
CAMERAS = {
    "cam-a": (37.7749, -122.4194),
    "cam-b": (37.7790, -122.4140),  # ~600 m from cam-a
    "cam-c": (37.8044, -122.2712),  # Oakland, ~13 km away
    "cam-d": (None, None),  # a camera without a position
}
# Plates chosen to exercise OCR classes, one-difference neighbours and globs.
PLATES = [
    "7ABC123", "7A8C123", "7ABC12", "7BAC123", "7ABC128", "1XYZ999", "8AD1234", "BAD5678",
    "3BAD000", "7ABD123", "ZZZ0001", "0OD0000",
]  # fmt: skip


def make_reads(n_days: int, per_day: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    reads = []
    for d in range(n_days):
        for i in range(per_day):
            camera = rng.choice(list(CAMERAS))
            lat, lon = CAMERAS[camera]
            plate = (
                rng.choice(PLATES)
                if rng.random() < 0.6
                else "".join(rng.choice("ABCDEFGHJKLMNPRTUVWXY0123456789") for _ in range(7))
            )
            reads.append(
                {
                    "read_id": f"r-{d:02d}-{i:04d}",
                    "camera_id": camera,
                    "plate": plate,
                    "plate_raw": plate,
                    "ts": START_MS + d * DAY_MS + rng.randrange(DAY_MS),
                    "confidence": 0.8,
                    "state": rng.choice(["CA", "CA", "NV", None]),
                    "lat": None if lat is None else lat + rng.uniform(-0.0005, 0.0005),
                    "lon": None if lon is None else lon + rng.uniform(-0.0005, 0.0005),
                    "candidates": [{"plate": "7ABC123", "confidence": 0.3}] if i % 17 == 0 else [],
                    "agency": "SPD",
                    "image_ref": None,
                }
            )
    return reads


@pytest.fixture()
def store(data_dir: Path) -> sinks.ReadStore:
    store = sinks.ReadStore(data_dir, fsync=False)
    reads = make_reads(6, 300)
    for partition in range(3):
        part = [r for r in reads if sinks.partition_for(r["camera_id"], 3) == partition]
        for offset in range(0, len(part), 250):
            batch = part[offset : offset + 250]
            store.write_reads(partition, f"{batch[0]['ts']}-{offset}", batch)
    return store


def arrow_rows(store: sinks.ReadStore) -> list[dict[str, Any]]:
    files = [str(p) for d in store.days("reads") for p in store.files("reads", d)]
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()


def write_late_reads(store: sinks.ReadStore, day: date, n: int, seed: int) -> None:
    """``n`` reads arriving late for ``day`` (noon), with ids of their own, in one batch."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
    late = make_reads(1, n, seed=seed)
    for read in late:
        read["ts"] = int(noon.timestamp() * 1000)
        read["read_id"] = "late-" + read["read_id"]
    store.write_reads(0, "9-0", late)


def ids(pages: sinks.Pages) -> list[str]:
    return [rid for page in pages for rid in page["read_id"].to_list()]


def test_plate_history_exact_ocr_fuzzy_match_pyarrow(store: sinks.ReadStore) -> None:
    rows = arrow_rows(store)
    end = START + timedelta(days=6)
    exact = store.plate_history("7ABC123", START, end)
    assert sorted(ids(exact)) == sorted(r["read_id"] for r in rows if r["plate"] == "7ABC123")
    assert exact.count() == len(ids(exact))

    ocr = store.plate_history("7ABC123", START, end, ocr_equivalents=7)
    expected = {"7ABC123", "7A8C123"}  # 8/B are equivalent
    got = ocr.collect()
    assert sorted(got["read_id"]) == sorted(r["read_id"] for r in rows if r["plate"] in expected)
    kinds = dict(zip(got["plate"], got["match_kind"], strict=True))
    assert kinds["7A8C123"] == "ocr" and kinds["7ABC123"] == "exact"
    assert set(got.filter(pl.col("plate") == "7A8C123")["substitutions"]) == {1}

    fuzzy = store.plate_history("7ABC123", START, end, differences=1).collect()
    # one difference: 7ABC12 (deletion), 7BAC123 (swap), 7ABC128 / 7ABD123 / 7A8C123 (subst.)
    near = {"7ABC123", "7ABC12", "7BAC123", "7ABC128", "7ABD123", "7A8C123"}
    assert sorted(fuzzy["read_id"]) == sorted(r["read_id"] for r in rows if r["plate"] in near)
    assert set(fuzzy.filter(pl.col("plate") == "7BAC123")["match_kind"]) == {"fuzzy"}
    assert fuzzy["ts"].is_sorted()


def test_plate_history_time_range_state_and_cameras(store: sinks.ReadStore) -> None:
    rows = arrow_rows(store)
    start, end = START + timedelta(days=1, hours=6), START + timedelta(days=3, hours=2)
    got = store.plate_history("7ABC123", start, end, state="ca", cameras=["cam-a", "cam-c"])
    expected = [
        r["read_id"]
        for r in rows
        if r["plate"] == "7ABC123"
        and start <= r["ts"] < end
        and r["state"] == "CA"
        and r["camera_id"] in ("cam-a", "cam-c")
    ]
    assert sorted(ids(got)) == sorted(expected) and expected
    assert got.query["plate"] == "7ABC123" and got.query["cameras"] == ["cam-a", "cam-c"]


def test_plate_history_via_candidates(store: sinks.ReadStore) -> None:
    rows = arrow_rows(store)
    got = store.plate_history("7ABC123", candidates=True).collect()
    expected = [
        r["read_id"]
        for r in rows
        if r["plate"] == "7ABC123" or any(c["plate"] == "7ABC123" for c in r["candidates"])
    ]
    assert sorted(got["read_id"]) == sorted(expected)
    via = got.filter(pl.col("via_candidate"))
    assert via.height > 0 and set(via["matched_plate"]) == {"7ABC123"}
    assert (via["plate"] != "7ABC123").all()
    assert store.plate_history("7ABC123", candidates=True).count() == len(expected)


@pytest.mark.parametrize("pattern", ["7AB?12*", "*XYZ*", "[8B]AD*", "*BAD*", "?A?C1*", "7*3"])
def test_partial_search_matches_pyarrow(store: sinks.ReadStore, pattern: str) -> None:
    regex = "^" + pattern.replace("?", ".").replace("*", ".*") + "$"
    files = [str(p) for d in store.days("reads") for p in store.files("reads", d)]
    expected = ds.dataset(files, format="parquet").to_table(
        filter=pc.match_substring_regex(pc.field("plate"), regex)
    )
    got = store.partial_search(pattern)
    assert sorted(ids(got)) == sorted(expected.column("read_id").to_pylist())
    assert got.count() == expected.num_rows


def test_partial_search_state_cameras_and_ocr(store: sinks.ReadStore) -> None:
    rows = arrow_rows(store)
    got = store.partial_search("[8B]AD*", state="CA", cameras={"cam-b"})
    expected = [
        r["read_id"]
        for r in rows
        if re.fullmatch(r"[8B]AD.*", r["plate"])
        and r["state"] == "CA"
        and r["camera_id"] == "cam-b"
    ]
    assert sorted(ids(got)) == sorted(expected)
    # One OCR substitution: 8AD... also admits BAD/8A0/...; 3BAD000 does not match (extra 3).
    ocr = store.partial_search("8AD*", ocr_equivalents=1).collect()
    assert set(ocr["plate"]) == {"8AD1234", "BAD5678"}
    assert set(ocr.filter(pl.col("plate") == "BAD5678")["substitutions"]) == {1}
    with pytest.raises(sinks.SinksValueError, match="'%' at position 2 is not a plate") as bad:
        store.partial_search("7A%")
    assert bad.value.field == "pattern"
    with pytest.raises(sinks.SinksValueError, match="fixes 0 known character"):
        store.partial_search("*")


def test_pages_are_bounded_ordered_and_complete(store: sinks.ReadStore) -> None:
    pages = list(
        store.partial_search("*", page_size=7)
        if False
        else store.partial_search("*A*", page_size=7)
    )
    assert all(page.height == 7 for page in pages[:-1]) and 0 < pages[-1].height <= 7
    merged = pl.concat(pages)
    assert merged["ts"].is_sorted()
    assert merged["read_id"].n_unique() == merged.height
    newest = pl.concat(list(store.partial_search("*A*", page_size=50, newest_first=True)))
    assert newest["ts"].is_sorted(descending=True)
    assert sorted(newest["read_id"]) == sorted(merged["read_id"])
    assert set(merged.columns) == set(sinks.READS_SCHEMA) | set(sinks.MATCH_COLUMNS)
    with pytest.raises(sinks.SinksError, match="page_size"):
        store.plate_history("7ABC123", page_size=0)


def test_search_plates_with_a_predicate(store: sinks.ReadStore) -> None:
    rows = arrow_rows(store)
    got = store.search_plates(lambda s: s.str.ends_with("999"), description={"list": "x"})
    assert sorted(ids(got)) == sorted(r["read_id"] for r in rows if r["plate"].endswith("999"))
    assert got.query["list"] == "x"


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def test_canvass_radius_groups_by_plate(store: sinks.ReadStore) -> None:
    rows = arrow_rows(store)
    start, end = START + timedelta(days=2), START + timedelta(days=3)
    center = CAMERAS["cam-a"]
    got = store.canvass(start, end, center=center, radius_m=1000, page_size=5)
    pages = list(got)
    assert all(p.height <= 5 for p in pages)
    result = pl.concat(pages)
    inside = [
        r
        for r in rows
        if start <= r["ts"] < end
        and r["lat"] is not None
        and haversine(center[0], center[1], r["lat"], r["lon"]) <= 1000
    ]
    assert {r["camera_id"] for r in inside} == {"cam-a", "cam-b"}
    expected: dict[str, list[dict[str, Any]]] = {}
    for r in inside:
        expected.setdefault(r["plate"], []).append(r)
    assert sorted(result["plate"]) == sorted(expected)
    for row in result.iter_rows(named=True):
        group = expected[row["plate"]]
        assert row["reads"] == len(group)
        assert row["first_seen"] == min(r["ts"] for r in group)
        assert row["last_seen"] == max(r["ts"] for r in group)
        assert sorted(row["read_ids"]) == sorted(r["read_id"] for r in group)
        assert row["nearest_m"] <= 1000
    assert result["first_seen"].is_sorted()
    assert sorted(got.read_ids()) == sorted(r["read_id"] for r in inside)


def test_canvass_polygon(store: sinks.ReadStore) -> None:
    rows = arrow_rows(store)
    start, end = START, START + timedelta(days=6)
    lat, lon = CAMERAS["cam-c"]
    square = Polygon([(lon - 0.01, lat - 0.01), (lon + 0.01, lat - 0.01),
                      (lon + 0.01, lat + 0.01), (lon - 0.01, lat + 0.01)])  # fmt: skip
    result = store.canvass(start, end, polygon=square).collect()
    expected = {r["plate"] for r in rows if r["camera_id"] == "cam-c"}
    assert set(result["plate"]) == expected
    assert result["reads"].sum() == sum(1 for r in rows if r["camera_id"] == "cam-c")
    with pytest.raises(sinks.SinksError, match="either center"):
        store.canvass(start, end)
    with pytest.raises(sinks.SinksError, match="radius_m"):
        store.canvass(start, end, center=(0.0, 0.0), radius_m=0)


def test_compaction_merges_sorts_and_hides_sources(store: sinks.ReadStore) -> None:
    day = date(2024, 5, 2)
    before = store.files("reads", day)
    assert len(before) > 1
    rows_before = sorted(r["read_id"] for f in before for r in pq.read_table(f).to_pylist())
    target = store.compact("reads", day)
    assert target is not None and target.name == "compact-000001.parquet"
    assert store.files("reads", day) == [target]
    assert not any(f.exists() for f in before)
    table = pq.read_table(target)
    assert sorted(table.column("read_id").to_pylist()) == rows_before
    plates = table.column("plate").to_pylist()
    assert plates == sorted(plates)
    meta = {k.decode(): v.decode() for k, v in pq.read_metadata(target).metadata.items()}
    assert meta["plateflow.sorted_by"] == "plate,ts"
    assert meta["plateflow.retain_until"] == "2025-05-02"
    assert store.compact("reads", day) is None  # nothing left to merge
    # A late batch for the day is merged by the next compaction.
    write_late_reads(store, day, 5, seed=99)
    second = store.compact("reads", day)
    assert second is not None and second.name == "compact-000002.parquet"
    assert pq.read_table(second).num_rows == len(rows_before) + 5
    assert store.files("reads", day) == [second]


def test_compaction_interrupted_before_and_after_the_switch(store: sinks.ReadStore) -> None:
    day = date(2024, 5, 3)
    directory = store.files("reads", day)[0].parent
    sources = store.files("reads", day)
    total = sum(pq.read_metadata(f).num_rows for f in sources)
    # Crash after the manifest, before the rename: sources stay live, next run rolls back.
    (directory / sinks.COMPACTION_MANIFEST).write_text(
        json.dumps({"target": "compact-000001.parquet", "sources": [f.name for f in sources]})
    )
    (directory / ".compact-000001.parquet.tmp").write_bytes(b"half written")
    assert store.files("reads", day) == sources
    assert (
        store.scan_reads(START + timedelta(days=2), START + timedelta(days=3)).collect().height
        == total
    )
    # Crash after the rename, before deleting sources: the target is the truth, no double rows.
    merged = pl.read_parquet(sources)
    merged.write_parquet(directory / "compact-000001.parquet")
    assert [f.name for f in store.files("reads", day)] == ["compact-000001.parquet"]
    assert (
        store.scan_reads(START + timedelta(days=2), START + timedelta(days=3)).collect().height
        == total
    )
    store.compact("reads", day)  # finishes the cleanup
    assert not (directory / sinks.COMPACTION_MANIFEST).exists()
    assert not any(f.exists() for f in sources)
    assert pq.read_table(directory / "compact-000001.parquet").num_rows == total


def test_compact_closed_skips_recent_days_and_pending_files(
    store: sinks.ReadStore, redis_client: Any
) -> None:
    progress = sinks.StreamProgress(redis_client)
    pending = store.files("reads", date(2024, 5, 1))[0]
    progress.begin(0, [pending])
    now = datetime(2024, 5, 6, 1, tzinfo=timezone.utc)  # 5 May is not closed yet
    written = store.compact_closed(now, progress)
    assert {p.parent.name for p in written} == {f"date=2024-05-0{d}" for d in range(1, 5)}
    assert pending.exists()
    assert len(store.files("reads", date(2024, 5, 5))) > 1
    assert sorted(f.name for f in store.files("reads", date(2024, 5, 1))) == sorted(
        ["compact-000001.parquet", pending.name]
    )
    # Searches give the same answers after compaction.
    rows = arrow_rows(store)
    assert sorted(ids(store.plate_history("7ABC123"))) == sorted(
        r["read_id"] for r in rows if r["plate"] == "7ABC123"
    )


def test_search_survives_compaction_between_pages(store: sinks.ReadStore) -> None:
    rows = arrow_rows(store)
    expected = sorted(r["read_id"] for r in rows if "A" in r["plate"])
    pages = iter(store.partial_search("*A*", page_size=5, step_rows=1))
    got = list(next(pages)["read_id"])
    # Later days are compacted while the caller is still paging: their files are replaced.
    assert len(store.compact_closed(datetime(2024, 6, 1, tzinfo=timezone.utc))) == 6
    for page in pages:
        got.extend(page["read_id"])
    assert sorted(got) == expected


def test_search_returns_only_the_columns_asked_for(store: sinks.ReadStore) -> None:
    full = store.plate_history("7ABC123").collect()
    narrow = store.plate_history("7ABC123", columns=["plate", "ts", "camera_id"]).collect()
    assert narrow.columns == ["camera_id", "plate", "ts", *sinks.MATCH_COLUMNS]
    assert narrow.height == full.height
    assert narrow["ts"].to_list() == full["ts"].to_list()
    with pytest.raises(sinks.SinksError, match="unknown read columns"):
        store.plate_history("7ABC123", columns=["colour"])
