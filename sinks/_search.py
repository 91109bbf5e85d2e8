"""Search over stored reads: plate history, partial plates, canvass. Results come in pages.

Every search is two passes over the date partitions in range (never a directory outside it):

1. a narrow pass finds the matching rows (file and row number): on a compacted day whose every
   row is in the time range, from its plate index (one column, one row group); otherwise from
   the data file, reading only the columns the match and the filters need and skipping row
   groups whose plate statistics cannot match (exact plates, prefixes);
2. a wide pass decodes, in parallel over files, only the row groups (1,024 rows in a compacted
   file) that hold those rows, a few days at a time (about ``step_rows`` matched rows per step,
   default 200,000; a single day with more is still read whole), and hands them out as pages
   of ``page_size`` rows sorted by time.

A page holds the read columns (:data:`sinks.READS_SCHEMA`, or only the ``columns`` asked for)
plus ``matched_plate`` (the read plate, or the candidate plate that matched), ``via_candidate``,
``match_kind`` (exact | ocr | fuzzy | partial | custom), ``differences`` and
``substitutions``. Memory stays near one step's rows whatever the result size (pass 1 keeps
two integers and the matched string per matching row of about a month). Files replaced under a
search (compaction, purge) make that step re-read its days once, so a result is never short or
doubled.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from matchers import (
    DEFAULT_OCR_CLASSES,
    Glob,
    MatchersError,
    OcrClasses,
    check_plate,
    compile_glob,
    plate_variants,
)
from sinks._compact import plate_index_for
from sinks._errors import SinksError, SinksValueError
from sinks._schema import READS_SCHEMA

if TYPE_CHECKING:
    from sinks._store import ReadStore

__all__ = [
    "MATCH_COLUMNS",
    "Pages",
    "fetch_rows",
    "partial_search",
    "plate_history",
    "search_plates",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Files fetched at once in pass 2 (pyarrow decodes without the GIL).
_WORKERS = max(1, pl.thread_pool_size())

MATCH_COLUMNS: dict[str, pl.DataType] = {
    "matched_plate": pl.String(),
    "via_candidate": pl.Boolean(),
    "match_kind": pl.String(),
    "differences": pl.Int8(),
    "substitutions": pl.Int8(),
}
_INFO_SCHEMA = {
    "matched_plate": pl.String(),
    **{k: v for k, v in MATCH_COLUMNS.items() if k not in ("matched_plate", "via_candidate")},
}


class Pages:
    """A search result: iterate for pages (``pl.DataFrame`` of at most ``page_size`` rows,
    sorted by time, or by first sighting for a canvass). Iterating again runs the search
    again. ``query`` describes the search for the audit trail and for legal holds."""

    def __init__(
        self,
        query: Mapping[str, Any],
        pages: Callable[[], Iterator[pl.DataFrame]],
        schema: Mapping[str, pl.DataType],
        count: Callable[[], int] | None = None,
    ) -> None:
        self.query: dict[str, Any] = dict(query)
        self._pages = pages
        self._schema = dict(schema)
        self._count = count

    def __iter__(self) -> Iterator[pl.DataFrame]:
        return self._pages()

    def count(self) -> int:
        """The number of result rows (runs a counting pass, no rows are materialised)."""
        if self._count is not None:
            return self._count()
        return sum(page.height for page in self)

    def collect(self) -> pl.DataFrame:
        """Every page in one frame. Only for results known to be small (tests, holds)."""
        frames = list(self)
        if not frames:
            return pl.DataFrame(schema=self._schema)
        return pl.concat(frames, how="vertical")

    def read_ids(self) -> list[str]:
        """The read ids of the result (for a legal hold), page by page."""
        found: list[str] = []
        for page in self:
            column = page["read_ids"].explode() if "read_ids" in page.columns else page["read_id"]
            found.extend(column.drop_nulls().to_list())
        return found


@dataclass
class _Matcher:
    """How one search recognises a plate string."""

    predicate: Callable[[pl.Expr], pl.Expr]  # vectorised; may be a superset
    classify: Callable[[pl.Series], pl.DataFrame]  # distinct strings -> _INFO_SCHEMA rows
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
class _Search:
    store: ReadStore
    matcher: _Matcher
    start: datetime | None
    end: datetime | None
    filters: list[pl.Expr] = field(default_factory=list)
    page_size: int = 1000
    newest_first: bool = False
    step_rows: int = 200_000
    columns: tuple[str, ...] = tuple(READS_SCHEMA)
    chunk_days: int = 31

    def __post_init__(self) -> None:
        from sinks._store import _as_utc

        self.start = None if self.start is None else _as_utc(self.start, "start")
        self.end = None if self.end is None else _as_utc(self.end, "end")

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
        from sinks._store import scan_files

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

        found = _retry(run)
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
            self.matcher.classify(strings.unique()) if len(strings) else _empty_info()
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
            return _fetch_table(hits.files[int(key[0])], parts[key]["_row"].to_numpy(), needed)

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
            fetched = _typed(pa.concat_tables(tables, promote_options="permissive"), needed)
            fetched = fetched.hstack(wanted.select("matched_plate", "via_candidate"))
            # Pass 1 may have read a plate index: the fetched plates must be the ones it saw.
            wrong = (~pl.col("via_candidate")) & (pl.col("plate") != pl.col("matched_plate"))
            if (bad := wanted.filter(fetched.select(wrong).to_series())).height:
                raise _index_mismatch(hits.files[int(bad["_f"][0])], "its rows hold other plates")
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


def _index_mismatch(path: Path, why: str) -> SinksError:
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


def _fetch_table(path: Path, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
    """The rows at positions ``rows`` (ascending) of one reads file, as stored (the ``columns``
    it has). Decodes only the row groups that hold them."""
    footer = _footer(path)
    starts = footer.starts
    if len(rows) and int(rows[-1]) >= int(starts[-1]):
        raise _index_mismatch(path, f"it has {int(starts[-1])} rows, not {int(rows[-1]) + 1}")
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


def _typed(table: pa.Table, columns: Sequence[str]) -> pl.DataFrame:
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
    return _typed(_fetch_table(path, rows, columns), columns)


class _Moved(Exception):
    """Files of a search step were replaced (compaction, purge) after they were listed."""


def _retry(run: Callable[[], _T]) -> _T:
    try:
        return run()
    except (FileNotFoundError, pl.exceptions.ComputeError) as error:
        # Compaction may have replaced a file between listing and reading: list again once.
        log.info("search re-listing files after %s", error)
        return run()


def _empty_info() -> pl.DataFrame:
    return pl.DataFrame(schema=_INFO_SCHEMA)


def _info(rows: Sequence[tuple[str, str, int, int]]) -> pl.DataFrame:
    if not rows:
        return _empty_info()
    return pl.DataFrame(
        rows, schema=["matched_plate", "match_kind", "differences", "substitutions"], orient="row"
    ).cast(_INFO_SCHEMA)  # type: ignore[arg-type]


def _kind(differences: int, substitutions: int) -> str:
    if differences:
        return "fuzzy"
    return "ocr" if substitutions else "exact"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


def _filters(
    state: str | None, cameras: Collection[str] | None
) -> tuple[list[pl.Expr], dict[str, Any]]:
    filters: list[pl.Expr] = []
    described: dict[str, Any] = {}
    if state is not None:
        filters.append(pl.col("state") == state.upper())
        described["state"] = state.upper()
    if cameras is not None:
        chosen = sorted(set(cameras))
        filters.append(pl.col("camera_id").is_in(chosen))
        described["cameras"] = chosen
    return filters, described


def _columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return tuple(READS_SCHEMA)
    unknown = [name for name in columns if name not in READS_SCHEMA]
    if unknown:
        msg = f"unknown read columns {unknown}; choose from {list(READS_SCHEMA)}"
        raise SinksValueError(msg, "columns")
    return tuple(name for name in READS_SCHEMA if name in set(columns))


def _check_page_size(page_size: int) -> None:
    if page_size < 1:
        msg = f"page_size must be at least 1, got {page_size}"
        raise SinksValueError(msg, "page_size")


def _ocr(ocr_classes: Sequence[str]) -> OcrClasses:
    try:
        return OcrClasses(tuple(ocr_classes))
    except MatchersError as exc:
        raise SinksValueError(str(exc), "ocr_classes") from exc


def _glob_matcher(
    glob: Glob, kind: Callable[[int], str], prune: pl.Expr | None, candidates: bool
) -> _Matcher:
    """Match by the compiled glob: its regex over the column, then (with an OCR budget) its
    substitution count per distinct matched string, which also drops the regex's superset."""
    regex = glob.search_regex

    def classify(strings: pl.Series) -> pl.DataFrame:
        rows = []
        for text in strings.to_list():
            subs = glob.substitutions(text) if glob.ocr_equivalents else 0
            if subs is not None:
                rows.append((text, kind(subs), 0, subs))
        return _info(rows)

    return _Matcher(lambda col: col.str.contains(regex), classify, prune, candidates)


