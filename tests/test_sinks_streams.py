"""Read streams, partitions and dead letters against a real Redis."""

from __future__ import annotations

import zlib
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

import sinks


def make_read(i: int, camera: str = "cam-1", ts: int = 1_700_000_000_000) -> dict[str, Any]:
    return {
        "read_id": f"r-{i}",
        "camera_id": camera,
        "plate": f"ABC{i:04d}",
        "plate_raw": f"abc {i:04d}",
        "ts": ts + i,
        "confidence": 0.9,
        "state": "CA",
        "lat": 37.5,
        "lon": -122.25,
        "candidates": [{"plate": f"A8C{i:04d}", "confidence": 0.4}],
        "agency": "SPD",
        "image_ref": None,
    }


def test_key_constants_match_the_contract() -> None:
    assert sinks.DEADLETTER_STREAM == "plateflow:deadletter"
    assert sinks.ALERTS_CHANNEL == "plateflow:alerts"
    assert sinks.ALERTS_LOG == "plateflow:alerts:log"
    assert sinks.COVERT_CHANNEL == "plateflow:alerts:covert"
    assert sinks.COVERT_LOG == "plateflow:alerts:covert:log"
    assert sinks.HOTLISTS_CHANGED == "plateflow:hotlists:changed"
    assert sinks.READ_FIELD == b"data"
    assert sinks.stream_key(7) == "plateflow:reads:7"


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=1024))
def test_partition_is_crc32_modulo(camera: str, partitions: int) -> None:
    p = sinks.partition_for(camera, partitions)
    assert p == zlib.crc32(camera.encode("utf-8")) % partitions
    assert 0 <= p < partitions


def test_partition_rejects_zero_partitions() -> None:
    with pytest.raises(sinks.SinksError, match="PLATEFLOW_PARTITIONS"):
        sinks.partition_for("cam", 0)


def test_paths_and_retention_are_pure() -> None:
    day = date(2024, 2, 29)
    assert sinks.reads_path(Path("/d"), day, 3, "1700000000000-5") == Path(
        "/d/reads/date=2024-02-29/part-003-1700000000000-5.parquet"
    )
    assert sinks.alerts_path(Path("/d"), day, 12, "1-0") == Path(
        "/d/alerts/date=2024-02-29/part-012-1-0.parquet"
    )
    # A non stream-id name cannot leave its directory.
    escaped = sinks.reads_path(Path("/d"), day, 0, "../../etc/x")
    assert escaped.parent == Path("/d/reads/date=2024-02-29")
    assert sinks.retain_until(day, 365) == date(2025, 2, 28)
    assert sinks.utc_day(1_700_000_000_000) == date(2023, 11, 14)


def test_stream_id_order() -> None:
    assert sinks.is_after("10-0", None)
    assert sinks.is_after("10-1", "10-0")
    assert sinks.is_after("100-0", "99-5")  # numeric, not lexicographic
    assert not sinks.is_after("10-0", "10-0")
    with pytest.raises(sinks.SinksError, match="not a Redis stream id"):
        sinks.parse_stream_id("abc")
    assert sinks.parse_stream_id("1700000000000") == (1700000000000, 0)  # as XRANGE reads it
    assert sinks.parse_stream_id(b"18446744073709551615-0") == (2**64 - 1, 0)
    with pytest.raises(sinks.SinksValueError, match="not a Redis stream id") as refused:
        sinks.parse_stream_id("18446744073709551616-0")  # Redis ids are unsigned 64-bit
    assert refused.value.field == "stream_id"


def test_append_reads_round_trip(redis_client: redis.Redis) -> None:
    partitions = 4
    reads = [make_read(i, camera=f"cam-{i % 5}") for i in range(250)]
    entries = sinks.append_reads(redis_client, reads, partitions, per_entry=20)
    got: dict[int, list[dict[str, Any]]] = {}
    total_entries = 0
    for p in range(partitions):
        for _, fields in redis_client.xrange(sinks.stream_key(p)):
            total_entries += 1
            payload = orjson.loads(fields[sinks.READ_FIELD])
            got.setdefault(p, []).extend(payload if isinstance(payload, list) else [payload])
    assert total_entries == entries
    for p, rows in got.items():
        expected = [r for r in reads if sinks.partition_for(r["camera_id"], partitions) == p]
        assert rows == expected  # same reads, same order within the partition
    assert sum(len(rows) for rows in got.values()) == len(reads)


def test_append_single_read_is_an_object(redis_client: redis.Redis) -> None:
    read = make_read(1)
    assert sinks.append_reads(redis_client, [read], 1) == 1
    ((_, fields),) = redis_client.xrange(sinks.stream_key(0))
    assert orjson.loads(fields[b"data"]) == read
    assert sinks.append_reads(redis_client, [], 1) == 0


def test_dead_letter_fields(redis_client: redis.Redis) -> None:
    sinks.dead_letter(
        redis_client, [(b'{"plate": "!"}', "plate: too short"), ("not json", "json")], "ingest"
    )
    entries = redis_client.xrange(sinks.DEADLETTER_STREAM)
    assert len(entries) == 2
    first = entries[0][1]
    assert first[b"raw"] == b'{"plate": "!"}'
    assert first[b"reason"] == b"plate: too short"
    assert first[b"source"] == b"ingest"
    at = datetime.fromisoformat(first[b"at"].decode().replace("Z", "+00:00"))
    assert at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - at).total_seconds()) < 60
    assert entries[1][1][b"raw"] == b"not json"
