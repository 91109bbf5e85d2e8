"""The stored-read searches: plate history, partial plates, and a custom predicate.

Each builds a :class:`sinks._search.Matcher` (how a plate string is recognised, from the
matchers package's own semantics: :func:`matchers.compile_glob` for patterns and OCR spellings,
:func:`matchers.plate_variants` for neighbourhoods with differences) and runs it through the
two-pass :class:`sinks._search.Search`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from matchers import (
    DEFAULT_OCR_CLASSES,
    Glob,
    MatchersError,
    OcrClasses,
    check_plate,
    compile_glob,
    plate_variants,
    require_known_characters,
)
from sinks._errors import SinksValueError
from sinks._pages import (
    Pages,
    check_page_size,
    info_frame,
    iso,
    match_kind,
    read_columns,
    read_filters,
)
from sinks._search import Matcher, Search

if TYPE_CHECKING:
    from sinks._store import ReadStore

__all__ = ["partial_search", "plate_history", "search_plates"]


@dataclass(frozen=True)
class _Paging:
    """The arguments every search shares: filters, candidates and how results are paged."""

    state: str | None
    cameras: Collection[str] | None
    candidates: bool
    page_size: int
    newest_first: bool
    step_rows: int
    columns: Sequence[str] | None

    def __post_init__(self) -> None:
        check_page_size(self.page_size)


def _paged(
    store: ReadStore,
    matcher: Matcher,
    kind: str,
    terms: Mapping[str, Any],
    start: datetime | None,
    end: datetime | None,
    paging: _Paging,
) -> Pages:
    """Run ``matcher`` as search ``kind``; the query records ``terms`` and the filters."""
    filters, described = read_filters(paging.state, paging.cameras)
    search = Search(
        store,
        matcher,
        start,
        end,
        filters,
        paging.page_size,
        paging.newest_first,
        paging.step_rows,
        read_columns(paging.columns),
    )
    query = {
        "search": kind,
        "start": iso(start),
        "end": iso(end),
        **terms,
        "candidates": paging.candidates,
        **described,
    }
    return Pages(query, search.pages, search.schema(), search.count)


def _ocr(ocr_classes: Sequence[str], ocr_equivalents: int) -> OcrClasses:
    """The OCR classes to match with; the budget and the classes checked, naming the field."""
    if ocr_equivalents < 0:
        msg = f"ocr_equivalents is {ocr_equivalents}; use 0 or more"
        raise SinksValueError(msg, "ocr_equivalents")
    try:
        return OcrClasses(tuple(ocr_classes))
    except MatchersError as exc:
        raise SinksValueError(str(exc), "ocr_classes") from exc


def _glob_matcher(
    glob: Glob, kind: Callable[[int], str], prune: pl.Expr | None, candidates: bool
) -> Matcher:
    """Match by the compiled glob: its regex over the column, then (with an OCR budget) its
    substitution count per distinct matched string, which also drops the regex's superset."""
    regex = glob.search_regex

    def classify(strings: pl.Series) -> pl.DataFrame:
        rows = []
        for text in strings.to_list():
            subs = glob.substitutions(text) if glob.ocr_equivalents else 0
            if subs is not None:
                rows.append((text, kind(subs), 0, subs))
        return info_frame(rows)

    return Matcher(lambda col: col.str.contains(regex), classify, prune, candidates)


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
    paging = _Paging(state, cameras, candidates, page_size, newest_first, step_rows, columns)
    target = plate.upper()
    ocr = _ocr(ocr_classes, ocr_equivalents)
    try:
        check_plate(target)
        if differences == 0:
            # A plate is a pattern of literals: the glob's per-position class regex never
            # explodes (0000000000 has 4**10 spellings) and its DP counts the substitutions.
            glob = compile_glob(target, min(ocr_equivalents, len(target)), ocr)
            single = glob.ocr_equivalents == 0 or glob.confusable == 0
            prune = (pl.col("plate") == target) if single else None
            matcher = _glob_matcher(glob, lambda subs: match_kind(0, subs), prune, candidates)
        else:
            variants = plate_variants(target, differences, ocr_equivalents, ocr)
            values = pl.Series(sorted(variants), dtype=pl.String)
            table = info_frame(
                [(text, match_kind(d, o), d, o) for text, (d, o) in variants.items()]
            )

            def classify(strings: pl.Series) -> pl.DataFrame:
                return table.filter(pl.col("matched_plate").is_in(strings.implode()))

            matcher = Matcher(lambda col: col.is_in(values.implode()), classify, None, candidates)
    except MatchersError as exc:
        raise SinksValueError(str(exc), "plate") from exc
    terms = {"plate": target, "differences": differences, "ocr_equivalents": ocr_equivalents}
    return _paged(store, matcher, "plate_history", terms, start, end, paging)


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
    paging = _Paging(state, cameras, candidates, page_size, newest_first, step_rows, columns)
    ocr = _ocr(ocr_classes, ocr_equivalents)
    try:
        glob = compile_glob(pattern.upper(), ocr_equivalents, ocr)
        # The store's floor: never a scan of every plate. The policy's minimum (a setting,
        # with an override) is the service's to apply, by the same rule.
        require_known_characters(glob.pattern, 1)
    except MatchersError as exc:
        raise SinksValueError(str(exc), "pattern") from exc
    # With an OCR budget the prefixes multiply by the look-alikes; the plate index is cheaper.
    prune = _prefix_prune(glob) if ocr_equivalents == 0 else None
    matcher = _glob_matcher(glob, lambda subs: "partial", prune, candidates)
    terms = {"pattern": glob.pattern, "ocr_equivalents": ocr_equivalents}
    return _paged(store, matcher, "partial", terms, start, end, paging)


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
    paging = _Paging(state, cameras, candidates, page_size, newest_first, step_rows, columns)

    def predicate(col: pl.Expr) -> pl.Expr:
        return col.map_batches(lambda s: match(s).cast(pl.Boolean), return_dtype=pl.Boolean)

    def classify(strings: pl.Series) -> pl.DataFrame:
        return info_frame([(text, "custom", 0, 0) for text in strings.to_list()])

    matcher = Matcher(predicate, classify, None, candidates)
    return _paged(store, matcher, "custom", dict(description or {}), start, end, paging)
