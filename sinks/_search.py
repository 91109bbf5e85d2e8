"""The search engine over stored reads (plate history, partial plates, canvass, past matching).

Every search is two passes over the date partitions in range (never a directory outside it):

1. a narrow pass finds the matching rows (file and row number): on a compacted day whose every
   row is in the time range, from its plate index (one column, one row group); otherwise from
   the data file, reading only the columns the match and the filters need and skipping row
   groups whose plate statistics cannot match (exact plates, prefixes);
2. a wide pass decodes, in parallel over files, only the row groups (1,024 rows in a compacted
   file) that hold those rows, a few days at a time (about ``step_rows`` matched rows per step,
   default 200,000; a single day with more is still read whole), and hands them out as pages
   of ``page_size`` rows sorted by time.

Pages are described in :mod:`sinks._pages`; the searches themselves in
:mod:`sinks._queries`. Memory stays near one step's rows whatever the result size (pass 1 keeps
two integers and the matched string per matching row of about a month). Files replaced under a
search (compaction, purge) make that step re-read its days once, so a result is never short or
doubled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa

from sinks._compact import plate_index_for
from sinks._fetch import fetch_table, index_mismatch, typed
from sinks._pages import MATCH_COLUMNS, empty_info
from sinks._scan import as_utc, scan_files
from sinks._schema import READS_SCHEMA

if TYPE_CHECKING:
    from sinks._store import ReadStore

__all__ = ["Matcher", "Search", "retry"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Files fetched at once in pass 2 (pyarrow decodes without the GIL).
_WORKERS = max(1, pl.thread_pool_size())


@dataclass
class Matcher:
    """How one search recognises a plate string."""

    predicate: Callable[[pl.Expr], pl.Expr]  # vectorised; may be a superset
    classify: Callable[[pl.Series], pl.DataFrame]  # distinct strings -> INFO_SCHEMA rows
    prune: pl.Expr | None = None  # row-group pruning on the plate column
    candidates: bool = False


@dataclass
class _Hits:
    """Pass 1's result for some days. ``files``: the files each day had when listed (``listing``
    holds indexes into it). Files read by row (``by_row``) have one row per matching read in
    ``rows``: ``_f`` (index into ``files``), ``_row`` (position in the file),
    ``matched_plate``, ``via_candidate``. The others (batch files: many small ones, scanned
    together) have the matched strings in ``texts`` and match counts in ``found``;
    ``batch_whole`` says every one of their days is inside the time range."""

    files: list[Path]
    listing: dict[date, list[int]]
    rows: pl.DataFrame
    texts: dict[int, list[str]]
    found: dict[int, int]
    batch_whole: bool

    def counts(self) -> dict[int, int]:
        counted = self.rows.group_by("_f").len()
        by_row = dict(zip(counted["_f"].to_list(), counted["len"].to_list(), strict=True))
        return {**self.found, **by_row}


@dataclass
class Search:
    store: ReadStore
    matcher: Matcher
    start: datetime | None
    end: datetime | None
    filters: list[pl.Expr] = field(default_factory=list)
    page_size: int = 1000
    newest_first: bool = False
    step_rows: int = 200_000
    columns: tuple[str, ...] = tuple(READS_SCHEMA)
    chunk_days: int = 31

    def __post_init__(self) -> None:
        self.start = None if self.start is None else as_utc(self.start, "start")
        self.end = None if self.end is None else as_utc(self.end, "end")

    def _chunks(self) -> list[list[date]]:
        days = self.store.days_between("reads", self.start, self.end)
        if self.newest_first:
            days.reverse()
        return [days[i : i + self.chunk_days] for i in range(0, len(days), self.chunk_days)]

    def _whole(self, day: date) -> bool:
        """True when every row of ``day`` is inside the time range (no ``ts`` test needed)."""
        first = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return (self.start is None or self.start <= first) and (
            self.end is None or self.end >= first + timedelta(days=1)
        )

    def _base(self, paths: Sequence[Path], whole_day: bool, *, row_index: bool) -> pl.LazyFrame:
        base = scan_files(
            paths, READS_SCHEMA, None if whole_day else self.start,
            None if whole_day else self.end,
            row_index="_row" if row_index else None, with_path=not row_index,
        )  # fmt: skip
        for expression in self.filters:
            base = base.filter(expression)
        if self.matcher.prune is not None and not self.matcher.candidates:
            base = base.filter(self.matcher.prune)
        return base

    def _matches(self, base: pl.LazyFrame, key: str) -> pl.LazyFrame:
        """``key``, ``text`` (the matched string) and ``pos`` (-1 for the plate, else the
        position of the matching candidate) for every match in ``base``."""
        parts = [
            base.select(key, text=pl.col("plate"), pos=pl.lit(-1, pl.Int16)).filter(
                self.matcher.predicate(pl.col("text"))
            )
        ]
        if self.matcher.candidates:
            texts = pl.col("candidates").list.eval(pl.element().struct.field("plate"))
            parts.append(
                base.select(key, text=texts)
                .with_columns(pos=pl.int_ranges(0, pl.col("text").list.len(), dtype=pl.Int16))
                .explode("text", "pos")
                .filter(self.matcher.predicate(pl.col("text")))
            )
        return pl.concat(parts)

    def _by_row(self, path: Path, whole_day: bool) -> pl.LazyFrame:
        """Pass 1 for a compacted file: its matches by row number."""
        index = plate_index_for(path)
        plain = not (self.filters or self.matcher.candidates or self.matcher.prune is not None)
        if plain and whole_day:
            # One column in one row group: the cheapest way to look at every plate of a day.
            base = pl.scan_parquet(index, schema={"plate": pl.String()}, row_index_name="_row")
        else:
            base = self._base([path], whole_day, row_index=True)
        return self._matches(base, "_row")

    def _narrow(self, days: Sequence[date]) -> tuple[_Hits, pl.DataFrame]:
        """Pass 1 for some days: the matches, and the classified matched strings."""
        files: list[Path] = []
        listing: dict[date, list[int]] = {}
        by_row: list[int] = []
        batch_whole = True

        def run() -> list[pl.DataFrame]:
            nonlocal batch_whole
            files.clear()
            listing.clear()
            by_row.clear()
            scans: list[pl.LazyFrame] = []
            batch: list[Path] = []
            batch_whole = True
            for day in days:
                whole = self._whole(day)
                listing[day] = []
                for path in self.store.files("reads", day):
                    listing[day].append(len(files))
                    if plate_index_for(path).exists():
                        by_row.append(len(files))
                        scans.append(self._by_row(path, whole))
                    else:
                        batch.append(path)
                        batch_whole = batch_whole and whole
                    files.append(path)
            if batch:
                together = self._base(batch, batch_whole, row_index=False)
                scans.append(self._matches(together, "_file"))
            return pl.collect_all(scans) if scans else []

        found = retry(run)
        indexed = found[: len(by_row)]
        rows = pl.DataFrame(
            schema={"_f": pl.UInt32, "_row": pl.UInt32, "text": pl.String, "pos": pl.Int16}
        )
        if indexed:
            owner = np.repeat(by_row, [frame.height for frame in indexed])
            rows = pl.concat(indexed).select(
                _f=pl.Series(owner, dtype=pl.UInt32), _row="_row", text="text", pos="pos"
            )
        batch_hits = found[-1] if len(found) > len(by_row) else None
        strings = pl.concat([rows["text"], *([] if batch_hits is None else [batch_hits["text"]])])
        info: pl.DataFrame = (
            self.matcher.classify(strings.unique()) if len(strings) else empty_info()
        )
        known = info["matched_plate"].implode()
        rows = rows.filter(pl.col("text").is_in(known))
        if self.matcher.candidates:
            # A read matched by its plate and by candidates counts once: the plate first, then
            # the earliest candidate.
            rows = rows.sort("_f", "_row", "pos").unique(["_f", "_row"], keep="first")
        rows = rows.select(
            "_f", "_row", matched_plate=pl.col("text"), via_candidate=pl.col("pos") >= 0
        ).sort("_f", "_row")
        texts: dict[int, list[str]] = {}
        counts: dict[int, int] = {}
        if batch_hits is not None:
            position = {str(path): i for i, path in enumerate(files)}
            per_file = (
                batch_hits.filter(pl.col("text").is_in(known))
                .group_by("_file")
                .agg(pl.len(), pl.col("text").unique())
            )
            for name, n, strings_here in per_file.iter_rows():
                texts[position[name]] = strings_here
                counts[position[name]] = int(n)
        return _Hits(files, listing, rows, texts, counts, batch_whole), info

    def _wide(self, hits: _Hits, chosen: Sequence[int], info: pl.DataFrame) -> pl.DataFrame:
        """Pass 2: the matching rows of the ``chosen`` files with their match columns, sorted
        by time. Files read by row decode only the row groups holding their rows, in parallel,
        and stay Arrow tables until one conversion for the step; batch files are scanned
        together for their matched strings."""
        needed = [
            name for name in READS_SCHEMA if name in {*self.columns, "plate", "ts", "read_id"}
        ]
        # Sorted by file, then row (pass 1): the fetched tables come back in this order.
        wanted = hits.rows.filter(pl.col("_f").is_in(list(chosen)))
        parts = wanted.partition_by("_f", as_dict=True, maintain_order=True)

        def one(key: tuple[Any, ...]) -> pa.Table:
            return fetch_table(hits.files[int(key[0])], parts[key]["_row"].to_numpy(), needed)

        batch = [i for i in chosen if i in hits.texts]
        try:
            frames = [self._scan_batch(hits, batch, info, needed)] if batch else []
            with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
                tables = list(pool.map(one, list(parts)))
        except (OSError, pl.exceptions.ComputeError) as error:
            if all(hits.files[i].exists() for i in chosen):
                raise
            raise _Moved from error
        if tables:
            fetched = typed(pa.concat_tables(tables, promote_options="permissive"), needed)
            fetched = fetched.hstack(wanted.select("matched_plate", "via_candidate"))
            # Pass 1 may have read a plate index: the fetched plates must be the ones it saw.
            wrong = (~pl.col("via_candidate")) & (pl.col("plate") != pl.col("matched_plate"))
            if (bad := wanted.filter(fetched.select(wrong).to_series())).height:
                raise index_mismatch(hits.files[int(bad["_f"][0])], "its rows hold other plates")
            frames.append(fetched)
        if not frames:
            return pl.DataFrame(schema=self.schema())
        frame = pl.concat(frames).join(info, on="matched_plate", how="left")
        frame = frame.sort("ts", "read_id", descending=self.newest_first)
        return frame.select([*self.columns, *MATCH_COLUMNS])

    def _scan_batch(
        self, hits: _Hits, chosen: Sequence[int], info: pl.DataFrame, needed: Sequence[str]
    ) -> pl.DataFrame:
        """Pass 2 for batch files: one scan, keeping rows whose plate (or a candidate) is one
        of the strings pass 1 matched in those files."""
        files = [hits.files[i] for i in chosen]
        here = sorted({text for i in chosen for text in hits.texts[i]})
        strings = pl.Series(here, dtype=pl.String).implode()
        direct = pl.col("plate").is_in(strings)
        condition, matched = direct, pl.col("plate")
        if self.matcher.candidates:
            first_hit = (
                pl.col("candidates")
                .list.eval(pl.element().struct.field("plate"))
                .list.eval(pl.element().filter(pl.element().is_in(info["matched_plate"].implode())))
                .list.first()
            )
            condition = direct | first_hit.is_not_null()
            matched = pl.when(direct).then(pl.col("plate")).otherwise(first_hit)
        return (
            self._base(files, hits.batch_whole, row_index=False)
            .filter(condition)
            .select(needed)
            .with_columns(matched_plate=matched, via_candidate=~direct)
            .collect()
        )

    def schema(self) -> dict[str, pl.DataType]:
        return {**{name: READS_SCHEMA[name] for name in self.columns}, **MATCH_COLUMNS}

    def _frames(self) -> Iterator[pl.DataFrame]:
        """Matched rows a step (a few whole days) at a time, in time order."""
        for days in self._chunks():
            hits, info = self._narrow(days)
            for step_days, chosen in self._steps(days, hits):
                try:
                    yield self._wide(hits, chosen, info)
                except _Moved:
                    # Compaction or purge replaced files since pass 1: redo these days once.
                    log.info("search re-reading %s: files changed under it", step_days)
                    again, info_again = self._narrow(step_days)
                    for _, chosen_again in self._steps(step_days, again):
                        yield self._wide(again, chosen_again, info_again)

    def pages(self) -> Iterator[pl.DataFrame]:
        buffer: list[pl.DataFrame] = []
        buffered = 0
        for frame in self._frames():
            buffer.append(frame)
            buffered += frame.height
            while buffered >= self.page_size:
                merged = pl.concat(buffer)
                yield merged.head(self.page_size)
                rest = merged.slice(self.page_size)
                buffer, buffered = [rest], rest.height
        if buffered:
            yield pl.concat(buffer)

    def _steps(self, days: Sequence[date], hits: _Hits) -> Iterator[tuple[list[date], list[int]]]:
        """Groups of whole days whose matched rows add up to about ``step_rows``."""
        counts = hits.counts()
        step: list[int] = []
        step_days: list[date] = []
        rows = 0
        for day in days:
            chosen = [i for i in hits.listing.get(day, []) if counts.get(i)]
            found = sum(counts[i] for i in chosen)
            if not found:
                continue
            if step and rows + found > self.step_rows:
                yield step_days, step
                step, step_days, rows = [], [], 0
            step.extend(chosen)
            step_days.append(day)
            rows += found
        if step:
            yield step_days, step

    def count(self) -> int:
        if self.matcher.candidates:
            # A read may match by its plate and by a candidate: count rows, not matches.
            return sum(frame.height for frame in self._frames())
        return sum(sum(self._narrow(days)[0].counts().values()) for days in self._chunks())


class _Moved(Exception):
    """Files of a search step were replaced (compaction, purge) after they were listed."""


def retry(run: Callable[[], _T]) -> _T:
    try:
        return run()
    except (FileNotFoundError, pl.exceptions.ComputeError) as error:
        # Compaction may have replaced a file between listing and reading: list again once.
        log.info("search re-listing files after %s", error)
        return run()
