"""Alert history, release requests (427.7) and the audit log and report (427.5).

Alert history is read from the Parquet alert store (:meth:`sinks.ReadStore.scan_alerts`) and
the recent alerts from the capped Redis alert log (:meth:`sinks.AlertBus.replay`); covert
alerts only reach roles holding ``hotlists:view_covert``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import HTMLResponse

import service
from api._access import Guard, guard, guarded_router
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
from service import Acts

__all__ = ["router"]

_alerts = guarded_router("alerts")
_releases = guarded_router("releases")
_audit = guarded_router("audit")

#: A release request id: bounded so a huge number is a 422, not a database overflow.
RequestId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The release request id.")]


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


# -- alerts -------------------------------------------------------------------------------------


_Plate = Annotated[str | None, Query(max_length=32, description="Read plate (normalised).")]


@dataclass
class _AlertFilters:
    """The alert history's query parameters (a FastAPI dependency), named as the act's
    keywords."""

    start: Annotated[datetime | None, Query(description="RFC 3339, inclusive.")] = None
    end: Annotated[datetime | None, Query(description="RFC 3339, exclusive; default now.")] = None
    plate: _Plate = None
    hotlist: Annotated[str | None, Query(max_length=64)] = None
    kind: Annotated[str | None, Query(pattern="^(exact|ocr|fuzzy|partial)$")] = None
    camera_id: Annotated[str | None, Query(max_length=256)] = None
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100


@_alerts.get(
    "/v1/alerts",
    response_model=AlertsOut,
    summary="Alert history",
    description="Stored alerts whose read time is in [start, end) (default: the last 7 days), "
    "newest first, filtered by plate, hotlist, match kind or camera.",
)
def alert_history(
    *,
    f: Annotated[_AlertFilters, Depends()],
    g: Annotated[Guard, Depends(guard(Acts.ALERT_HISTORY))],
) -> AlertsOut:
    alerts = service.alert_history(g.door, g.actor, **vars(f))
    return AlertsOut(count=len(alerts), alerts=alerts)


@_alerts.get(
    "/v1/alerts/log",
    response_model=AlertLogOut,
    summary="Recent alerts from the replay log",
    description="Alerts logged after stream id `after`, oldest first: what a console missed "
    "while disconnected. `covert=true` reads the covert log (roles allowed only).",
)
def alert_log(
    *,
    after: Annotated[str, Query(max_length=42)] = "0-0",
    count: Annotated[int, Query(ge=1, le=10_000)] = 100,
    covert: Annotated[bool, Query()] = False,
    g: Annotated[Guard, Depends(guard(Acts.ALERT_LOG))],
) -> AlertLogOut:
    entries = service.alert_log(g.door, g.actor, after=after, count=count, covert=covert)
    return AlertLogOut(
        alerts=[AlertLogEntry(id=i, alert=a) for i, a in entries],
        last_id=entries[-1][0] if entries else None,
    )


# -- releases -----------------------------------------------------------------------------------


@_releases.post(
    "/v1/releases",
    status_code=201,
    response_model=ReleaseOut,
    summary="Record a written release request (427.7)",
)
def create_release(
    *,
    body: ReleaseIn,
    g: Annotated[Guard, Depends(guard(Acts.RELEASE_REQUEST))],
) -> ReleaseOut:
    return ReleaseOut.of(service.request_release(g.door, g.actor, **body.args()))


@_releases.get(
    "/v1/releases", response_model=list[ReleaseOut], summary="Release requests and their decisions"
)
def list_releases(
    *,
    start: Annotated[datetime | None, Query(description="Created at or after (RFC 3339).")] = None,
    end: Annotated[datetime | None, Query(description="Created before (RFC 3339).")] = None,
    g: Annotated[Guard, Depends(guard(Acts.RELEASE_LIST))],
) -> list[ReleaseOut]:
    found = service.list_releases(g.door, g.actor, start_ms=_ms(start), end_ms=_ms(end))
    return [ReleaseOut.of(r) for r in found]


@_releases.get(
    "/v1/releases/{request_id}", response_model=ReleaseOut, summary="One release request"
)
def get_release(
    *,
    request_id: RequestId,
    g: Annotated[Guard, Depends(guard(Acts.RELEASE_VIEW))],
) -> ReleaseOut:
    return ReleaseOut.of(service.get_release(g.door, g.actor, request_id))


@_releases.post(
    "/v1/releases/{request_id}/decision",
    response_model=ReleaseOut,
    summary="Approve or deny (Records Supervisor)",
)
def decide_release(
    *,
    request_id: RequestId,
    body: DecisionIn,
    g: Annotated[Guard, Depends(guard(Acts.RELEASE_DECIDE))],
) -> ReleaseOut:
    decided = service.decide_release(
        g.door, g.actor, request_id, approve=body.approve, reason=body.reason
    )
    return ReleaseOut.of(decided)


# -- audit --------------------------------------------------------------------------------------


@_audit.get(
    "/v1/audit",
    response_model=AuditOut,
    summary="Read the audit log",
    description="Records in sequence order, filtered by time, user and kind.",
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
    g: Annotated[Guard, Depends(guard(Acts.AUDIT_READ))],
) -> AuditOut:
    found = service.read_audit(
        g.door,
        g.actor,
        start_ms=_ms(start),
        end_ms=_ms(end),
        username=username,
        kind=kind,
        limit=limit,
    )
    return AuditOut(count=len(found), records=[AuditRecordOut.of(r) for r in found])


@_audit.get(
    "/v1/audit/verify",
    response_model=VerifyOut,
    summary="Verify the hash chain and the signatures of the audit log",
    description="Finds every edited, inserted, deleted and forged (written without the audit "
    "key) record, and names the first bad one.",
)
def verify_audit(*, g: Annotated[Guard, Depends(guard(Acts.AUDIT_VERIFY))]) -> VerifyOut:
    result = service.verify_audit(g.door, g.actor)
    return VerifyOut.of(
        result,
        description=result.describe(),
        problems=[ChainProblemOut.of(p) for p in result.problems],
    )


@_audit.get(
    "/v1/audit/report",
    # The default (JSON) response class keeps the refusals documented as JSON; the report
    # itself is HTML or CSV, declared here.
    response_class=Response,
    responses={
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
    g: Annotated[Guard, Depends(guard(Acts.AUDIT_REPORT))],
) -> Response:
    report = service.audit_report(
        g.door, g.actor, quarter=quarter, start=start, end=end, output=format
    )
    if format == "csv":
        name = f"audit-{report.label}.csv"
        return Response(
            report.csv(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return HTMLResponse(report.html())


router = APIRouter()
for _part in (_alerts, _releases, _audit):
    router.include_router(_part)
