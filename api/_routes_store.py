"""Searches over the stored reads (427.3(d)): plate history, partial plate, canvass, and
past-read matching for a hotlist entry.

Each call is one justified inquiry: the guard has checked the session, role, training and case
number; the search runs inside the audited transaction, whose record carries the query terms
(plate or pattern, place, time window), the rows returned (``result_count``) and, on the first
page, the size of the whole result (``terms.total``). Results come a page at a time with an
opaque ``next_cursor``; a later page narrows the scan to the rows after the cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import Depends, Query

import service
from api._access import Guard, guard, guarded_router
from api._schemas_store import CanvassIn, CanvassOut, CanvassQuery, PastIn, PastOut, SearchOut
from service import Acts, SearchSpec, cursor_window, utc_window

__all__ = ["canvass_spec", "router"]

router = guarded_router("search")

# The query parameters the plate and partial searches share.
_Start = Annotated[datetime | None, Query(description="RFC 3339, inclusive.")]
_End = Annotated[datetime | None, Query(description="RFC 3339, exclusive.")]
_State = Annotated[str | None, Query(max_length=2)]
_Cameras = Annotated[
    list[str] | None, Query(max_length=100, description="Only reads of these cameras (repeat).")
]
_Order = Annotated[
    str, Query(pattern="^(asc|desc)$", description="`desc`: newest first (default).")
]
_PageSize = Annotated[int, Query(ge=1, le=1000, description="Rows per page.")]
_Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]
_Override = Annotated[
    str | None,
    Query(
        max_length=500,
        description="Why this search may pass the configured bounds (window, known "
        "characters): holders of `search:override` only; recorded in the audit log.",
    ),
]


def canvass_spec(query: CanvassQuery) -> SearchSpec:
    begin, stop = utc_window(query.start, query.end)
    center = (query.center.lat, query.center.lon) if query.center is not None else None
    return SearchSpec.canvass(
        begin,
        stop,
        center=center,
        radius_m=query.radius_m,
        polygon=query.polygon,
        cameras=query.cameras,
    )


@dataclass
class _ReadQuery:
    """The query parameters the plate and partial searches share (a FastAPI dependency)."""

    start: _Start = None
    end: _End = None
    state: _State = None
    camera_id: _Cameras = None
    order: _Order = "desc"
    page_size: _PageSize = 100
    cursor: _Cursor = None
    override_reason: _Override = None


def _search(
    g: Guard,
    act: service.Act,
    q: _ReadQuery,
    build: Callable[..., SearchSpec],
) -> SearchOut:
    """One page of the search ``build(start, end, state=..., cameras=...)`` makes; a later
    page keeps the window its cursor carries."""
    page = service.search_page(
        g.door,
        g.actor,
        act,
        lambda: build(
            *(cursor_window(q.cursor) or utc_window(q.start, q.end)),
            state=q.state,
            cameras=q.camera_id,
        ),
        page_size=q.page_size,
        cursor=q.cursor,
        newest_first=q.order == "desc",
        override_reason=q.override_reason,
    )
    return SearchOut.of(page, reads=page.rows)  # the rows are validated into ReadOut


@router.get(
    "/v1/search/plate",
    response_model=SearchOut,
    summary="Plate history",
    description="Every read of a plate in [start, end) (default: the last 30 days): exact, "
    "any OCR look-alike (`ocr`), or one difference (`one_difference`), optionally through the "
    "reads' alternate candidates. Paged; covert-list alerts only for roles allowed.",
)
def plate_history(
    *,
    plate: Annotated[str, Query(min_length=1, max_length=32)],
    match: Annotated[str, Query(pattern="^(exact|ocr|one_difference)$")] = "exact",
    candidates: bool = False,
    q: Annotated[_ReadQuery, Depends()],
    g: Annotated[Guard, Depends(guard(Acts.PLATE_HISTORY))],
) -> SearchOut:
    build = partial(SearchSpec.plate_history, plate, match=match, candidates=candidates)
    return _search(g, Acts.PLATE_HISTORY, q, build)


@router.get(
    "/v1/search/partial",
    response_model=SearchOut,
    summary="Partial-plate search",
    description="Reads whose whole plate matches a glob: `?` one character, `*` any run, "
    "`[8B]` one of a set (`7AB?12*`, `*XYZ*`, `[8B]AD*`), optionally in a state and from "
    "some cameras, in [start, end) (default: the last 30 days). Paged.",
)
def partial_search(
    *,
    pattern: Annotated[str, Query(min_length=1, max_length=40)],
    ocr_equivalents: Annotated[int, Query(ge=0, le=3)] = 0,
    candidates: bool = False,
    q: Annotated[_ReadQuery, Depends()],
    g: Annotated[Guard, Depends(guard(Acts.PARTIAL_SEARCH))],
) -> SearchOut:
    build = partial(
        SearchSpec.partial, pattern, ocr_equivalents=ocr_equivalents, candidates=candidates
    )
    return _search(g, Acts.PARTIAL_SEARCH, q, build)


@router.post(
    "/v1/search/canvass",
    response_model=CanvassOut,
    summary="Canvass around a scene",
    description="Plates read within `radius_m` of `center`, or inside a GeoJSON `polygon`, "
    "during [start, end): one row per plate with its first and last sighting, cameras and "
    "read ids, by first sighting. Paged by plate.",
)
def canvass(
    *,
    body: CanvassIn,
    g: Annotated[Guard, Depends(guard(Acts.CANVASS))],
) -> CanvassOut:
    page = service.search_page(
        g.door,
        g.actor,
        Acts.CANVASS,
        lambda: canvass_spec(body),
        page_size=body.page_size,
        cursor=body.cursor,
        override_reason=body.override_reason,
    )
    return CanvassOut.of(page, plates=page.rows)


@router.post(
    "/v1/search/past",
    response_model=PastOut,
    summary="Past-read matching for a hotlist entry",
    description="What an entry already on a list (just added, typically) would have hit in "
    "the last `days` of stored reads, under the list's policy. With `alert=true` (first page, "
    "roles that may enter entries) the hits are published as alerts flagged `historical`.",
)
def past_reads(
    *,
    body: PastIn,
    g: Annotated[Guard, Depends(guard(Acts.PAST_READS))],
) -> PastOut:
    asked = service.PastRequest(body.hotlist, body.plate, body.days, body.state, body.alert)
    page = service.past_page(g.door, g.actor, asked, page_size=body.page_size, cursor=body.cursor)
    return PastOut.of(page, reads=page.rows)
