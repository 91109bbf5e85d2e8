"""The plate index beside compacted days and the row fetch of pass 2: searches must give the
same rows as pyarrow reading the data files, with the index, without it, across row groups."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matchers
import sinks
from sinks import _compact, _fetch
from tests.test_matchers_scan import patterns
from tests.test_sinks_search import START, ids, make_reads, write_late_reads

GROUP_ROWS = 64  # a 300-read day spans five row groups, so the fetch has groups to skip


@pytest.fixture()
def compacted(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> sinks.ReadStore:
    monkeypatch.setitem(_compact.ROW_GROUP_ROWS, "reads", GROUP_ROWS)
    store = sinks.ReadStore(data_dir, fsync=False)
    reads = make_reads(6, 300, seed=11)
    for partition in range(2):
        part = [r for r in reads if sinks.partition_for(r["camera_id"], 2) == partition]
        for offset in range(0, len(part), 200):
            batch = part[offset : offset + 200]
            store.write_reads(partition, f"{batch[0]['ts']}-{offset}", batch)
    # Days 1-5 compacted; the last day stays in batch files (as today's would).
    store.compact_closed(START + timedelta(days=5, hours=1))
    return store


def data_files(store: sinks.ReadStore) -> list[Path]:
    # What an independent reader globs: every *.parquet of the date partitions.
    return sorted(p for p in (store.data_dir / "reads").rglob("*.parquet") if p.name[0] not in "._")


def arrow_ids(store: sinks.ReadStore, keep: Callable[[dict[str, Any]], bool]) -> list[str]:
    table = ds.dataset([str(p) for p in data_files(store)], format="parquet").to_table()
    return sorted(r["read_id"] for r in table.to_pylist() if keep(r))


def test_compaction_writes_a_plate_index_in_row_order(compacted: sinks.ReadStore) -> None:
    day = date(2024, 5, 2)
    [target] = compacted.files("reads", day)
    index = sinks.plate_index_for(target)
    assert index.name == "_compact-000001.plates"
    assert pl.read_parquet(index)["plate"].to_list() == pl.read_parquet(target)["plate"].to_list()
    meta = pq.read_metadata(target)
    assert meta.num_row_groups > 1
    assert all(meta.row_group(i).num_rows <= GROUP_ROWS for i in range(meta.num_row_groups))
    kv = {k.decode(): v.decode() for k, v in pq.read_metadata(index).metadata.items()}
    assert kv["plateflow.kind"] == "plate_index"
    assert kv["plateflow.rows"] == str(meta.num_rows)
    # The index is neither a data file of the store nor of an independent reader.
    assert index not in compacted.files("reads", day)
    assert index not in data_files(compacted)
    dataset = ds.dataset(compacted.data_dir / "reads", format="parquet", partitioning="hive")
    assert str(index) not in dataset.files
    assert dataset.count_rows() == sum(pq.read_metadata(p).num_rows for p in data_files(compacted))


def test_compacted_reads_store_each_column_as_declared(compacted: sinks.ReadStore) -> None:
    [target] = compacted.files("reads", date(2024, 5, 2))
    meta = pq.read_metadata(target)
    group = meta.row_group(0)
    stored = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert set(stored) == set(_compact.READ_COLUMN_STORAGE)
    for name, (codec, dictionary, encoding) in _compact.READ_COLUMN_STORAGE.items():
        column = stored[name]
        assert column.compression == codec.upper().replace("NONE", "UNCOMPRESSED"), name
        assert column.has_dictionary_page == dictionary, name
        if encoding is not None:
            assert encoding in column.encodings, name
        assert column.is_stats_set == (name in _compact.READ_STATISTICS), name
    # The layout changes nothing a reader sees: the day reads back as the rows it was given.
    frame = pl.read_parquet(target)
    assert frame.schema == pl.Schema(sinks.READS_SCHEMA)
    assert frame.equals(frame.sort("plate", "ts"))
    assert set(frame["read_id"]) == set(
        pl.scan_parquet(data_files(compacted)).filter(pl.col("ts").dt.date() == date(2024, 5, 2))
        .collect()["read_id"]
    )  # fmt: skip


def test_a_search_fills_a_column_an_older_file_lacks_with_nulls(
    compacted: sinks.ReadStore,
) -> None:
    # A compacted day written before `plate_raw` existed, searched with a day that has it.
    [old] = compacted.files("reads", date(2024, 5, 2))
    pq.write_table(pq.read_table(old).drop_columns(["plate_raw"]), old, row_group_size=GROUP_ROWS)
    frame = compacted.partial_search("*BC*").collect()
    assert sorted(frame["read_id"]) == arrow_ids(compacted, lambda r: "BC" in r["plate"])
    old_day = frame["ts"].dt.date() == date(2024, 5, 2)
    assert old_day.any() and (~old_day).any()
    assert frame.filter(old_day)["plate_raw"].is_null().all()
    assert frame.filter(~old_day)["plate_raw"].is_not_null().all()


SEARCHES: list[
    tuple[str, Callable[[sinks.ReadStore], sinks.Pages], Callable[[dict[str, Any]], bool]]
] = [
    ("infix", lambda s: s.partial_search("*BC*"), lambda r: "BC" in r["plate"]),
    (
        "positional",
        lambda s: s.partial_search("7AB?12*"),
        lambda r: re.fullmatch(r"7AB.12.*", r["plate"]) is not None,
    ),
    (
        "set",
        lambda s: s.partial_search("[8B]AD*"),
        lambda r: re.fullmatch(r"[8B]AD.*", r["plate"]) is not None,
    ),
    ("exact", lambda s: s.plate_history("7ABC123"), lambda r: r["plate"] == "7ABC123"),
    (
        "ocr",
        lambda s: s.plate_history("7ABC123", ocr_equivalents=7),
        lambda r: re.fullmatch(r"7A[8B]C[1I][2Z]3", r["plate"]) is not None,
    ),
    (
        "state",
        lambda s: s.partial_search("*BC*", state="NV"),
        lambda r: "BC" in r["plate"] and r["state"] == "NV",
    ),
    (
        "candidates",
        lambda s: s.plate_history("7ABC123", candidates=True),
        lambda r: r["plate"] == "7ABC123" or any(c["plate"] == "7ABC123" for c in r["candidates"]),
    ),
    (
        "mid-day window",
        lambda s: s.partial_search(
            "*BC*", START + timedelta(days=1, hours=6), START + timedelta(days=3, hours=18)
        ),
        lambda r: (
            "BC" in r["plate"]
            and START + timedelta(days=1, hours=6) <= r["ts"] < START + timedelta(days=3, hours=18)
        ),
    ),
]


@pytest.mark.parametrize(("name", "search", "keep"), SEARCHES, ids=[s[0] for s in SEARCHES])
def test_searches_match_pyarrow_with_and_without_plate_indexes(
    compacted: sinks.ReadStore,
    name: str,
    search: Callable[[sinks.ReadStore], sinks.Pages],
    keep: Callable[[dict[str, Any]], bool],
) -> None:
    expected = arrow_ids(compacted, keep)
    assert expected, f"the fixture must give {name} something to find"
    pages = search(compacted)
    with_index = ids(pages)
    assert sorted(with_index) == expected
    assert len(with_index) == len(set(with_index)) == pages.count()
    frame = pages.collect()
    assert frame["ts"].is_sorted()
    if name != "candidates":
        assert (frame["plate"] == frame["matched_plate"]).all()
    for index in (compacted.data_dir / "reads").rglob(f"*{sinks.PLATE_INDEX_SUFFIX}"):
        index.unlink()
    assert sorted(ids(search(compacted))) == expected


def test_fetch_rows_reads_exactly_the_rows_asked_for(compacted: sinks.ReadStore) -> None:
    [target] = compacted.files("reads", date(2024, 5, 3))
    whole = pl.read_parquet(target)
    rows = np.array([0, 1, GROUP_ROWS - 1, GROUP_ROWS, 3 * GROUP_ROWS + 5, whole.height - 1])
    fetched = _fetch.fetch_rows(target, rows, ["read_id", "plate", "ts", "candidates"])
    assert fetched.schema == pl.Schema(
        {name: sinks.READS_SCHEMA[name] for name in ["read_id", "plate", "ts", "candidates"]}
    )
    assert fetched["read_id"].to_list() == [whole["read_id"][int(i)] for i in rows]


def test_a_plate_index_that_does_not_match_its_file_is_refused(
    compacted: sinks.ReadStore,
) -> None:
    [target] = compacted.files("reads", date(2024, 5, 2))
    index = sinks.plate_index_for(target)
    plates = pl.read_parquet(index)
    # Shuffled: the index names rows that hold other plates.
    plates.reverse().write_parquet(index)
    with pytest.raises(sinks.SinksError, match="does not match its plate index"):
        ids(compacted.partial_search("*BC*"))
    # Longer than its file: rows past the end.
    pl.concat([plates, plates]).write_parquet(index)
    with pytest.raises(sinks.SinksError, match="does not match its plate index"):
        ids(compacted.partial_search("*BC*"))


def test_interrupted_compaction_leaves_no_orphan_plate_index(
    compacted: sinks.ReadStore,
) -> None:
    day = date(2024, 5, 6)  # still in batch files
    sources = compacted.files("reads", day)
    directory = sources[0].parent
    # Crash after the index was renamed into place, before the switch: the next run rolls back.
    (directory / sinks.COMPACTION_MANIFEST).write_text(
        json.dumps({"target": "compact-000001.parquet", "sources": [f.name for f in sources]})
    )
    (directory / ".compact-000001.parquet.tmp").write_bytes(b"half written")
    (directory / "_compact-000001.plates").write_bytes(b"an index without its file")
    _compact.finish_compaction(directory)
    assert not (directory / "_compact-000001.plates").exists()
    assert compacted.files("reads", day) == sources
    # A later compaction of an already compacted day replaces the old index with the new one.
    first = compacted.compact("reads", day)
    assert first is not None and sinks.plate_index_for(first).exists()
    write_late_reads(compacted, day, 3, seed=5)
    second = compacted.compact("reads", day)
    assert second is not None and second.name == "compact-000002.parquet"
    assert sorted(p.name for p in directory.glob("*.plates")) == ["_compact-000002.plates"]


@settings(max_examples=200, deadline=None)
@given(
    patterns(),
    st.lists(st.text(alphabet="AB8OCD1", min_size=1, max_size=7), min_size=1, max_size=20),
    st.integers(0, 1),
)
def test_the_unanchored_regex_finds_the_same_plates(
    pattern: str, plates: list[str], ocr: int
) -> None:
    glob = matchers.compile_glob(pattern, ocr)
    found = pl.Series(plates, dtype=pl.String).str.contains(glob.search_regex).to_list()
    assert found == [re.fullmatch(glob.regex, plate) is not None for plate in plates]
