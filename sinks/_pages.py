"""Search results as pages, and the arguments every stored-read search shares.

A page holds the read columns (:data:`sinks.READS_SCHEMA`, or only the ``columns`` asked for)
plus :data:`MATCH_COLUMNS`: ``matched_plate`` (the read plate, or the candidate plate that
matched), ``via_candidate``, ``match_kind`` (exact | ocr | fuzzy | partial | custom),
``differences`` and ``substitutions``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import polars as pl

from sinks._errors import SinksValueError
from sinks._schema import READS_SCHEMA

__all__ = [
    "INFO_SCHEMA",
    "MATCH_COLUMNS",
    "Pages",
    "check_page_size",
    "empty_info",
    "info_frame",
    "iso",
    "match_kind",
    "read_columns",
    "read_filters",
]

MATCH_COLUMNS: dict[str, pl.DataType] = {
    "matched_plate": pl.String(),
    "via_candidate": pl.Boolean(),
    "match_kind": pl.String(),
    "differences": pl.Int8(),
    "substitutions": pl.Int8(),
}
INFO_SCHEMA = {
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


def empty_info() -> pl.DataFrame:
    return pl.DataFrame(schema=INFO_SCHEMA)


def info_frame(rows: Sequence[tuple[str, str, int, int]]) -> pl.DataFrame:
    if not rows:
        return empty_info()
    return pl.DataFrame(
        rows, schema=["matched_plate", "match_kind", "differences", "substitutions"], orient="row"
    ).cast(INFO_SCHEMA)  # type: ignore[arg-type]


def match_kind(differences: int, substitutions: int) -> str:
    if differences:
        return "fuzzy"
    return "ocr" if substitutions else "exact"


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


def read_filters(
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


def read_columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return tuple(READS_SCHEMA)
    unknown = [name for name in columns if name not in READS_SCHEMA]
    if unknown:
        msg = f"unknown read columns {unknown}; choose from {list(READS_SCHEMA)}"
        raise SinksValueError(msg, "columns")
    return tuple(name for name in READS_SCHEMA if name in set(columns))


def check_page_size(page_size: int) -> None:
    if page_size < 1:
        msg = f"page_size must be at least 1, got {page_size}"
        raise SinksValueError(msg, "page_size")
