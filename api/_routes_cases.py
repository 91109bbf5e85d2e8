"""Legal holds, evidence exports and release fulfilment (policy 427.4, 427.7).

Placing and releasing a hold needs ``retention:hold``; exporting, verifying and fetching
evidence ``evidence:export``; fulfilling an approved release request ``releases:decide`` and
``evidence:export``. Each is one justified, audited act (kind ``retention`` or ``release``).
Exports live in ``{data_dir}/evidence/{export_id}``; fetching a file appends a ``downloaded``
record to the export's chain of custody.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse

import records
from api._access import GUARDED_RESPONSES, Guard, guard
from api._errors import sinks_status
from api._routes_records import RequestId
from api._routes_store import audited_read, canvass_spec, checked, store_of
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
from api._store_cases import (
    export_case,
    export_dir,
    new_export_id,
    place_hold,
    release_case,
    release_summary,
)
from api._store_query import COVERT_PERMISSION, SearchSpec, StoreQueryError, utc_window
from sinks import LegalHold, SinksError, record_custody, verify_evidence

__all__ = ["router"]

router = APIRouter()

_HOLD = "retention:hold"
_EXPORT = "evidence:export"
_CASE = Annotated[str, Path(min_length=1, max_length=64, description="The held case number.")]
_EXPORT_ID = Annotated[str, Path(min_length=1, max_length=128, description="From the export.")]
_FIXED_FILES = ("manifest.json", "chain_of_custody.jsonl")


def _hold_spec(body: HoldIn) -> SearchSpec | None:
    given = [q for q in (body.plate, body.partial, body.canvass, body.read_ids) if q is not None]
    if len(given) != 1:
        raise StoreQueryError("give exactly one of plate, partial, canvass, read_ids", "plate")
    if body.plate is not None:
        q = body.plate
        return SearchSpec.plate_history(
            q.plate,
            *utc_window(q.start, q.end),
            match=q.match,
            candidates=q.candidates,
            state=q.state,
            cameras=q.cameras,
        )
    if body.partial is not None:
        p = body.partial
        return SearchSpec.partial(
            p.pattern,
            *utc_window(p.start, p.end),
            ocr_equivalents=p.ocr_equivalents,
            candidates=p.candidates,
            state=p.state,
            cameras=p.cameras,
        )
    if body.canvass is not None:
        return canvass_spec(body.canvass)
    return None


@router.post(
    "/v1/holds",
    status_code=201,
    response_model=HoldOut,
    tags=["holds"],
    responses=GUARDED_RESPONSES,
    summary="Place a legal hold (427.4)",
    description="Hold the result of one search (or read ids) under the inquiry's case number: "
    "the reads and their alerts survive every purge until the hold is released. Placing again "
    "for the same case adds reads.",
)
def place(
    *,
    body: HoldIn,
    g: Annotated[Guard, Depends(guard("holds.place", _HOLD, kind="retention"))],
) -> HoldOut:
    case = (g.why.case_number or "").strip()
    if not case:
        raise g.deny(422, "a legal hold needs a case_number", "invalid", "case_number")
    spec = checked(g, lambda: _hold_spec(body))
    at = datetime.now(timezone.utc)
    terms: dict[str, Any] = {"case": case, "reason": body.reason}
    terms["query"] = spec.terms() if spec else {"read_ids": len(body.read_ids or ())}

    def run(access: records.AuditedAccess) -> LegalHold:
        hold = place_hold(
            store_of(g),
            case,
            by=g.user.username,
            at=at,
            reason=body.reason,
            spec=spec,
            read_ids=body.read_ids,
            ocr_classes=g.settings.ocr_classes,
        )
        access.result_count = int(hold.placements[-1].get("reads", hold.reads))
        access.terms["held_total"] = hold.reads
        return hold

    return HoldOut.of(audited_read(g, run, terms))


@router.get(
    "/v1/holds",
    response_model=list[HoldOut],
    tags=["holds"],
    responses=GUARDED_RESPONSES,
    summary="Legal holds",
)
def list_holds(
    *,
    include_released: Annotated[bool, Query(description="Also released holds.")] = False,
    g: Annotated[Guard, Depends(guard("holds.list", (_HOLD, _EXPORT), kind="retention"))],
) -> list[HoldOut]:
    def run(access: records.AuditedAccess) -> list[LegalHold]:
        found = store_of(g).holds(include_released)
        access.result_count = len(found)
        return found

    return [HoldOut.of(h) for h in audited_read(g, run, {"include_released": include_released})]


@router.post(
    "/v1/holds/{case}/release",
    response_model=HoldOut,
    tags=["holds"],
    responses=GUARDED_RESPONSES,
    summary="Release a legal hold",
    description="The case's partitions return to normal retention and its held copy is "
    "deleted; the hold record keeps who released it, when and why.",
)
def release(
    *,
    case: _CASE,
    body: HoldReleaseIn,
    g: Annotated[Guard, Depends(guard("holds.release", _HOLD, kind="retention"))],
) -> HoldOut:
    def run(access: records.AuditedAccess) -> LegalHold:
        try:
            hold = store_of(g).release_hold(
                case, by=g.user.username, at=datetime.now(timezone.utc), reason=body.reason
            )
        except SinksError as exc:
            raise StoreQueryError(str(exc), "case", status=sinks_status(exc)) from exc
        access.result_count = hold.reads
        return hold

    return HoldOut.of(audited_read(g, run, {"case": case, "reason": body.reason}))


def _export(
    g: Guard,
    access: records.AuditedAccess,
    case: str,
    export_id: str,
    at: datetime,
    *,
    purpose: str,
    release: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the case's held reads under the caller's name and covert rights; the audit
    record counts the reads exported. Returns the manifest."""
    manifest = export_case(
        store_of(g),
        case,
        export_dir(g.settings.data_dir, export_id),
        by=g.user.username,
        at=at,
        export_id=export_id,
        covert_allowed=g.can(COVERT_PERMISSION),
        purpose=purpose,
        release=release,
    )
    access.result_count = int(manifest["counts"]["reads"])
    return manifest


