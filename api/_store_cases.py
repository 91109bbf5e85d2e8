"""Legal holds, evidence exports and release fulfilment (427.4, 427.7), for the API and the CLI.

A hold ties a case number to the result of a search (or to read ids) through
:meth:`sinks.ReadStore.place_hold`; held reads survive every purge. An export writes a case's
held reads with :meth:`sinks.ReadStore.export_evidence` into a staging directory beside the
target and renames it into place only once it is complete and allowed, so a half-written or
refused export never looks like evidence. The export id names the export in the audit log, the
custody chain and, for a release, in :func:`records.fulfil_release`.

Covert-list alerts (427.6): the store's export copies every alert of the held reads. An export
by a role without ``hotlists:view_covert`` whose alerts include covert ones is refused, not
trimmed, because trimming would change what the legal hold preserved.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import records
from api._errors import sinks_status
from api._store_query import SearchSpec, StoreQueryError
from matchers import DEFAULT_OCR_CLASSES
from sinks import LegalHold, ReadStore, SinksError, record_custody

__all__ = [
    "EVIDENCE_DIR",
    "export_case",
    "export_dir",
    "new_export_id",
    "place_hold",
    "release_case",
    "release_summary",
]

#: Exports made through the API go to ``{data_dir}/evidence/{export_id}``.
EVIDENCE_DIR = "evidence"
_EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_export_id(case_number: str, at: datetime) -> str:
    """``{case}-{UTC time}-{8 hex}``: readable, unique, and a safe directory name."""
    case = _UNSAFE.sub("_", case_number).strip("._-")[:60] or "case"
    stamp = at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{case}-{stamp}-{uuid.uuid4().hex[:8]}"


def export_dir(data_dir: Path, export_id: str) -> Path:
    """Where the API keeps export ``export_id``; refuses ids that are not plain names."""
    if not _EXPORT_ID.match(export_id) or ".." in export_id:
        msg = f"export id {export_id!r} is not one plateflow made"
        raise StoreQueryError(msg, "export_id", status=404)
    return Path(data_dir) / EVIDENCE_DIR / export_id


def place_hold(
    store: ReadStore,
    case_number: str,
    *,
    by: str,
    at: datetime,
    reason: str,
    spec: SearchSpec | None = None,
    read_ids: Sequence[str] | None = None,
    ocr_classes: Sequence[str] | None = None,
) -> LegalHold:
    """Hold the result of ``spec``, or the reads ``read_ids`` (looked up over the whole
    store), under ``case_number``; placing again adds reads. Raises :class:`StoreQueryError`:
    404 when the query finds nothing, 409 when the case's hold was released (a case number is
    held once)."""
    if not reason.strip():
        raise StoreQueryError("a legal hold needs a reason (e.g. homicide investigation)", "reason")
    try:
        if spec is not None:
            pages = spec.pages(
                store, page_size=10_000, ocr_classes=ocr_classes or DEFAULT_OCR_CLASSES
            )
            if pages.count() == 0:
                raise StoreQueryError(
                    f"case {case_number}: the query found no reads to hold", status=404
                )
            return store.place_hold(
                case_number, pages, by=by, at=at, query=spec.terms(), reason=reason
            )
        ids = sorted({i.strip() for i in read_ids or () if i.strip()})
        if not ids:
            raise StoreQueryError("give a search or read ids to hold", "read_ids")
        return store.place_hold(
            case_number,
            ids,
            by=by,
            at=at,
            query={"search": "read_ids", "read_ids": ids},
            reason=reason,
        )
    except SinksError as exc:
        field = exc.field or "case_number"
        raise StoreQueryError(str(exc), field, status=sinks_status(exc)) from exc


def _covert_alerts(path: Path) -> int:
    if not path.exists():
        return 0
    table = pq.read_table(path, columns=["covert"])
    return int(sum(1 for flag in table.column("covert").to_pylist() if flag))


def export_case(
    store: ReadStore,
    case_number: str,
    out_dir: Path,
    *,
    by: str,
    at: datetime,
    export_id: str,
    covert_allowed: bool,
    purpose: str = "",
    release: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the held reads of ``case_number`` to ``out_dir`` (must not exist or be empty)
    and return the manifest. The custody chain gets the export id (and, for a release, the
    hand-over). Raises :class:`StoreQueryError`: 409 without an active hold or for a used
    directory, 403 for covert alerts the exporter may not see."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        msg = f"{out} is not an empty directory; export to a new one"
        raise StoreQueryError(msg, "out", status=409)
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.staging")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        manifest = store.export_evidence(
            case_number, staging, by, at=at, purpose=purpose, release=release
        )
    except SinksError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        field = exc.field or "case_number"
        raise StoreQueryError(str(exc), field, status=sinks_status(exc)) from exc
    covert = _covert_alerts(staging / "alerts.parquet")
    if covert and not covert_allowed:
        shutil.rmtree(staging, ignore_errors=True)
        msg = (
            f"the held reads of case {case_number} raised {covert} covert-list alert(s); only a "
            "role with 'hotlists:view_covert' may export them (427.6)"
        )
        raise StoreQueryError(msg, status=403)
    if out.exists():
        out.rmdir()  # empty, checked above
    os.rename(staging, out)
    record_custody(out, "registered", by, at=at, note=f"export id {export_id}")
    if release is not None:
        note = (
            f"released under request {release.get('request_id')} to "
            f"{release.get('requesting_agency')} ({release.get('requester')}) for "
            f"{release.get('purpose')}"
        )
        record_custody(out, "released", by, at=at, note=note)
    return manifest


def release_case(request: records.ReleaseRequest, given: str | None) -> str:
    """The hold case that fulfils ``request``, after checking the request may be fulfilled:
    approved, so from a law-enforcement agency (427.7). Raises :class:`StoreQueryError`."""
    if request.status == "public_records":
        msg = (
            f"release request {request.id} is from {request.requesting_agency!r}, not a "
            "law-enforcement agency: it goes to the public-records process, never an ALPR "
            "export (427.6, 427.7)"
        )
        raise StoreQueryError(msg, status=409)
    if request.status != "approved":
        msg = (
            f"release request {request.id} is {request.status}; only a request approved by the "
            "Records Supervisor is fulfilled (427.7)"
        )
        raise StoreQueryError(msg, status=409)
    case = (given or request.case_number or "").strip()
    if not case:
        msg = (
            f"release request {request.id} names no case; give the case number of the legal "
            "hold to export"
        )
        raise StoreQueryError(msg, "case_number")
    return case


def release_summary(request: records.ReleaseRequest) -> dict[str, Any]:
    """What the evidence manifest records about the release it fulfils."""
    return {
        "request_id": request.id,
        "requesting_agency": request.requesting_agency,
        "law_enforcement": request.law_enforcement,
        "requester": request.requester,
        "purpose": request.purpose,
        "approved_by": request.decided_by,
        "decision_reason": request.decision_reason,
        "decided_at_ms": request.decided_at_ms,
    }
