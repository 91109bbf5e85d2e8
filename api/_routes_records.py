"""Alert history, release requests (427.7) and the audit log and report (427.5).

Alert history is read from the Parquet alert store (:meth:`sinks.ReadStore.scan_alerts`) and
the recent alerts from the capped Redis alert log (:meth:`sinks.AlertBus.replay`); covert
alerts only reach roles holding ``hotlists:view_covert``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import orjson
import polars as pl
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

import records
from api._access import GUARDED_RESPONSES, Guard, guard
from api._schemas import (
    AlertLogEntry,
    AlertLogOut,
    AlertsOut,
    AuditOut,
    AuditRecordOut,
    ChainProblemOut,
    DecisionIn,
    ReleaseIn,
    ReleaseOut,
    VerifyOut,
)
from matchers.reads import normalise_plate
from sinks import AlertBus, ReadStore, SinksError, parse_stream_id

__all__ = ["router"]

router = APIRouter()

_COVERT = "hotlists:view_covert"
_DEFAULT_WINDOW = timedelta(days=7)
#: A release request id: bounded so a huge number is a 422, not a database overflow.
RequestId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The release request id.")]


def _window(g: Guard, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise g.deny(422, f"{name} has no UTC offset; append Z or +hh:mm", "invalid", name)
    stop = end or datetime.now(timezone.utc)
    begin = start or stop - _DEFAULT_WINDOW
    if begin >= stop:
        raise g.deny(422, "start must be before end", "invalid", "start")
    return begin, stop


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


# -- alerts -------------------------------------------------------------------------------------


@router.get(
    "/v1/alerts",
    tags=["alerts"],
    response_model=AlertsOut,
    responses=GUARDED_RESPONSES,
    summary="Alert history",
    description="Stored alerts whose read time is in [start, end) (default: the last 7 days), "
    "newest first, filtered by plate, hotlist, match kind or camera.",
)
def alert_history(
    *,
    start: Annotated[datetime | None, Query(description="RFC 3339, inclusive.")] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339, exclusive; default now.")] = None,
    plate: Annotated[
        str | None, Query(max_length=32, description="Read plate (normalised).")
    ] = None,
    hotlist: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(pattern="^(exact|ocr|fuzzy|partial)$")] = None,
    camera_id: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    g: Annotated[Guard, Depends(guard("alerts.history", "alerts:view"))],
) -> AlertsOut:
    begin, stop = _window(g, start, end)
    covert = g.can(_COVERT)

    def run(access: records.AuditedAccess) -> AlertsOut:
        store = ReadStore(g.settings.data_dir, g.settings.retention_days)
        frame = store.scan_alerts(begin, stop)
        if plate:
            frame = frame.filter(pl.col("plate") == normalise_plate(plate))
        if hotlist:
            frame = frame.filter(pl.col("hotlist") == hotlist)
        if kind:
            frame = frame.filter(pl.col("kind") == kind)
        if camera_id:
            frame = frame.filter(pl.col("camera_id") == camera_id)
        if not covert:
            frame = frame.filter(~pl.col("covert").fill_null(False))
        found = frame.sort("ts", descending=True).head(limit).select("alert").collect()
        alerts = [orjson.loads(text) for text in found["alert"].to_list()]
        access.result_count = len(alerts)
        return AlertsOut(count=len(alerts), alerts=alerts)

    terms = {
        "start": begin.isoformat(),
        "end": stop.isoformat(),
        "plate": plate,
        "hotlist": hotlist,
        "kind": kind,
        "camera_id": camera_id,
        "covert_visible": covert,
    }
    return g.read(run, terms=terms)


@router.get(
    "/v1/alerts/log",
    tags=["alerts"],
    response_model=AlertLogOut,
    responses=GUARDED_RESPONSES,
    summary="Recent alerts from the replay log",
    description="Alerts logged after stream id `after`, oldest first: what a console missed "
    "while disconnected. `covert=true` reads the covert log (roles allowed only).",
)
def alert_log(
    *,
    request: Request,
    after: Annotated[str, Query(max_length=42)] = "0-0",
    count: Annotated[int, Query(ge=1, le=10_000)] = 100,
    covert: Annotated[bool, Query()] = False,
    g: Annotated[Guard, Depends(guard("alerts.log", "alerts:view"))],
) -> AlertLogOut:
    try:
        parse_stream_id(after)
    except SinksError as exc:
        raise g.deny(
            422, f"after {after!r} is not a stream id like 1764331200000-0", "invalid", "after"
        ) from exc
    if covert and not g.can(_COVERT):
        raise g.deny(
            403,
            f"user {g.user.username!r} may not see covert alerts (needs {_COVERT!r})",
            "forbidden",
        )

    def run(access: records.AuditedAccess) -> AlertLogOut:
        entries = AlertBus(request.app.state.redis).replay(after, count, covert=covert)
        access.result_count = len(entries)
        return AlertLogOut(
            alerts=[AlertLogEntry(id=i, alert=a) for i, a in entries],
            last_id=entries[-1][0] if entries else None,
        )

    return g.read(run, terms={"after": after, "count": count, "covert": covert})


# -- releases -----------------------------------------------------------------------------------

_REL: dict[str, Any] = {"tags": ["releases"], "responses": GUARDED_RESPONSES}


@router.post(
    "/v1/releases",
    status_code=201,
    response_model=ReleaseOut,
    summary="Record a written release request (427.7)",
    **_REL,
)
def create_release(
    *,
    body: ReleaseIn,
    g: Annotated[Guard, Depends(guard("releases.request", "releases:request", kind="release"))],
) -> ReleaseOut:
    made = g.write(
        lambda: records.create_release_request(
            g.engine,
            requesting_agency=body.requesting_agency,
            law_enforcement=body.law_enforcement,
            requester=body.requester,
            purpose=body.purpose,
            by=g.user.username,
            case_number=body.case_number,
            terms=body.terms,
            client=g.client,
        ),
        terms={"agency": body.requesting_agency, "requester": body.requester},
    )
    return ReleaseOut.of(made)


@router.get(
    "/v1/releases",
    response_model=list[ReleaseOut],
    summary="Release requests and their decisions",
    **_REL,
)
def list_releases(
    *,
    start: Annotated[datetime | None, Query(description="Created at or after (RFC 3339).")] = None,
    end: Annotated[datetime | None, Query(description="Created before (RFC 3339).")] = None,
    g: Annotated[Guard, Depends(guard("releases.list", "releases:view", kind="release"))],
) -> list[ReleaseOut]:
    found = g.read_all(
        lambda: records.list_releases(g.engine, start_ms=_ms(start), end_ms=_ms(end))
    )
    return [ReleaseOut.of(r) for r in found]


@router.get(
    "/v1/releases/{request_id}", response_model=ReleaseOut, summary="One release request", **_REL
)
def get_release(
    *,
    request_id: RequestId,
    g: Annotated[Guard, Depends(guard("releases.view", "releases:view", kind="release"))],
) -> ReleaseOut:
    def run(access: records.AuditedAccess) -> records.ReleaseRequest:
        found = records.get_release(g.engine, request_id)
        access.result_count = 1
        return found

    return ReleaseOut.of(g.read(run, terms={"request": request_id}))


@router.post(
    "/v1/releases/{request_id}/decision",
    response_model=ReleaseOut,
    summary="Approve or deny (Records Supervisor)",
    **_REL,
)
def decide_release(
    *,
    request_id: RequestId,
    body: DecisionIn,
    g: Annotated[Guard, Depends(guard("releases.decide", "releases:decide", kind="release"))],
) -> ReleaseOut:
    decided = g.write(
        lambda: records.decide_release(
            g.engine,
            request_id,
            approve=body.approve,
            reason=body.reason,
            by=g.user.username,
            client=g.client,
        ),
        terms={"request": request_id, "approve": body.approve},
    )
    return ReleaseOut.of(decided)


# -- audit --------------------------------------------------------------------------------------

_AUDIT: dict[str, Any] = {"tags": ["audit"], "responses": GUARDED_RESPONSES}


@router.get(
    "/v1/audit",
    response_model=AuditOut,
    summary="Read the audit log",
    description="Records in sequence order, filtered by time, user and kind.",
    **_AUDIT,
)
def read_audit(
    *,
    start: Annotated[datetime | None, Query(description="RFC 3339, inclusive.")] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339, exclusive.")] = None,
    username: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[
        str | None, Query(pattern="^(inquiry|login|admin|hotlist|release|alert|retention)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    g: Annotated[Guard, Depends(guard("audit.read", "audit:view"))],
) -> AuditOut:
    found = g.read_all(
        lambda: records.read_audit(
            g.engine,
            start_ms=_ms(start),
            end_ms=_ms(end),
            username=username,
            kind=kind,
            limit=limit,
        )
    )
    return AuditOut(count=len(found), records=[AuditRecordOut.of(r) for r in found])


@router.get(
    "/v1/audit/verify",
    response_model=VerifyOut,
    summary="Verify the hash chain of the audit log",
    description="Finds every edited, inserted and deleted record.",
    **_AUDIT,
)
def verify_audit(*, g: Annotated[Guard, Depends(guard("audit.verify", "audit:view"))]) -> VerifyOut:
    def run(access: records.AuditedAccess) -> records.VerifyResult:
        result = records.verify_chain(g.engine)
        access.result_count = result.records
        return result

    result = g.read(run)
    return VerifyOut(
        ok=result.ok,
        records=result.records,
        head_seq=result.head_seq,
        head_hash=result.head_hash,
        description=result.describe(),
        problems=[
            ChainProblemOut(seq=p.seq, kind=p.kind, detail=p.detail) for p in result.problems
        ],
    )


@router.get(
    "/v1/audit/report",
    tags=["audit"],
    # The default (JSON) response class keeps the refusals documented as JSON; the report
    # itself is HTML or CSV, declared here.
    response_class=Response,
    responses={
        **GUARDED_RESPONSES,
        200: {
            "description": "The report as HTML (charts) or CSV.",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
    },
    summary="Quarterly audit report (427.5(c))",
    description="Inquiries per user and purpose, denied attempts, users without current "
    "training, hotlist changes, releases, purges, alert dispositions and the chain check.",
)
def audit_report(
    *,
    quarter: Annotated[
        str | None, Query(pattern=r"^[12]\d{3}-?[Qq][1-4]$", examples=["2026Q4"])
    ] = None,
    start: Annotated[
        datetime | None, Query(description="Instead of a quarter: RFC 3339 start.")
    ] = None,
    end: Annotated[
        datetime | None, Query(description="Instead of a quarter: RFC 3339 end.")
    ] = None,
    format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
    g: Annotated[Guard, Depends(guard("audit.report", "audit:view"))],
) -> Response:
    if start is not None and end is not None:
        start, end = _window(g, start, end)
    elif quarter is None:
        raise g.deny(422, "give quarter (like 2026Q4), or both start and end", "invalid", "quarter")

    def run(access: records.AuditedAccess) -> records.Report:
        report = records.audit_report(g.engine, quarter, start_ms=_ms(start), end_ms=_ms(end))
        access.result_count = report.inquiries
        return report

    report = g.read(run, terms={"quarter": quarter, "format": format})
    if format == "csv":
        name = f"audit-{report.label}.csv"
        return Response(
            report.csv(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return HTMLResponse(report.html())