def _export_out(export_id: str, case: str, manifest: dict[str, Any]) -> ExportOut:
    names = [entry["name"] for entry in manifest["files"]]
    return ExportOut(
        export_id=export_id, case_number=case, manifest=manifest, files=[*names, *_FIXED_FILES]
    )


@router.post(
    "/v1/evidence/exports",
    status_code=201,
    response_model=ExportOut,
    tags=["evidence"],
    responses=GUARDED_RESPONSES,
    summary="Export a case's held reads as evidence (427.4)",
    description="Held reads (Parquet and CSV), their alerts, the hold, a manifest with the "
    "SHA-256 of every file, and a chain-of-custody record; fetch the files for portable media.",
)
def export(
    *,
    body: ExportIn,
    g: Annotated[Guard, Depends(guard("evidence.export", _EXPORT, kind="retention"))],
) -> ExportOut:
    case = (body.case_number or g.why.case_number or "").strip()
    if not case:
        raise g.deny(422, "give the case_number of the legal hold to export", "invalid", "case")
    at = datetime.now(timezone.utc)
    export_id = new_export_id(case, at)

    def run(access: records.AuditedAccess) -> dict[str, Any]:
        return _export(g, access, case, export_id, at, purpose=body.purpose)

    manifest = audited_read(g, run, {"case": case, "export_id": export_id})
    return _export_out(export_id, case, manifest)