#: Row-group pruning pays only when the ranges are narrow: with one leading character (``6*``,
#: ``[0-4]*99``, ``[!A-M]*``) most row groups of a plate-sorted day still qualify, and the
#: one-column scan of the plate index was faster (benchmarks/storage.py store, 2M reads).
_MIN_PRUNE_PREFIX = 2


def _prefix_prune(glob: Glob) -> pl.Expr | None:
    """Explicit plate ranges, so the reader skips row groups of plate-sorted files."""
    ranges = glob.prefix_ranges()
    if not ranges or min(len(low) for low, _ in ranges) < _MIN_PRUNE_PREFIX:
        return None
    tests = [(pl.col("plate") >= low) & (pl.col("plate") < high) for low, high in ranges]
    return pl.any_horizontal(tests) if len(tests) > 1 else tests[0]


def plate_history(
    store: ReadStore,
    plate: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    differences: int = 0,
    ocr_equivalents: int = 0,
    candidates: bool = False,
    state: str | None = None,
    cameras: Collection[str] | None = None,
    ocr_classes: Sequence[str] = DEFAULT_OCR_CLASSES,
    page_size: int = 1000,
    newest_first: bool = False,
    step_rows: int = 200_000,
    columns: Sequence[str] | None = None,
) -> Pages:
    """Every read of ``plate`` with ``start <= ts < end``. Exact by default; OCR-equivalent
    with ``ocr_equivalents`` (``len(plate)`` allows every position), one-difference with
    ``differences=1``; ``candidates`` also matches the reads' alternate plates. Raises
    :class:`SinksValueError` (``field`` ``plate``) for a plate that is not normalised or a
    tolerance out of range."""
    _check_page_size(page_size)
    target = plate.upper()
    filters, described = _filters(state, cameras)
    ocr = _ocr(ocr_classes)
    try:
        check_plate(target)
        if differences == 0:
            # A plate is a pattern of literals: the glob's per-position class regex never
            # explodes (0000000000 has 4**10 spellings) and its DP counts the substitutions.
            glob = compile_glob(target, min(ocr_equivalents, len(target)), ocr)
            single = glob.ocr_equivalents == 0 or glob.confusable == 0
            prune = (pl.col("plate") == target) if single else None
            matcher = _glob_matcher(glob, lambda subs: _kind(0, subs), prune, candidates)
        else:
            variants = plate_variants(target, differences, ocr_equivalents, ocr)
            values = pl.Series(sorted(variants), dtype=pl.String)
            table = _info([(text, _kind(d, o), d, o) for text, (d, o) in variants.items()])

            def classify(strings: pl.Series) -> pl.DataFrame:
                return table.filter(pl.col("matched_plate").is_in(strings.implode()))

            matcher = _Matcher(lambda col: col.is_in(values.implode()), classify, None, candidates)
    except MatchersError as exc:
        raise SinksValueError(str(exc), "plate") from exc
    search = _Search(
        store, matcher, start, end, filters, page_size, newest_first, step_rows, _columns(columns)
    )
    query = {
        "search": "plate_history",
        "plate": target,
        "start": _iso(start),
        "end": _iso(end),
        "differences": differences,
        "ocr_equivalents": ocr_equivalents,
        "candidates": candidates,
        **described,
    }
    return Pages(query, search.pages, search.schema(), search.count)


