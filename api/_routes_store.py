"""Searches over the stored reads (427.3(d)): plate history, partial plate, canvass, and
past-read matching for a hotlist entry.

Each call is one justified inquiry: the guard has checked the session, role, training and case
number; the search runs inside :func:`records.audited`, whose record carries the query terms
(plate or pattern, place, time window), the rows returned (``result_count``) and, on the first
page, the size of the whole result (``terms.total``). Results come a page at a time with an
opaque ``next_cursor``; a later page narrows the scan to the rows after the cursor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request

import records
from api._access import GUARDED_RESPONSES, Guard, guard
from api._errors import Refusal
from api._schemas_store import (
    CanvassIn,
    CanvassOut,
    CanvassQuery,
    PastIn,
    PastOut,
    SearchOut,
)
from api._store_pages import cursor_window, page_of_canvass, page_of_reads, rows_json
from api._store_past import (
    PAST_SCHEMA,
    PastSearch,
    advisories_for,
    list_visible,
    publish_historical,
)
from api._store_query import COVERT_PERMISSION, SearchSpec, StoreQueryError, utc_window
from sinks import ReadStore

__all__ = ["canvass_spec", "router"]

router = APIRouter(tags=["search"])

T = TypeVar("T")
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
#: Roles that may enter hotlist entries may also raise their historical alerts.
_ENTRY_PERMISSIONS = ("hotlists:manage", "hotlists:partial")


def store_of(g: Guard) -> ReadStore:
    return ReadStore(g.settings.data_dir, g.settings.retention_days)


def checked(g: Guard, build: Callable[[], T]) -> T:
    """Build a query; a bad value is a refusal, audited as such, answered with its field."""
    try:
        return build()
    except StoreQueryError as exc:
        raise g.deny(exc.status, str(exc), "invalid", exc.field) from exc


def audited_read(g: Guard, run: Callable[[records.AuditedAccess], T], terms: dict[str, Any]) -> T:
    """:meth:`Guard.read`; a query error inside it (already audited as ``failed``) answers
    with its status and field."""
    try:
        return g.read(run, terms=terms)
    except StoreQueryError as exc:
        raise Refusal(exc.status, str(exc), field=exc.field) from exc


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


def _search(
    g: Guard, spec: SearchSpec, *, page_size: int, cursor: str | None, order: str
) -> SearchOut:
    store = store_of(g)
    newest = order == "desc"
    covert = g.can(COVERT_PERMISSION)
    terms = {**spec.terms(), "order": order, "page_size": page_size, "cursor": bool(cursor)}

    def run(access: records.AuditedAccess) -> SearchOut:
        page = page_of_reads(
            lambda lo, hi, size: spec.pages(
                store,
                page_size=size,
                newest_first=newest,
                start=lo,
                end=hi,
                ocr_classes=g.settings.ocr_classes,
            ),
            spec.start,
            spec.end,
            spec.terms(),
            page_size=page_size,
            cursor=cursor,
            newest_first=newest,
        )
        rows = rows_json(store, page.rows, covert=covert)
        access.result_count = len(rows)
        access.terms["total"] = page.total
        return SearchOut(
            query=spec.terms(),
            count=len(rows),
            total=page.total,
            next_cursor=page.next_cursor,
            reads=rows,  # type: ignore[arg-type]  # validated into ReadOut by pydantic
        )

    return audited_read(g, run, terms)


@router.get(
    "/v1/search/plate",
    response_model=SearchOut,
    responses=GUARDED_RESPONSES,
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
    start: _Start = None,
    end: _End = None,
    state: _State = None,
    camera_id: _Cameras = None,
    order: _Order = "desc",
    page_size: _PageSize = 100,
    cursor: _Cursor = None,
    g: Annotated[Guard, Depends(guard("reads.plate", "reads:search"))],
) -> SearchOut:
    spec = checked(
        g,
        lambda: SearchSpec.plate_history(
            plate,
            *(cursor_window(cursor) or utc_window(start, end)),
            match=match,
            candidates=candidates,
            state=state,
            cameras=camera_id,
        ),
    )
    return _search(g, spec, page_size=page_size, cursor=cursor, order=order)


@router.get(
    "/v1/search/partial",
    response_model=SearchOut,
    responses=GUARDED_RESPONSES,
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
    start: _Start = None,
    end: _End = None,
    state: _State = None,
    camera_id: _Cameras = None,
    order: _Order = "desc",
    page_size: _PageSize = 100,
    cursor: _Cursor = None,
    g: Annotated[Guard, Depends(guard("reads.partial", "reads:search"))],
) -> SearchOut:
    spec = checked(
        g,
        lambda: SearchSpec.partial(
            pattern,
            *(cursor_window(cursor) or utc_window(start, end)),
            ocr_equivalents=ocr_equivalents,
            candidates=candidates,
            state=state,
            cameras=camera_id,
        ),
    )
    return _search(g, spec, page_size=page_size, cursor=cursor, order=order)


@router.post(
    "/v1/search/canvass",
    response_model=CanvassOut,
    responses=GUARDED_RESPONSES,
    summary="Canvass around a scene",
    description="Plates read within `radius_m` of `center`, or inside a GeoJSON `polygon`, "
    "during [start, end): one row per plate with its first and last sighting, cameras and "
    "read ids, by first sighting. Paged by plate.",
)
def canvass(
    *,
    body: CanvassIn,
    g: Annotated[Guard, Depends(guard("reads.canvass", "reads:canvass"))],
) -> CanvassOut:
    spec = checked(g, lambda: canvass_spec(body))
    store = store_of(g)
    covert = g.can(COVERT_PERMISSION)
    terms = {**spec.terms(), "page_size": body.page_size, "cursor": bool(body.cursor)}

    def run(access: records.AuditedAccess) -> CanvassOut:
        pages = spec.pages(store, page_size=body.page_size)
        page = page_of_canvass(pages, spec.terms(), page_size=body.page_size, cursor=body.cursor)
        rows = rows_json(store, page.rows, covert=covert, grouped=True)
        access.result_count = len(rows)
        access.terms["total"] = page.total
        return CanvassOut(
            query=spec.terms(),
            count=len(rows),
            total=page.total,
            next_cursor=page.next_cursor,
            plates=rows,  # type: ignore[arg-type]
        )

    return audited_read(g, run, terms)


@router.post(
    "/v1/search/past",
    response_model=PastOut,
    responses=GUARDED_RESPONSES,
    summary="Past-read matching for a hotlist entry",
    description="What an entry already on a list (just added, typically) would have hit in "
    "the last `days` of stored reads, under the list's policy. With `alert=true` (first page, "
    "roles that may enter entries) the hits are published as alerts flagged `historical`.",
)
def past_reads(
    *,
    body: PastIn,
    request: Request,
    g: Annotated[Guard, Depends(guard("reads.past", "reads:search"))],
) -> PastOut:
    covert = g.can(COVERT_PERMISSION)
    if not list_visible(g.engine, body.hotlist, covert=covert):
        raise g.deny(404, f"no hotlist {body.hotlist!r}", "not_found", "hotlist")
    publish = body.alert and not body.cursor  # later pages of the same search: already done
    if publish and not any(g.can(p) for p in _ENTRY_PERMISSIONS):
        raise g.deny(
            403,
            f"user {g.user.username!r} may not raise historical alerts (needs one of "
            f"{', '.join(_ENTRY_PERMISSIONS)})",
            "forbidden",
        )
    window = checked(g, lambda: cursor_window(body.cursor))
    try:
        past = checked(
            g,
            lambda: PastSearch.prepare(
                g.engine,
                body.hotlist,
                body.plate,
                days=body.days,
                state=body.state,
                now=window[1] if window else None,
                ocr_classes=g.settings.ocr_classes,
            ),
        )
    except records.NotFoundError as exc:
        raise g.deny(404, str(exc), "not_found", "plate") from exc
    store = store_of(g)
    terms = {**past.terms(), "alert": publish, "cursor": bool(body.cursor)}

    def run(access: records.AuditedAccess) -> PastOut:
        published = 0
        if publish:
            advisories = advisories_for(g.settings)
            now_ms = int(time.time() * 1000)
            for frame in past.pages(store, past.start, past.end):
                alerts = past.alerts(past.transform(frame), advisories, now_ms)
                if alerts:
                    publish_historical(
                        request.app.state.redis, alerts, g.settings.alerts_log_maxlen
                    )
                    published += len(alerts)
            access.terms["alerts_published"] = published
        page = page_of_reads(
            lambda lo, hi, size: past.pages(store, lo, hi, size),
            past.start,
            past.end,
            past.terms(),
            page_size=body.page_size,
            cursor=body.cursor,
            transform=past.transform,
            schema=PAST_SCHEMA,
        )
        rows = rows_json(store, page.rows, covert=covert)
        access.result_count = len(rows)
        access.terms["total"] = page.total
        return PastOut(
            query=past.terms(),
            count=len(rows),
            total=page.total,
            next_cursor=page.next_cursor,
            alerts_published=published,
            reads=rows,  # type: ignore[arg-type]
        )

    return audited_read(g, run, terms)
