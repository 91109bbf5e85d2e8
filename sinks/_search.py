"""Search over stored reads: plate history, partial plates, canvass. Results come in pages.

Every search is two passes over the date partitions in range (never a directory outside it):

1. a narrow pass reads only the columns the match needs (plate, and candidates when asked)
   and finds which plates match in which files, with counts;
2. a wide pass reads whole rows, but only from files that had a match and only for plates
   that matched, a few days at a time (about ``step_rows`` matched rows per step, default
   200,000; a single day with more is still read whole), and hands them out as pages of
   ``page_size`` rows sorted by time.

A page holds the read columns (:data:`sinks.READS_SCHEMA`) plus ``matched_plate`` (the read
plate, or the candidate plate that matched), ``via_candidate``, ``match_kind`` (exact | ocr |
fuzzy | partial | custom), ``differences`` and ``substitutions``. Memory stays near one step's
rows whatever the result size. Files replaced under a search (compaction, purge) make that
step re-read its days once, so a result is never short or doubled.
"""

from __future__ import annotations

import logging
import math
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
    from shapely.geometry.base import BaseGeometry

    from sinks._store import ReadStore

__all__ = [
    "CANVASS_SCHEMA",
    "MATCH_COLUMNS",
    "Pages",
    "canvass",
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
CANVASS_SCHEMA: dict[str, pl.DataType] = {
    "plate": pl.String(),
    "state": pl.String(),
    "reads": pl.UInt32(),
    "first_seen": pl.Datetime("ms", "UTC"),
    "last_seen": pl.Datetime("ms", "UTC"),
    "cameras": pl.List(pl.String()),
    "read_ids": pl.List(pl.String()),
    "nearest_m": pl.Float64(),
}
_EARTH_RADIUS_M = 6_371_008.8
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
    chunk_days: int = 31

    def _chunks(self) -> list[list[date]]:
        days = self.store.days_between("reads", self.start, self.end)
        if self.newest_first:
            days.reverse()
        return [days[i : i + self.chunk_days] for i in range(0, len(days), self.chunk_days)]

    def _base(self, files: Sequence[Path], with_path: bool) -> pl.LazyFrame:
        from sinks._store import scan_files

        frame = scan_files(files, READS_SCHEMA, self.start, self.end, with_path=with_path)
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
        per_file = hits.group_by("_file").agg(pl.col("n").sum())
        counts = {Path(name): int(n) for name, n in per_file.iter_rows()}
        return counts, info, listing

    def _wide(self, files: Sequence[Path], info: pl.DataFrame) -> pl.DataFrame:
        """Pass 2: the matching rows of ``files`` with their match columns, sorted by time."""
        strings = info["matched_plate"].implode()
        direct = pl.col("plate").is_in(strings)
        condition = direct
        matched = pl.col("plate")
        if self.matcher.candidates:
            cand_plates = pl.col("candidates").list.eval(pl.element().struct.field("plate"))
            first_hit = cand_plates.list.eval(
                pl.element().filter(pl.element().is_in(strings))
            ).list.first()
            condition = direct | first_hit.is_not_null()
            matched = pl.when(direct).then(pl.col("plate")).otherwise(first_hit)

        def run() -> pl.DataFrame:
            return (
                self._base(files, with_path=False)
                .filter(condition)
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
        return frame.select([*READS_SCHEMA, *MATCH_COLUMNS])

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
    search = _Search(store, matcher, start, end, filters, page_size, newest_first, step_rows)
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
    return Pages(query, search.pages, {**READS_SCHEMA, **MATCH_COLUMNS}, search.count)


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
    search = _Search(store, matcher, start, end, filters, page_size, newest_first, step_rows)
    query = {
        "search": "partial",
        "pattern": pattern,
        "start": _iso(start),
        "end": _iso(end),
        "ocr_equivalents": ocr_equivalents,
        "candidates": candidates,
        **described,
    }
    return Pages(query, search.pages, {**READS_SCHEMA, **MATCH_COLUMNS}, search.count)


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
    search = _Search(store, matcher, start, end, filters, page_size, newest_first, step_rows)
    query = {
        "search": "custom",
        "start": _iso(start),
        "end": _iso(end),
        "candidates": candidates,
        **dict(description or {}),
        **described,
    }
    return Pages(query, search.pages, {**READS_SCHEMA, **MATCH_COLUMNS}, search.count)


def canvass(
    store: ReadStore,
    start: datetime,
    end: datetime,
    *,
    center: tuple[float, float] | None = None,
    radius_m: float | None = None,
    polygon: BaseGeometry | None = None,
    cameras: Collection[str] | None = None,
    page_size: int = 1000,
) -> Pages:
    """Every plate read within ``radius_m`` of ``center`` (lat, lon) or inside ``polygon``
    (shapely, x = lon, y = lat) during ``[start, end)``, one row per plate: ``reads``,
    ``first_seen``, ``last_seen``, ``cameras``, ``read_ids``, ``nearest_m`` (distance of the
    closest read to the center; null for a polygon), sorted by first sighting. Reads without
    a position are not in any canvass."""
    _check_page_size(page_size)
    if (center is None) == (polygon is None):
        msg = "canvass needs either center and radius_m, or polygon (not both)"
        raise SinksError(msg)
    if center is not None and (radius_m is None or radius_m <= 0):
        msg = f"canvass radius_m must be positive metres, got {radius_m}"
        raise SinksError(msg)
    filters, described = _filters(None, cameras)
    columns = ["read_id", "camera_id", "plate", "state", "ts", "lat", "lon"]

    def window() -> pl.LazyFrame:
        frame = store.scan_reads(start, end).filter(
            pl.col("lat").is_not_null() & pl.col("lon").is_not_null()
        )
        for expression in filters:
            frame = frame.filter(expression)
        return frame

    def grouped() -> pl.DataFrame:
        if center is not None and radius_m is not None:
            lat0, lon0 = center
            dlat = math.degrees(radius_m / _EARTH_RADIUS_M)
            dlon = dlat / max(math.cos(math.radians(lat0)), 1e-6)
            near = pl.col("lat").is_between(lat0 - dlat, lat0 + dlat) & pl.col("lon").is_between(
                lon0 - dlon, lon0 + dlon
            )
            distance = _haversine(pl.col("lat"), pl.col("lon"), lat0, lon0)
            rows = _retry(
                lambda: (
                    window()
                    .filter(near)
                    .select(columns)
                    .with_columns(distance_m=distance)
                    .collect()
                )
            ).filter(pl.col("distance_m") <= radius_m)
        else:
            import shapely

            assert polygon is not None
            west, south, east, north = polygon.bounds
            box = pl.col("lat").is_between(south, north) & pl.col("lon").is_between(west, east)
            rows = _retry(lambda: window().filter(box).select(columns).collect())
            inside = shapely.contains_xy(polygon, rows["lon"].to_numpy(), rows["lat"].to_numpy())
            rows = rows.filter(pl.Series(inside, dtype=pl.Boolean)).with_columns(
                distance_m=pl.lit(None, pl.Float64)
            )
        return (
            rows.sort("ts", "read_id")
            .group_by("plate", maintain_order=True)
            .agg(
                state=pl.col("state").drop_nulls().mode().sort().first(),
                reads=pl.len(),
                first_seen=pl.col("ts").min(),
                last_seen=pl.col("ts").max(),
                cameras=pl.col("camera_id").unique().sort(),
                read_ids=pl.col("read_id"),
                nearest_m=pl.col("distance_m").min(),
            )
            .sort("first_seen", "plate")
            .cast(CANVASS_SCHEMA)  # type: ignore[arg-type]
        )

    def pages() -> Iterator[pl.DataFrame]:
        result = grouped()
        for offset in range(0, result.height, page_size):
            yield result.slice(offset, page_size)

    query = {
        "search": "canvass",
        "start": _iso(start),
        "end": _iso(end),
        "center": list(center) if center is not None else None,
        "radius_m": radius_m,
        "polygon": polygon.wkt if polygon is not None else None,
        **described,
    }
    return Pages(query, pages, CANVASS_SCHEMA, None)


def _haversine(lat: pl.Expr, lon: pl.Expr, lat0: float, lon0: float) -> pl.Expr:
    phi = lat.radians()
    phi0 = math.radians(lat0)
    dphi = phi - phi0
    dlmb = lon.radians() - math.radians(lon0)
    a = (dphi / 2).sin().pow(2) + math.cos(phi0) * phi.cos() * (dlmb / 2).sin().pow(2)
    return 2 * _EARTH_RADIUS_M * a.sqrt().arcsin()