def partial_search(
    store: ReadStore,
    pattern: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    state: str | None = None,
    cameras: Collection[str] | None = None,
    ocr_equivalents: int = 0,
    candidates: bool = False,
    ocr_classes: Sequence[str] = DEFAULT_OCR_CLASSES,
    page_size: int = 1000,
    newest_first: bool = False,
    step_rows: int = 200_000,
    columns: Sequence[str] | None = None,
) -> Pages:
    """Reads whose plate matches a pattern (``7AB?12*``, ``*XYZ*``, ``[8B]AD*``, ``[A-F]?1*``,
    ``[!A-M]*99``) over the whole plate, optionally within a state and a set of cameras, with
    the semantics of :func:`matchers.compare` (at most ``ocr_equivalents`` literals read as an
    OCR look-alike; set members match exactly). Letters may be lower-case; anything else
    outside the pattern syntax is refused (:func:`matchers.normalise_entry_plate` drops
    separators first, as the API does). ``match_kind`` is ``partial``. Raises
    :class:`SinksValueError` (``field`` ``pattern``) for an invalid pattern or one without a
    letter, digit or set."""
    _check_page_size(page_size)
    ocr = _ocr(ocr_classes)
    try:
        glob = compile_glob(pattern.upper(), ocr_equivalents, ocr)
    except MatchersError as exc:
        raise SinksValueError(str(exc), "pattern") from exc
    if glob.known_characters == 0:
        msg = f"pattern {pattern!r} has no known character; give at least one letter or digit"
        raise SinksValueError(msg, "pattern")
    filters, described = _filters(state, cameras)
    # With an OCR budget the prefixes multiply by the look-alikes; the plate index is cheaper.
    prune = _prefix_prune(glob) if ocr_equivalents == 0 else None
    matcher = _glob_matcher(glob, lambda subs: "partial", prune, candidates)
    search = _Search(
        store, matcher, start, end, filters, page_size, newest_first, step_rows, _columns(columns)
    )
    query = {
        "search": "partial",
        "pattern": glob.pattern,
        "start": _iso(start),
        "end": _iso(end),
        "ocr_equivalents": ocr_equivalents,
        "candidates": candidates,
        **described,
    }
    return Pages(query, search.pages, search.schema(), search.count)


