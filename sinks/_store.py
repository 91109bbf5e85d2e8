"""The Parquet store: date-partitioned reads and alerts that carry their own retention.

Layout under ``data_dir`` (ARCHITECTURE "Storage")::

    reads/date=YYYY-MM-DD/part-{p:03d}-{first_stream_id}.parquet   one per flow batch
    reads/date=YYYY-MM-DD/compact-NNNNNN.parquet    closed days, merged (see sinks._compact)
    reads/date=YYYY-MM-DD/_compact-NNNNNN.plates    its plate index (plate column, same order)
    reads/date=YYYY-MM-DD/_retention.json           retain_until, legal holds, releases
    reads/date=YYYY-MM-DD/_compaction.json          only while a compaction is switching
    reads/date=YYYY-MM-DD.purging/                  only while a purge deletes the day
    alerts/...                                      the same, dated by the read's time
    holds/case={case}/hold.json, reads.parquet, alerts.parquet      legal holds
    _purges.jsonl                                   one line per purged partition

The date is the UTC date of the read's ``ts``. Alerts are dated by their read too (not by
``emitted_at``), so an alert lives and dies with the read that raised it and a legal hold on a
day covers both. Every Parquet file is zstd with statistics and carries key-value metadata
``plateflow.kind``, ``.schema_version``, ``.date``, ``.retention_days``, ``.retain_until``
(and ``.partition`` / ``.first_stream_id`` for batch files, ``.sorted_by`` /
``.compacted_from`` for compacted ones). Names starting with ``.`` or ``_`` are never data.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from plateflow.settings import POLICY_MIN_RETENTION_DAYS
from sinks import _canvass, _evidence, _holds, _queries, _retention
from sinks._compact import compact_day, hidden_by_compaction
from sinks._errors import SinksError
from sinks._files import atomic_file, create_exclusive, fsync_dir, private_dir, read_json
from sinks._layout import alerts_path, date_dir, reads_path, retain_until, safe_stream_id
from sinks._metrics import ALERTS_WRITTEN, READS_WRITTEN, WRITE_SECONDS
from sinks._scan import as_utc, scan_files
from sinks._schema import ALERTS_SCHEMA, READS_SCHEMA, SCHEMA_VERSION, alerts_frame, reads_frame

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from prometheus_client import Counter

    from sinks._progress import StreamProgress

__all__ = ["ALERTS", "READS", "SIDECAR_NAME", "ReadStore", "utc_day"]

log = logging.getLogger(__name__)

READS = "reads"
ALERTS = "alerts"
SIDECAR_NAME = "_retention.json"
_DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)
_DIR_PREFIX = "date="


def utc_day(ts_ms: int) -> date:
    """The UTC date of epoch milliseconds."""
    return _EPOCH + timedelta(days=ts_ms // _DAY_MS)


class ReadStore:
    """Writes and scans the Parquet store under ``data_dir``.

    Writes are idempotent per batch: the file name depends only on (date, partition, first
    stream id), and each file is written under a hidden temporary name and renamed into place,
    so a reader sees a whole file or none and a replayed batch replaces its own file. With
    ``fsync`` (default) the data is on disk before the rename, so a file that exists after a
    power cut is complete. Many processes may write the same store; each batch touches only its
    own files, and the per-date sidecars are created exclusively (never overwritten by a writer).
    """

    def __init__(self, data_dir: Path, retention_days: int = 365, *, fsync: bool = True) -> None:
        if retention_days < 1:
            msg = f"retention_days must be at least 1, got {retention_days}"
            raise SinksError(msg)
        if retention_days < POLICY_MIN_RETENTION_DAYS:
            log.warning(
                "retention of %d days is below the policy minimum of %d (427.4); new partitions "
                "become purgeable after %d days",
                retention_days,
                POLICY_MIN_RETENTION_DAYS,
                retention_days,
            )
        self.data_dir = Path(data_dir)
        self.retention_days = retention_days
        self.fsync = fsync
        self._known_sidecars: set[Path] = set()
        self._private = False

    # -- writing ---------------------------------------------------------------------------

    def write_reads(
        self,
        partition: int,
        first_stream_id: str,
        reads: Sequence[Mapping[str, Any]] | pl.DataFrame,
    ) -> list[Path]:
        """Write one batch of canonical reads, or the frame :func:`sinks.reads_frame` or
        :func:`sinks.columns_frame` made of them: one Parquet file per UTC date of ``ts``
        (zstd, schema :data:`sinks.READS_SCHEMA`). Returns the files written, in date order."""
        return self._write_batch(
            READS, reads_frame, READS_WRITTEN, partition, first_stream_id, reads
        )

    def write_alerts(
        self, partition: int, first_stream_id: str, alerts: Sequence[Mapping[str, Any]]
    ) -> list[Path]:
        """Write one batch of alerts (as published) under ``alerts/``, one file per UTC date of
        the read's ``ts``; schema :data:`sinks.ALERTS_SCHEMA`. Same guarantees as reads."""
        return self._write_batch(
            ALERTS, alerts_frame, ALERTS_WRITTEN, partition, first_stream_id, alerts
        )

    def _write_batch(
        self,
        kind: str,
        to_frame: Callable[[Sequence[Mapping[str, Any]], int], pl.DataFrame],
        written: Counter,
        partition: int,
        first_stream_id: str,
        rows: Sequence[Mapping[str, Any]] | pl.DataFrame,
    ) -> list[Path]:
        if len(rows) == 0:
            return []
        started = time.perf_counter()
        frame = rows if isinstance(rows, pl.DataFrame) else to_frame(rows, partition)
        paths = self._write(kind, frame, partition, first_stream_id)
        WRITE_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)
        written.inc(len(rows))
        return paths

    def paths_for(
        self,
        kind: str,
        partition: int,
        first_stream_id: str,
        timestamps: Sequence[int] | pl.Series,
    ) -> list[Path]:
        """The files a batch with these read timestamps (epoch ms, or a frame's ``ts`` column)
        will be written to; the flow records them as an intent
        (:meth:`sinks.StreamProgress.begin`) before writing."""
        namer = reads_path if kind == READS else alerts_path
        if isinstance(timestamps, pl.Series):
            numbers = timestamps.dt.epoch("d").unique().sort().to_list()
        else:
            numbers = sorted({ts // _DAY_MS for ts in timestamps})
        days = [_EPOCH + timedelta(days=number) for number in numbers]
        return [namer(self.data_dir, day, partition, first_stream_id) for day in days]

    def _write(
        self, kind: str, frame: pl.DataFrame, partition: int, first_stream_id: str
    ) -> list[Path]:
        namer = reads_path if kind == READS else alerts_path
        day_numbers = frame["ts"].dt.epoch("d")
        low, high = day_numbers.min(), day_numbers.max()
        assert isinstance(low, int) and isinstance(high, int)
        paths: list[Path] = []
        for number in range(low, high + 1):
            part = frame if low == high else frame.filter(day_numbers == number)
            if part.height == 0:
                continue
            day = _EPOCH + timedelta(days=number)
            path = namer(self.data_dir, day, partition, first_stream_id)
            self._ensure_sidecar(kind, day)
            self._write_file(path, part, self._file_metadata(kind, day, partition, first_stream_id))
            paths.append(path)
        return paths

    def _file_metadata(
        self, kind: str, day: date, partition: int, first_stream_id: str
    ) -> dict[str, str]:
        return {
            "plateflow.kind": kind,
            "plateflow.schema_version": SCHEMA_VERSION,
            "plateflow.date": day.isoformat(),
            "plateflow.partition": str(partition),
            "plateflow.first_stream_id": safe_stream_id(first_stream_id),
            "plateflow.retention_days": str(self.retention_days),
            "plateflow.retain_until": retain_until(day, self.retention_days).isoformat(),
        }

    def _write_file(self, path: Path, frame: pl.DataFrame, metadata: dict[str, str]) -> None:
        # Encoded in memory first, then written by Python: a full or failing volume then raises
        # OSError (ENOSPC, EIO) that callers can wait out, where polars writing to the file
        # itself raises its own ComputeError for any I/O failure.
        encoded = io.BytesIO()
        frame.write_parquet(encoded, compression="zstd", statistics=True, metadata=metadata)
        with atomic_file(path, fsync=self.fsync) as handle:
            handle.write(encoded.getbuffer())

    # -- sidecars --------------------------------------------------------------------------

    def sidecar_path(self, kind: str, day: date) -> Path:
        """``{kind}/date=YYYY-MM-DD/_retention.json``."""
        return date_dir(self.data_dir, kind, day) / SIDECAR_NAME

    def new_sidecar(self, kind: str, day: date) -> dict[str, Any]:
        """The sidecar a date partition starts with: retention, no holds, no purge."""
        return {
            "kind": kind,
            "date": day.isoformat(),
            "retention_days": self.retention_days,
            "retain_until": retain_until(day, self.retention_days).isoformat(),
            "legal_holds": [],
            "purge": None,
        }

    def _ensure_sidecar(self, kind: str, day: date) -> None:
        path = self.sidecar_path(kind, day)
        if path in self._known_sidecars:
            return
        directory = path.parent
        created_dir = not directory.exists()
        if not self._private:
            private_dir(self.data_dir)  # 0700 before the first file lands in it
            self._private = True
        private_dir(directory)
        if create_exclusive(
            path, orjson.dumps(self.new_sidecar(kind, day), option=orjson.OPT_INDENT_2)
        ):
            log.info(
                "created %s partition %s (retain until %s)",
                kind,
                day,
                retain_until(day, self.retention_days),
            )
        if created_dir and self.fsync:
            fsync_dir(directory.parent)
        self._known_sidecars.add(path)

    def sidecar(self, kind: str, day: date) -> dict[str, Any]:
        """The retention sidecar of a date partition (a fresh one if the file is missing)."""
        path = self.sidecar_path(kind, day)
        if path.exists():
            found: dict[str, Any] = read_json(path)
            return found
        return self.new_sidecar(kind, day)

    # -- listing and scanning -------------------------------------------------------------

    def days(self, kind: str = READS) -> list[date]:
        """The dates that have a partition directory, ascending (tombstones are skipped)."""
        root = self.data_dir / kind
        if not root.is_dir():
            return []
        found: list[date] = []
        for entry in os.scandir(root):
            name = entry.name
            if not (entry.is_dir() and name.startswith(_DIR_PREFIX)):
                continue
            try:
                found.append(date.fromisoformat(name[len(_DIR_PREFIX) :]))
            except ValueError:
                continue  # "date=...purging" tombstones and strays
        return sorted(found)

    def files(self, kind: str, day: date) -> list[Path]:
        """The live data files of one date partition, sorted by name. Hidden (``.``) and
        private (``_``) names are never data: temporaries, sidecars, manifests."""
        directory = date_dir(self.data_dir, kind, day)
        try:
            names = sorted(
                entry.name
                for entry in os.scandir(directory)
                if entry.name.endswith(".parquet") and entry.name[0] not in "._"
            )
        except FileNotFoundError:
            return []
        hidden = hidden_by_compaction(directory, names)
        return [directory / name for name in names if name not in hidden]

    def days_between(self, kind: str, start: datetime | None, end: datetime | None) -> list[date]:
        """The partition dates that can hold rows with ``start <= ts < end``."""
        first = as_utc(start, "start").date() if start is not None else None
        last = as_utc(end, "end") if end is not None else None
        chosen: list[date] = []
        for day in self.days(kind):
            if first is not None and day < first:
                continue
            if (
                last is not None
                and datetime(day.year, day.month, day.day, tzinfo=timezone.utc) >= last
            ):
                continue
            chosen.append(day)
        return chosen

    def iter_files(
        self, kind: str, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[tuple[date, list[Path]]]:
        """``(date, files)`` for every partition in range, oldest first, opening nothing."""
        for day in self.days_between(kind, start, end):
            files = self.files(kind, day)
            if files:
                yield day, files

    def scan_reads(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> pl.LazyFrame:
        """A lazy scan of the reads with ``start <= ts < end`` (aware datetimes; either bound
        may be None). Only date directories in the range are listed and opened. The files are
        listed now: collect soon, since a compaction or purge may replace them later (the
        search functions re-list on their own)."""
        return self._scan(READS, READS_SCHEMA, start, end)

    def scan_alerts(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> pl.LazyFrame:
        """Like :meth:`scan_reads` over alerts; the range applies to the read's ``ts``."""
        return self._scan(ALERTS, ALERTS_SCHEMA, start, end)

    def _scan(
        self,
        kind: str,
        schema: Mapping[str, pl.DataType],
        start: datetime | None,
        end: datetime | None,
    ) -> pl.LazyFrame:
        paths = [path for _, files in self.iter_files(kind, start, end) for path in files]
        return scan_files(paths, schema, start, end)

    # -- compaction, search, retention, evidence ---------------------------------------------

    def compact(self, kind: str, day: date, exclude: Collection[Path] = ()) -> Path | None:
        """Merge one date partition into a single sorted file (see :mod:`sinks._compact`)."""
        return compact_day(self, kind, day, exclude)

    def compact_closed(
        self,
        now: datetime,
        progress: StreamProgress | None = None,
        min_age_days: int = 1,
    ) -> list[Path]:
        """Compact every reads and alerts partition older than ``min_age_days`` before
        ``now``'s UTC date, skipping files of unfinished flow writes (``progress``). Run it
        daily; it is idempotent and a no-op on partitions already compacted."""
        before = as_utc(now, "now").date() - timedelta(days=min_age_days)
        pending = (
            [path for paths in progress.pending_all().values() for path in paths]
            if progress is not None
            else []
        )
        written = []
        for kind in (READS, ALERTS):
            for day in self.days(kind):
                if day < before:
                    target = compact_day(self, kind, day, pending)
                    if target is not None:
                        written.append(target)
        return written

    # Stored-read work is written in the modules that own it, as functions of the store; they
    # are bound here as methods (each takes the store first), with their own signatures and
    # docstrings.
    plate_history = _queries.plate_history
    partial_search = _queries.partial_search
    search_plates = _queries.search_plates
    canvass = _canvass.canvass
    purge = _retention.purge
    purge_log = _retention.purge_log
    place_hold = _holds.place_hold
    release_hold = _holds.release_hold
    holds = _holds.list_holds
    hold = _holds.load_hold
    export_evidence = _evidence.export_evidence
