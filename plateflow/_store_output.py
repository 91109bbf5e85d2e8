"""Where ``plateflow search`` puts its pages: a CSV or Parquet file, or the terminal.

:class:`ResultWriter` appends page by page (the Parquet file gets one row group per page), so a
result of any size passes through in constant memory. CSV cells are plain text: times in RFC
3339 UTC, lists and structs (candidates, cameras, read ids, alerts) as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
import polars as pl
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from plateflow.errors import PlateflowError
from sinks import csv_safe

__all__ = ["ResultWriter", "csv_ready", "print_page"]

_FORMATS = (".csv", ".parquet")


class OutputError(PlateflowError):
    """The output file of a search cannot be written as asked."""


def csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Times as RFC 3339 UTC text, nested values as JSON text: every column a CSV can hold;
    text that starts like a spreadsheet formula is escaped (:func:`sinks.csv_safe`)."""
    columns: list[pl.Expr | pl.Series] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            columns.append(pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
        elif isinstance(dtype, pl.List | pl.Struct | pl.Array):
            texts = [
                None if value is None else orjson.dumps(value).decode()
                for value in frame[name].to_list()
            ]
            columns.append(pl.Series(name, texts, dtype=pl.String).alias(name))
    return csv_safe(frame.with_columns(columns) if columns else frame)


class ResultWriter:
    """Writes pages to ``path`` (``.csv`` or ``.parquet``, decided by the suffix), refusing to
    overwrite an existing file. ``schema`` is written even when no page comes."""

    def __init__(self, path: Path, schema: Mapping[str, pl.DataType] | None = None) -> None:
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in _FORMATS:
            msg = f"--out {self.path}: name a .csv or .parquet file"
            raise OutputError(msg)
        if self.path.exists():
            msg = f"--out {self.path} exists; search results never overwrite a file"
            raise OutputError(msg)
        self.schema = dict(schema) if schema is not None else None
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._csv: IO[bytes] | None = None

    def __enter__(self) -> ResultWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: pl.DataFrame) -> None:
        if self.format == ".parquet":
            table = frame.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self._parquet.write_table(table)
        else:
            first = self._csv is None
            if self._csv is None:
                self._csv = open(self.path, "xb")
            csv_ready(frame).write_csv(self._csv, include_header=first)
        self.rows += frame.height

    def close(self) -> None:
        if self._parquet is None and self._csv is None:
            empty = pl.DataFrame(schema=self.schema or {})
            if self.format == ".parquet":
                empty.write_parquet(self.path)
            else:
                csv_ready(empty).write_csv(self.path)
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


_READ_COLUMNS = ("ts", "plate", "state", "camera_id", "confidence", "match_kind", "matched_plate")
_CANVASS_COLUMNS = ("plate", "state", "reads", "first_seen", "last_seen", "cameras", "nearest_m")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    return str(value)


def _alerts_cell(text: str | None) -> str:
    if not text:
        return ""
    found = orjson.loads(text)
    return ", ".join(f"{a.get('hotlist')} ({a.get('kind')})" for a in found)


def print_page(console: Console, frame: pl.DataFrame, number: int) -> None:
    """One page as a table: the columns an investigator reads first, and the alerts."""
    wanted = _CANVASS_COLUMNS if "first_seen" in frame.columns else _READ_COLUMNS
    columns = [c for c in wanted if c in frame.columns]
    if "entry_plate" in frame.columns:
        columns.append("entry_plate")
    table = Table(*columns, "alerts", title=f"page {number}")
    for row in frame.iter_rows(named=True):
        table.add_row(*(_cell(row[c]) for c in columns), _alerts_cell(row.get("alerts")))
    console.print(table)