def search_plates(
    store: ReadStore,
    match: Callable[[pl.Series], pl.Series],
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    description: Mapping[str, Any] | None = None,
    state: str | None = None,
    cameras: Collection[str] | None = None,
    candidates: bool = False,
    page_size: int = 1000,
    newest_first: bool = False,
    step_rows: int = 200_000,
    columns: Sequence[str] | None = None,
) -> Pages:
    """Reads whose plate satisfies ``match``, any predicate over a Series of distinct plates
    returning a Boolean Series of the same length (e.g. the matchers' hotlist index, for
    past-read matching). ``match_kind`` is ``custom``. Slower than the built-in searches: the
    predicate runs in Python on each file's plates."""
    _check_page_size(page_size)

    def predicate(col: pl.Expr) -> pl.Expr:
        return col.map_batches(lambda s: match(s).cast(pl.Boolean), return_dtype=pl.Boolean)

    def classify(strings: pl.Series) -> pl.DataFrame:
        return _info([(text, "custom", 0, 0) for text in strings.to_list()])

    filters, described = _filters(state, cameras)
    matcher = _Matcher(predicate, classify, None, candidates)
    search = _Search(
        store, matcher, start, end, filters, page_size, newest_first, step_rows, _columns(columns)
    )
    query = {
        "search": "custom",
        "start": _iso(start),
        "end": _iso(end),
        "candidates": candidates,
        **dict(description or {}),
        **described,
    }
    return Pages(query, search.pages, search.schema(), search.count)