@router.get(
    "/v1/evidence/exports/{export_id}/verify",
    response_model=VerifyEvidenceOut,
    tags=["evidence"],
    responses=GUARDED_RESPONSES,
    summary="Verify an evidence export",
    description="Every file against the manifest's size and SHA-256, no file missing or "
    "added, and the chain of custody intact; `ok=false` names each problem.",
)
def verify(
    *,
    export_id: _EXPORT_ID,
    g: Annotated[Guard, Depends(guard("evidence.verify", _EXPORT, kind="retention"))],
) -> VerifyEvidenceOut:
    directory = checked(g, lambda: export_dir(g.settings.data_dir, export_id))
    if not directory.is_dir():
        raise g.deny(404, f"no evidence export {export_id!r}", "not_found", "export_id")

    def run(access: records.AuditedAccess) -> VerifyEvidenceOut:
        try:
            summary = verify_evidence(directory)
        except SinksError as exc:
            access.result_count = 0
            access.terms["ok"] = False
            return VerifyEvidenceOut(export_id=export_id, ok=False, summary=None, problems=str(exc))
        access.result_count = int(summary["files"])
        access.terms["ok"] = True
        return VerifyEvidenceOut(export_id=export_id, ok=True, summary=summary, problems=None)

    return audited_read(g, run, {"export_id": export_id})


@router.get(
    "/v1/evidence/exports/{export_id}/files/{name}",
    tags=["evidence"],
    response_class=FileResponse,
    responses={
        **GUARDED_RESPONSES,
        200: {"description": "The file, as exported.", "content": {"application/octet-stream": {}}},
    },
    summary="Fetch one file of an evidence export",
    description="Recorded in the export's chain of custody as `downloaded`.",
)
def download(
    *,
    export_id: _EXPORT_ID,
    name: Annotated[str, Path(min_length=1, max_length=64)],
    g: Annotated[Guard, Depends(guard("evidence.download", _EXPORT, kind="retention"))],
) -> FileResponse:
    directory = checked(g, lambda: export_dir(g.settings.data_dir, export_id))
    manifest = directory / "manifest.json"
    listed: set[str] = set()
    if manifest.exists():
        listed = {f["name"] for f in orjson.loads(manifest.read_bytes()).get("files", [])}
    if name not in listed and not (manifest.exists() and name in _FIXED_FILES):
        raise g.deny(404, f"export {export_id!r} has no file {name!r}", "not_found", "name")

    def run(access: records.AuditedAccess) -> None:
        record_custody(
            directory, "downloaded", g.user.username, note=f"{name} by {g.client or 'unknown'}"
        )
        access.result_count = 1

    audited_read(g, run, {"export_id": export_id, "file": name})
    return FileResponse(directory / name, filename=name, media_type="application/octet-stream")


@router.post(
    "/v1/releases/{request_id}/export",
    response_model=ReleaseExportOut,
    tags=["releases"],
    responses=GUARDED_RESPONSES,
    summary="Fulfil an approved release request with an evidence export (427.7)",
    description="Exports the held reads of the request's case (or `case_number`) with the "
    "release in the manifest and the custody chain, then links the export to the request. "
    "A request that is not approved, or is from a non-law-enforcement agency, is refused.",
)
def release_export(
    *,
    request_id: RequestId,
    body: ReleaseExportIn,
    g: Annotated[Guard, Depends(guard("releases.export", "releases:decide", kind="release"))],
) -> ReleaseExportOut:
    if not g.can(_EXPORT):
        raise g.deny(
            403, f"user {g.user.username!r} may not {_EXPORT!r} (427.4)", "forbidden", None
        )
    at = datetime.now(timezone.utc)
    done: dict[str, Any] = {}

    def run(access: records.AuditedAccess) -> dict[str, Any]:
        request = records.get_release(g.engine, request_id)
        case = release_case(request, body.case_number or g.why.case_number)
        export_id = new_export_id(case, at)
        access.terms |= {"case": case, "export_id": export_id}
        done.update(case=case, export_id=export_id)
        release = release_summary(request)
        return _export(g, access, case, export_id, at, purpose=request.purpose, release=release)

    manifest = audited_read(g, run, {"request": request_id})
    fulfilled = records.fulfil_release(
        g.engine,
        request_id,
        export_id=done["export_id"],
        by=g.user.username,
        note=body.note,
        client=g.client,
    )
    return ReleaseExportOut(
        release=ReleaseOut.of(fulfilled),
        export=_export_out(done["export_id"], done["case"], manifest),
    )
