"""The fixed Parquet schemas of reads and alerts, and fast column builders for both.

Columns are built one list per field (about 1 µs per read) and candidates through Arrow offsets:
building a polars ``List(Struct)`` from Python dicts costs about 12 µs per read, ten times more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from matchers.reads import READ_FIELDS

__all__ = [
    "ALERTS_SCHEMA",
    "CANDIDATES_TYPE",
    "READS_SCHEMA",
    "SCHEMA_VERSION",
    "alerts_frame",
    "columns_frame",
    "reads_frame",
]

SCHEMA_VERSION = "1"
UTC_MS = pl.Datetime("ms", "UTC")
CANDIDATES_TYPE = pl.List(pl.Struct({"plate": pl.String, "confidence": pl.Float32}))

#: Reads: the canonical read plus ``partition`` (the stream partition the batch came from).
#: ``token_id`` (the ingest token that posted the read) came later: files written before it
#: lack the column, and every scan inserts it as null.
#: The batch's first stream id is file metadata (``plateflow.first_stream_id``), not a column:
#: reads inside one stream entry share an entry id, so a per-row id would carry nothing more.
READS_SCHEMA: dict[str, pl.DataType] = {
    "read_id": pl.String(),
    "camera_id": pl.String(),
    "plate": pl.String(),
    "plate_raw": pl.String(),
    "ts": UTC_MS,
    "confidence": pl.Float32(),
    "state": pl.String(),
    "lat": pl.Float64(),
    "lon": pl.Float64(),
    "candidates": CANDIDATES_TYPE,
    "agency": pl.String(),
    "image_ref": pl.String(),
    "token_id": pl.String(),
    "partition": pl.Int16(),
}

#: Alerts: the fields a search filters on, plus the whole alert as JSON in ``alert``.
ALERTS_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.String(),
    "emitted_at": UTC_MS,
    "read_id": pl.String(),
    "camera_id": pl.String(),
    "plate": pl.String(),
    "ts": UTC_MS,
    "hotlist": pl.String(),
    "category": pl.String(),
    "priority": pl.Int16(),
    "kind": pl.String(),
    "entry_id": pl.String(),
    "covert": pl.Boolean(),
    "sighting_of": pl.String(),
    "partition": pl.Int16(),
    "alert": pl.String(),
}

_SCALAR_READ_FIELDS = tuple(name for name in READ_FIELDS if name not in ("ts", "candidates"))
_CANDIDATES_ARROW = pa.struct([("plate", pa.large_string()), ("confidence", pa.float32())])


def _candidates(column: Sequence[Sequence[Mapping[str, Any]] | None]) -> pl.Series:
    plates: list[str] = []
    confidences: list[float] = []
    if any(column):
        offsets = [0]
        total = 0
        for found in column:
            if found:
                for candidate in found:
                    plates.append(candidate["plate"])
                    confidences.append(candidate["confidence"])
                total += len(found)
            offsets.append(total)
    else:  # the common batch: no read has alternates
        offsets = [0] * (len(column) + 1)
    values = pa.StructArray.from_arrays(
        [pa.array(plates, pa.large_string()), pa.array(confidences, pa.float32())],
        fields=list(_CANDIDATES_ARROW),
    )
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values)
    series = pl.Series("candidates", lists)
    return series.cast(CANDIDATES_TYPE)


def reads_frame(reads: Sequence[Mapping[str, Any]], partition: int) -> pl.DataFrame:
    """A frame in :data:`READS_SCHEMA` from canonical reads (optional fields may be absent)."""
    return columns_frame(
        {name: [read.get(name) for read in reads] for name in READ_FIELDS}, partition
    )


def columns_frame(columns: Mapping[str, Sequence[Any]], partition: int) -> pl.DataFrame:
    """A frame in :data:`READS_SCHEMA` from canonical reads given as columns: each field of
    :data:`matchers.reads.READ_FIELDS` to its values, one a read (``ts`` in epoch ms)."""
    series = {
        name: pl.Series(name, columns[name], READS_SCHEMA[name]) for name in _SCALAR_READ_FIELDS
    }
    series["ts"] = pl.Series("ts", columns["ts"], pl.Int64).cast(UTC_MS)
    series["candidates"] = _candidates(columns["candidates"])
    series["partition"] = pl.Series("partition", [partition] * len(columns["ts"]), pl.Int16)
    return pl.DataFrame([series[name] for name in READS_SCHEMA])


def alerts_frame(alerts: Sequence[Mapping[str, Any]], partition: int) -> pl.DataFrame:
    """A frame in :data:`ALERTS_SCHEMA` from alerts as the flow builds them."""
    rows: dict[str, list[Any]] = {name: [] for name in ALERTS_SCHEMA}
    for alert in alerts:
        read = alert["read"]
        hotlist = alert["hotlist"]
        rows["alert_id"].append(alert["alert_id"])
        rows["emitted_at"].append(alert["emitted_at"])
        rows["read_id"].append(read["read_id"])
        rows["camera_id"].append(read["camera_id"])
        rows["plate"].append(read["plate"])
        rows["ts"].append(read["ts"])
        rows["hotlist"].append(hotlist.get("name"))
        rows["category"].append(hotlist.get("category"))
        rows["priority"].append(hotlist.get("priority"))
        rows["kind"].append(alert["match"].get("kind"))
        rows["entry_id"].append(
            None if alert["entry"].get("entry_id") is None else str(alert["entry"]["entry_id"])
        )
        rows["covert"].append(bool(hotlist.get("covert", False)))
        rows["sighting_of"].append(alert.get("sighting_of"))
        rows["partition"].append(partition)
        rows["alert"].append(orjson.dumps(alert).decode())
    series = []
    for name, dtype in ALERTS_SCHEMA.items():
        if dtype == UTC_MS:
            series.append(pl.Series(name, rows[name], pl.Int64).cast(UTC_MS))
        else:
            series.append(pl.Series(name, rows[name], dtype))
    return pl.DataFrame(series)
