"""Pass 2 of a search: the rows at given positions of one reads file, decoding only the row
groups that hold them (a few rows of a compacted day cost a few 1,024-row groups, not the day).
Parsed footers are cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sinks._compact import plate_index_for
from sinks._errors import SinksError
from sinks._schema import READS_SCHEMA

__all__ = ["fetch_rows", "fetch_table", "index_mismatch", "typed"]


def index_mismatch(path: Path, why: str) -> SinksError:
    msg = (
        f"{path} does not match its plate index {plate_index_for(path).name} ({why}); delete the "
        "index (searches then read the data file itself) and report it: indexes are written "
        "only by compaction"
    )
    return SinksError(msg)


class _Footer:
    """A parsed Parquet footer and the first row number of each row group (one more: the end)."""

    def __init__(self, meta: pq.FileMetaData) -> None:
        self.meta = meta
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.starts = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))


class _FooterCache:
    """Parsed Parquet footers of recently searched files. Parsing a compacted day's footer
    (140 row groups) costs about 2 ms, a tenth of fetching its matches; files are immutable
    (a compaction writes a new name), and the key includes size and mtime, so an entry is
    never stale. Bounded: about a year of days."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, int, int], _Footer] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> _Footer:
        found = path.stat()
        key = (str(path), found.st_size, found.st_mtime_ns)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        footer = _Footer(pq.read_metadata(path))
        with self._lock:
            self._entries[key] = footer
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return footer


_footer = _FooterCache()


def fetch_table(path: Path, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
    """The rows at positions ``rows`` (ascending) of one reads file, as stored (the ``columns``
    it has). Decodes only the row groups that hold them."""
    footer = _footer(path)
    starts = footer.starts
    if len(rows) and int(rows[-1]) >= int(starts[-1]):
        raise index_mismatch(path, f"it has {int(starts[-1])} rows, not {int(rows[-1]) + 1}")
    handle = pq.ParquetFile(path, pre_buffer=False, metadata=footer.meta)
    try:
        group_of = np.searchsorted(starts, rows, side="right") - 1
        groups = np.unique(group_of)
        names = set(handle.schema_arrow.names)
        present = [name for name in columns if name in names]
        table = handle.read_row_groups(groups.tolist(), columns=present, use_threads=False)
    finally:
        handle.close()
    offsets = np.concatenate(([0], np.cumsum(np.diff(starts)[groups])))
    local = offsets[np.searchsorted(groups, group_of)] + (rows - starts[group_of])
    return table.take(pa.array(local))


def typed(table: pa.Table, columns: Sequence[str]) -> pl.DataFrame:
    """``table`` as ``columns`` typed by :data:`sinks.READS_SCHEMA`, missing ones null."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.select(
        [
            pl.col(name).cast(READS_SCHEMA[name]) if name in frame.columns
            else pl.lit(None, READS_SCHEMA[name]).alias(name)
            for name in columns
        ]
    )  # fmt: skip


def fetch_rows(path: Path, rows: np.ndarray, columns: Sequence[str]) -> pl.DataFrame:
    """The rows at positions ``rows`` (ascending) of one reads file, only ``columns``, typed as
    :data:`sinks.READS_SCHEMA`. Decodes only the row groups that hold them: a few rows of a
    compacted day cost a few 1,024-row groups, not the day."""
    return typed(fetch_table(path, rows, columns), columns)
