"""Searches of the stored reads as acts: plate history, partial plate and canvass (427.3(d)).

Each call is one justified inquiry run through :meth:`Door.scan`: its intent (the query terms:
plate or pattern, place, time window) is committed before the store is read, and a second
record linked to it carries the rows returned (``result_count``) and, on the first page, the
size of the whole result (``terms.total``). The scan holds no database transaction.
:func:`search_page` answers a page at a time with an opaque cursor (the API);
:func:`search_stream` counts the whole result before its outcome is recorded, then hands back
the pages to stream to a file or a terminal (the CLI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from service._acts import Acts
from service._bounds import check_bounds
from service._door import Act, Actor, Door, Outcome
from service._pages import page_of_canvass, page_of_reads, rows_json, with_alerts
from service._query import READ_RESULT_SCHEMA, SearchSpec
from sinks import CANVASS_SCHEMA

__all__ = ["ResultStream", "SearchPage", "search_act", "search_page", "search_stream"]


@dataclass(frozen=True)
class SearchPage:
    """One page: the search as audited, its rows (JSON-ready dicts with their alerts), the
    size of the whole result (first page only), and the cursor of the next page."""

    query: dict[str, Any]
    rows: list[dict[str, Any]]
    total: int | None
    next_cursor: str | None
    alerts_published: int = 0

    @property
    def count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class ResultStream:
    """A whole result, counted when the inquiry's outcome was recorded: its pages (each with an
    ``alerts`` column of JSON text) come from the store again as they are read."""

    query: dict[str, Any]
    total: int
    schema: Mapping[str, pl.DataType]
    frames: Iterator[pl.DataFrame] = field(repr=False)
    alerts_published: int = 0


def search_act(kind: str) -> Act:
    """The act of a search kind (``plate``, ``partial``, ``canvass``)."""
    return {"plate": Acts.PLATE_HISTORY, "partial": Acts.PARTIAL_SEARCH}.get(kind, Acts.CANVASS)


def _spec(
    door: Door, actor: Actor, act: Act, build: Callable[[], SearchSpec], override: str | None
) -> tuple[SearchSpec, dict[str, Any]]:
    """The search ``build`` makes, checked against the bounds: a bad value or a bound passed
    without a supervisor's override is an audited refusal; an override goes into the terms."""
    spec = door.checked(actor, act, build)
    if search_act(spec.kind) != act:
        raise AssertionError(f"a {spec.kind} search run as {act.action}")
    passed = door.checked(actor, act, lambda: check_bounds(spec, door.config, actor, override))
    return spec, ({"override": passed} if passed else {})


def search_page(
    door: Door,
    actor: Actor,
    act: Act,
    build: Callable[[], SearchSpec],
    *,
    page_size: int = 100,
    cursor: str | None = None,
    newest_first: bool = True,
    override_reason: str | None = None,
) -> SearchPage:
    """One page of the search ``build`` returns (a bad value there, or a bound passed without
    a supervisor's ``override_reason``, is audited as a refusal). ``act`` is
    :data:`Acts.PLATE_HISTORY`, :data:`Acts.PARTIAL_SEARCH` or :data:`Acts.CANVASS`."""
    spec, override = _spec(door, actor, act, build, override_reason)
    store, covert = door.store, actor.covert
    terms = {**spec.terms(), "page_size": page_size, "cursor": bool(cursor), **override}
    if spec.kind != "canvass":
        terms["order"] = "desc" if newest_first else "asc"

    def run(access: Outcome) -> SearchPage:
        if spec.kind == "canvass":
            pages = spec.pages(store, page_size=page_size)
            page = page_of_canvass(pages, spec.terms(), page_size=page_size, cursor=cursor)
        else:
            page = page_of_reads(
                lambda lo, hi, size: spec.pages(
                    store,
                    page_size=size,
                    newest_first=newest_first,
                    start=lo,
                    end=hi,
                    ocr_classes=door.config.ocr_classes,
                ),
                spec.start,
                spec.end,
                spec.terms(),
                page_size=page_size,
                cursor=cursor,
                newest_first=newest_first,
            )
        rows = rows_json(store, page.rows, covert=covert, grouped=spec.kind == "canvass")
        access.result_count = len(rows)
        access.terms["total"] = page.total
        return SearchPage(spec.terms(), rows, page.total, page.next_cursor)

    return door.scan(actor, act, run, terms)


def search_stream(
    door: Door,
    actor: Actor,
    act: Act,
    build: Callable[[], SearchSpec],
    *,
    page_size: int = 1000,
    newest_first: bool = True,
    output: str = "terminal",
    override_reason: str | None = None,
) -> ResultStream:
    """The whole result of a search, counted before its outcome is recorded (with the total,
    and where the result goes, ``output``); the pages are read after that record commits."""
    spec, override = _spec(door, actor, act, build, override_reason)
    store = door.store
    newest = newest_first and spec.kind != "canvass"

    def frames() -> Iterator[pl.DataFrame]:
        return iter(
            spec.pages(
                store,
                page_size=page_size,
                newest_first=newest,
                ocr_classes=door.config.ocr_classes,
            )
        )

    def run(access: Outcome) -> int:
        total = spec.pages(store, page_size=page_size, ocr_classes=door.config.ocr_classes).count()
        access.result_count = total
        return total

    total = door.scan(actor, act, run, {**spec.terms(), "output": output, **override})
    grouped = spec.kind == "canvass"
    return ResultStream(
        spec.terms(),
        total,
        CANVASS_SCHEMA if grouped else READ_RESULT_SCHEMA,
        with_alerts(store, frames(), covert=actor.covert, grouped=grouped),
    )
