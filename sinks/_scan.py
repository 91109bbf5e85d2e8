"""Lazy scans of stored Parquet files, and the one check that a time is timezone-aware."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from sinks._errors import SinksError, SinksValueError

__all__ = ["as_utc", "scan_files"]


def as_utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC; a naive time is refused (:class:`SinksValueError` naming ``name``)."""
    if moment.tzinfo is None:
        msg = (
            f"{name}={moment.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime(..., tzinfo=timezone.utc))"
        )
        raise SinksValueError(msg, name)
    return moment.astimezone(timezone.utc)


def scan_files(
    paths: Sequence[Path],
    schema: Mapping[str, pl.DataType],
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    row_index: str | None = None,
    with_path: bool = False,
) -> pl.LazyFrame:
    """A lazy scan of exactly these files, filtered to ``start <= ts < end``; ``row_index``
    names a column with each row's position in its file (only for a single file);
    ``with_path`` adds the source file as column ``_file``."""
    if row_index is not None and len(paths) > 1:
        msg = "a row index is a position in one file: scan the files one at a time"
        raise SinksError(msg)
    if not paths:
        empty = dict(schema)
        if row_index is not None:
            empty[row_index] = pl.UInt32()
        if with_path:
            empty["_file"] = pl.String()
        return pl.LazyFrame(schema=empty)
    frame = pl.scan_parquet(
        [str(path) for path in paths],
        schema=dict(schema),
        missing_columns="insert",
        row_index_name=row_index,
        include_file_paths="_file" if with_path else None,
    )
    if start is not None:
        frame = frame.filter(pl.col("ts") >= as_utc(start, "start"))
    if end is not None:
        frame = frame.filter(pl.col("ts") < as_utc(end, "end"))
    return frame
