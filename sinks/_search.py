"""Search over stored reads: plate history, partial plates, canvass. Results come in pages.

Every search is two passes over the date partitions in range (never a directory outside it):

1. a narrow pass reads only the columns the match needs (plate, and candidates when asked)
   and finds which plates match in which files, with counts;
2. a wide pass reads whole rows, but only from files that had a match and only for plates
   that matched, a few days at a time (about ``step_rows`` matched rows per step, default
   200,000; a single day with more is still read whole), and hands them out as pages of
   ``page_size`` rows sorted by time.

A page holds the read columns (:data:`sinks.READS_SCHEMA`, or only the ``columns`` asked for:
a result list without candidates and image references reads about three times less) plus
``matched_plate`` (the read plate, or the candidate plate that matched), ``via_candidate``,
``match_kind`` (exact | ocr | fuzzy | partial | custom), ``differences`` and
``substitutions``. Memory stays near one step's rows whatever the result size. Files replaced
under a search (compaction, purge) make that step re-read its days once, so a result is never
short or doubled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from sinks._errors import SinksError
from sinks._plates import (
    DEFAULT_OCR_CLASSES,
    glob_prefixes,
    glob_substitutions,
    glob_to_regex,
    plate_variants,
)
from sinks._schema import READS_SCHEMA

if TYPE_CHECKING:
    from sinks._store import ReadStore

__all__ = [
    "MATCH_COLUMNS",
    "Pages",
    "partial_search",
    "plate_history",
    "search_plates",
]

log = logging.getLogger(__name__)

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
    # Matched plate strings per file, from pass 1 (pass 2 narrows its filter with them).
    _texts: dict[Path, list[str]] = field(default_factory=dict, init=False, repr=False)

    def _chunks(self) -> list[list[date]]:
        days = self.store.days_between("reads", self.start, self.end)
        if self.newest_first:
            days.reverse()
        return [days[i : i + self.chunk_days] for i in range(0, len(days), self.chunk_days)]

    def _base(self, files: Sequence[Path], with_path: bool) -> pl.LazyFrame:
        from sinks._store import scan_files

        # Pass 2 (no path column) keeps few rows: decode the plate first, the rest per match.
        frame = scan_files(
            files, READS_SCHEMA, self.start, self.end, with_path=with_path,
            prefiltered=not with_path,
        )  # fmt: skip
        for expression in self.filters:
            frame = frame.filter(expression)
        return frame

    def _narrow(
        self, days: Sequence[date]
    ) -> tuple[dict[Path, int], pl.DataFrame, dict[date, list[Path]]]:
        """Pass 1 for some days: matched rows per file, the classified matched strings, and
        the files each day had when they were read."""
        listing: dict[date, list[Path]] = {}

        def run() -> pl.DataFrame:
            listing.clear()
            for day in days:
                listing[day] = self.store.files("reads", day)
            files = [path for paths in listing.values() for path in paths]
            if not files:
                return pl.DataFrame(schema={"_file": pl.String, "text": pl.String, "n": pl.UInt32})
            base = self._base(files, with_path=True)
            if self.matcher.prune is not None and not self.matcher.candidates:
                base = base.filter(self.matcher.prune)
            parts = [
                base.select("_file", text=pl.col("plate")).filter(
                    self.matcher.predicate(pl.col("text"))
                )
            ]
            if self.matcher.candidates:
                parts.append(
                    base.select(
                        "_file",
                        text=pl.col("candidates").list.eval(pl.element().struct.field("plate")),
                    )
                    .explode("text")
                    .filter(self.matcher.predicate(pl.col("text")))
                )
            return pl.concat(parts).group_by("_file", "text").agg(n=pl.len()).collect()

        hits = _retry(run)
        info = self.matcher.classify(hits["text"].unique()) if hits.height else _empty_info()
        hits = hits.filter(pl.col("text").is_in(info["matched_plate"].implode()))
        per_file = hits.group_by("_file").agg(pl.col("n").sum(), pl.col("text"))
        counts: dict[Path, int] = {}
        for name, n, texts in per_file.iter_rows():
            counts[Path(name)] = int(n)
            self._texts[Path(name)] = texts
        return counts, info, listing

    def _wide(self, files: Sequence[Path], info: pl.DataFrame) -> pl.DataFrame:
        """Pass 2: the matching rows of ``files`` with their match columns, sorted by time."""
        strings = info["matched_plate"].implode()
        direct = pl.col("plate").is_in(strings)
        condition = direct
        matched = pl.col("plate")
        if not self.matcher.candidates:
            # Only plates found in these files, and their range as a plain comparison the
            # reader can check against row-group statistics of plate-sorted files.
            here = sorted({text for path in files for text in self._texts.get(path, ())})
            if here:
                direct = pl.col("plate").is_in(pl.Series(here, dtype=pl.String).implode())
                condition = (pl.col("plate") >= here[0]) & (pl.col("plate") <= here[-1]) & direct
            if self.matcher.prune is not None:
                condition = self.matcher.prune & condition
        if self.matcher.candidates:
            cand_plates = pl.col("candidates").list.eval(pl.element().struct.field("plate"))
            first_hit = cand_plates.list.eval(
                pl.element().filter(pl.element().is_in(strings))
            ).list.first()
            condition = direct | first_hit.is_not_null()
            matched = pl.when(direct).then(pl.col("plate")).otherwise(first_hit)

        needed = {*self.columns, "plate", "ts", "read_id"}
        if self.matcher.candidates:
            needed.add("candidates")

        def run() -> pl.DataFrame:
            return (
                self._base(files, with_path=False)
                .filter(condition)
                .select([name for name in READS_SCHEMA if name in needed])
                .with_columns(matched_plate=matched, via_candidate=~direct)
                .collect()
            )

        if not all(path.exists() for path in files):
            raise _Moved
        try:
            frame = run()
        except (FileNotFoundError, pl.exceptions.ComputeError) as error:
            if all(path.exists() for path in files):
                raise
            raise _Moved from error
        frame = frame.join(info, on="matched_plate", how="left")
        frame = frame.sort("ts", "read_id", descending=self.newest_first)
        return frame.select([*self.columns, *MATCH_COLUMNS])

    def schema(self) -> dict[str, pl.DataType]:
        return {**{name: READS_SCHEMA[name] for name in self.columns}, **MATCH_COLUMNS}

    def _frames(self) -> Iterator[pl.DataFrame]:
        """Matched rows a step (a few whole days) at a time, in time order."""
        for days in self._chunks():
            counts, info, listing = self._narrow(days)
            for step_days, files in self._steps(days, counts, listing):
                try:
                    yield self._wide(files, info)
                except _Moved:
                    # Compaction or purge replaced files since pass 1: redo these days once.
                    log.info("search re-reading %s: files changed under it", step_days)
                    again, info_again, listing_again = self._narrow(step_days)
                    for _, files_again in self._steps(step_days, again, listing_again):
                        yield self._wide(files_again, info_again)

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

    def _steps(
        self,
        days: Sequence[date],
        counts: Mapping[Path, int],
        listing: Mapping[date, list[Path]],
    ) -> Iterator[tuple[list[date], list[Path]]]:
        """Groups of whole days whose matched rows add up to about ``step_rows``."""
        step: list[Path] = []
        step_days: list[date] = []
        rows = 0
        for day in days:
            files = [path for path in listing.get(day, []) if counts.get(path)]
            found = sum(counts[path] for path in files)
            if not found:
                continue
            if step and rows + found > self.step_rows:
                yield step_days, step
                step, step_days, rows = [], [], 0
            step.extend(files)
            step_days.append(day)
            rows += found
        if step:
            yield step_days, step

    def count(self) -> int:
        if self.matcher.candidates:
            # A read may match by its plate and by a candidate: count rows, not hits.
            return sum(frame.height for frame in self._frames())
        total = 0
        for days in self._chunks():
            counts, _, _ = self._narrow(days)
            total += sum(counts.values())
        return total


class _Moved(Exception):
    """Files of a search step were replaced (compaction, purge) after they were listed."""


def _retry(run: Callable[[], pl.DataFrame]) -> pl.DataFrame:
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
        raise SinksError(msg)
    return tuple(name for name in READS_SCHEMA if name in set(columns))


def _check_page_size(page_size: int) -> None:
    if page_size < 1:
        msg = f"page_size must be at least 1, got {page_size}"
        raise SinksError(msg)


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
    ``differences=1``; ``candidates`` also matches the reads' alternate plates."""
    _check_page_size(page_size)
    target = plate.upper()
    filters, described = _filters(state, cameras)
    classes = tuple(ocr_classes)
    confusable = sum(1 for char in target if any(char in members for members in classes))
    if differences == 0 and ocr_equivalents >= confusable:
        # OCR-only: a per-position class regex is exact and never explodes (0000000000).
        class_of = {char: members for members in classes for char in members}
        regex = "^" + "".join(f"[{class_of[c]}]" if c in class_of else c for c in target) + "$"

        def classify_ocr(strings: pl.Series) -> pl.DataFrame:
            rows = []
            for text in strings.to_list():
                subs = sum(1 for a, b in zip(text, target, strict=True) if a != b)
                rows.append((text, _kind(0, subs), 0, subs))
            return _info(rows)

        matcher = _Matcher(lambda col: col.str.contains(regex), classify_ocr, None, candidates)
    else:
        variants = plate_variants(target, differences, ocr_equivalents, classes)
        values = pl.Series(sorted(variants), dtype=pl.String)
        table = _info([(text, _kind(d, o), d, o) for text, (d, o) in variants.items()])

        def classify(strings: pl.Series) -> pl.DataFrame:
            return table.filter(pl.col("matched_plate").is_in(strings.implode()))

        prune = (pl.col("plate") == target) if len(variants) == 1 else None
        matcher = _Matcher(lambda col: col.is_in(values.implode()), classify, prune, candidates)
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
    """Reads whose plate matches a glob (``7AB?12*``, ``*XYZ*``, ``[8B]AD*``) over the whole
    plate, optionally within a state and a set of cameras. ``match_kind`` is ``partial``."""
    _check_page_size(page_size)
    classes = tuple(ocr_classes)
    regex = glob_to_regex(pattern, ocr_equivalents, classes)
    filters, described = _filters(state, cameras)

    def classify(strings: pl.Series) -> pl.DataFrame:
        rows = []
        for text in strings.to_list():
            subs = (
                0
                if ocr_equivalents == 0
                else glob_substitutions(pattern, text, ocr_equivalents, classes)
            )
            if subs is not None:
                rows.append((text, "partial", 0, subs))
        return _info(rows)

    prune: pl.Expr | None = None
    prefixes = glob_prefixes(pattern) if ocr_equivalents == 0 else []
    if prefixes:
        # Explicit ranges let the reader skip row groups of plate-sorted files.
        ranges = [
            (pl.col("plate") >= prefix) & (pl.col("plate") < prefix[:-1] + chr(ord(prefix[-1]) + 1))
            for prefix in prefixes
        ]
        prune = pl.any_horizontal(ranges) if len(ranges) > 1 else ranges[0]
    matcher = _Matcher(lambda col: col.str.contains(regex), classify, prune, candidates)
    search = _Search(
        store, matcher, start, end, filters, page_size, newest_first, step_rows, _columns(columns)
    )
    query = {
        "search": "partial",
        "pattern": pattern,
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
