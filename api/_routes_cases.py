"""Legal holds, evidence exports and release fulfilment (policy 427.4, 427.7).

Placing and releasing a hold needs ``retention:hold``; exporting, verifying and fetching
evidence ``evidence:export``; fulfilling an approved release request ``releases:decide`` and
``evidence:export``. Each is one justified, audited act (kind ``retention`` or ``release``).
Exports live in ``{data_dir}/evidence/{export_id}``; fetching a file appends a ``downloaded``
record to the export's chain of custody.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse

import service
from api._access import Guard, guard, guarded_router
from api._routes_records import RequestId
from api._routes_store import canvass_spec
from api._schemas import ReleaseOut
from api._schemas_store import (
    ExportIn,
    ExportOut,
    HoldIn,
    HoldOut,
    HoldReleaseIn,
    ReleaseExportIn,
    ReleaseExportOut,
    VerifyEvidenceOut,
)
from service import Acts, Invalid, SearchSpec, utc_window

__all__ = ["router"]

_holds = guarded_router("holds")
_evidence = guarded_router("evidence")
_releases = guarded_router("releases")

_CASE = Annotated[str, Path(min_length=1, max_length=64, description="The held case number.")]
_EXPORT_ID = Annotated[str, Path(min_length=1, max_length=128, description="From the export.")]


def _hold_spec(body: HoldIn) -> SearchSpec | None:
    given = [q for q in (body.plate, body.partial, body.canvass, body.read_ids) if q is not None]
    if len(given) != 1:
        raise Invalid("give exactly one of plate, partial, canvass, read_ids", "plate")
    for kind, terms in (("plate", body.plate), ("partial", body.partial)):
        if terms is not None:
            return SearchSpec.of_terms(kind, terms, *utc_window(terms.start, terms.end))
    if body.canvass is not None:
        return canvass_spec(body.canvass)
    return None


@_holds.post(
    "/v1/holds",
    status_code=201,
    response_model=HoldOut,
    summary="Place a legal hold (427.4)",
    description="Hold the result of one search (or read ids) under the inquiry's case number: "
    "the reads and their alerts survive every purge until the hold is released. Placing again "
    "for the same case adds reads.",
)
def place(*, body: HoldIn, g: Annotated[Guard, Depends(guard(Acts.HOLD_PLACE))]) -> HoldOut:
    hold = service.place_hold(
        g.door, g.actor, reason=body.reason, build=lambda: _hold_spec(body), read_ids=body.read_ids
    )
    return HoldOut.of(hold)


@_holds.get("/v1/holds", response_model=list[HoldOut], summary="Legal holds")
def list_holds(
    *,
    include_released: Annotated[bool, Query(description="Also released holds.")] = False,
    g: Annotated[Guard, Depends(guard(Acts.HOLD_LIST))],
) -> list[HoldOut]:
    found = service.list_holds(g.door, g.actor, include_released=include_released)
    return [HoldOut.of(h) for h in found]


@_holds.post(
    "/v1/holds/{case}/release",
    response_model=HoldOut,
    summary="Release a legal hold",
    description="The case's partitions return to normal retention and its held copy is "
    "deleted; the hold record keeps who released it, when and why.",
)
def release(
    *,
    case: _CASE,
    body: HoldReleaseIn,
    g: Annotated[Guard, Depends(guard(Acts.HOLD_RELEASE))],
) -> HoldOut:
    return HoldOut.of(service.release_hold(g.door, g.actor, case, reason=body.reason))


@_evidence.post(
    "/v1/evidence/exports",
    status_code=201,
    response_model=ExportOut,
    summary="Export a case's held reads as evidence (427.4)",
    description="Held reads (Parquet and CSV), their alerts, the hold, a manifest with the "
    "SHA-256 of every file, and a chain-of-custody record; fetch the files for portable media.",
)
def export(
    *, body: ExportIn, g: Annotated[Guard, Depends(guard(Acts.EVIDENCE_EXPORT))]
) -> ExportOut:
    made = service.export_evidence(g.door, g.actor, body.case_number, purpose=body.purpose)
    return ExportOut.of(made)


@_evidence.get(
    "/v1/evidence/exports/{export_id}/verify",
    response_model=VerifyEvidenceOut,
    summary="Verify an evidence export",
    description="Every file against the manifest's size and SHA-256, no file missing or "
    "added, and the chain of custody intact; `ok=false` names each problem.",
)
def verify(
    *,
    export_id: _EXPORT_ID,
    g: Annotated[Guard, Depends(guard(Acts.EVIDENCE_VERIFY))],
) -> VerifyEvidenceOut:
    found = service.verify_export(g.door, g.actor, export_id)
    return VerifyEvidenceOut(
        export_id=export_id, ok=found.ok, summary=found.summary, problems=found.problems
    )


@_evidence.get(
    "/v1/evidence/exports/{export_id}/files/{name}",
    response_class=FileResponse,
    responses={
        200: {"description": "The file, as exported.", "content": {"application/octet-stream": {}}}
    },
    summary="Fetch one file of an evidence export",
    description="Recorded in the export's chain of custody as `downloaded`.",
)
def download(
    *,
    export_id: _EXPORT_ID,
    name: Annotated[str, Path(min_length=1, max_length=64)],
    g: Annotated[Guard, Depends(guard(Acts.EVIDENCE_DOWNLOAD))],
) -> FileResponse:
    path = service.evidence_file(g.door, g.actor, export_id, name)
    return FileResponse(path, filename=name, media_type="application/octet-stream")


@_releases.post(
    "/v1/releases/{request_id}/export",
    response_model=ReleaseExportOut,
    summary="Fulfil an approved release request with an evidence export (427.7)",
    description="Exports the held reads of exactly the request's case, with the release in "
    "the manifest and the custody chain, then links the export to the request. A request that "
    "is not approved, is from a non-law-enforcement agency, names no case, asks for reads the "
    "hold does not hold, or a `case_number` (body or justification) other than the request's, "
    "is refused with 409.",
)
def release_export(
    *,
    request_id: RequestId,
    body: ReleaseExportIn,
    g: Annotated[Guard, Depends(guard(Acts.RELEASE_EXPORT))],
) -> ReleaseExportOut:
    done = service.fulfil_release(
        g.door, g.actor, request_id, case_number=body.case_number, note=body.note
    )
    return ReleaseExportOut(release=ReleaseOut.of(done.release), export=ExportOut.of(done.export))


router = APIRouter()
for _part in (_holds, _evidence, _releases):
    router.include_router(_part)
