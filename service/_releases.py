"""Release requests as acts (427.7): request, list, view, decide, and fulfil by an export.

A release is fulfilled only through an evidence export of exactly the request's case: a
different case number given with the fulfilment is refused (:class:`~service.Conflict`
naming both), as is a request that names no case, and what the request asked for (its
``terms``: plates, read ids) is checked against the held reads before the export is put in
place, so an approved request for one case can never hand over another case's reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import matchers
import records
from service._acts import Acts
from service._door import Actor, Door
from service._errors import Conflict, Forbidden
from service._evidence import Export, run_export

__all__ = [
    "Fulfilment",
    "decide_release",
    "fulfil_release",
    "get_release",
    "list_releases",
    "release_case",
    "release_summary",
    "request_release",
]


@dataclass(frozen=True)
class Fulfilment:
    """A fulfilled release: the request as now recorded, and the export that fulfilled it."""

    release: records.ReleaseRequest
    export: Export


def request_release(
    door: Door,
    actor: Actor,
    *,
    requesting_agency: str,
    law_enforcement: bool,
    requester: str,
    purpose: str,
    case_number: str | None = None,
    terms: Mapping[str, Any] | None = None,
) -> records.ReleaseRequest:
    """Record a written release request (agency, requester, purpose; 427.7)."""
    return door.write(
        actor,
        Acts.RELEASE_REQUEST,
        lambda: records.create_release_request(
            door.engine,
            requesting_agency=requesting_agency,
            law_enforcement=law_enforcement,
            requester=requester,
            purpose=purpose,
            by=actor.username,
            case_number=case_number,
            terms=terms,
            client=actor.client,
        ),
        {"agency": requesting_agency, "requester": requester},
    )


def list_releases(
    door: Door, actor: Actor, *, start_ms: int | None = None, end_ms: int | None = None
) -> list[records.ReleaseRequest]:
    return door.read_all(
        actor,
        Acts.RELEASE_LIST,
        lambda: records.list_releases(door.engine, start_ms=start_ms, end_ms=end_ms),
    )


def get_release(door: Door, actor: Actor, request_id: int) -> records.ReleaseRequest:
    def run(access: records.AuditedAccess) -> records.ReleaseRequest:
        found = records.get_release(door.engine, request_id)
        access.result_count = 1
        return found

    return door.read(actor, Acts.RELEASE_VIEW, run, {"request": request_id})


def decide_release(
    door: Door, actor: Actor, request_id: int, *, approve: bool, reason: str
) -> records.ReleaseRequest:
    """Approve or deny a request (the Records Supervisor)."""
    return door.write(
        actor,
        Acts.RELEASE_DECIDE,
        lambda: records.decide_release(
            door.engine,
            request_id,
            approve=approve,
            reason=reason,
            by=actor.username,
            client=actor.client,
        ),
        {"request": request_id, "approve": approve},
    )


def release_case(request: records.ReleaseRequest, given: str | None = None) -> str:
    """The case that fulfils ``request``, after checking it may be fulfilled: approved, so
    from a law-enforcement agency, naming a case, and ``given`` (a case number the caller
    sent along) is that case. Raises :class:`~service.Conflict`."""
    if request.status == "public_records":
        msg = (
            f"release request {request.id} is from {request.requesting_agency!r}, not a "
            "law-enforcement agency: it goes to the public-records process, never an ALPR "
            "export (427.6, 427.7)"
        )
        raise Conflict(msg)
    if request.status != "approved":
        msg = (
            f"release request {request.id} is {request.status}; only a request approved by the "
            "Records Supervisor is fulfilled (427.7)"
        )
        raise Conflict(msg)
    case = (request.case_number or "").strip()
    if not case:
        msg = (
            f"release request {request.id} names no case; a release exports exactly the "
            "request's case: record a new request with the case number of the legal hold"
        )
        raise Conflict(msg, "case_number")
    other = (given or "").strip()
    if other and other != case:
        msg = (
            f"release request {request.id} is for case {case}, not case {other}: a release "
            f"exports exactly the request's case; fulfil it for {case} or record a new request"
        )
        raise Conflict(msg, "case_number")
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


def _asked(terms: Mapping[str, Any], *keys: str) -> list[str]:
    found: list[str] = []
    for key in keys:
        value = terms.get(key)
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(str(v) for v in value)
    return found


def _check_asked(request: records.ReleaseRequest, case: str, staged: Path) -> None:
    """What the request asked for (plates, read ids in its terms) is in the held reads."""
    plates = sorted({matchers.normalise_plate(p) for p in _asked(request.terms, "plate", "plates")})
    ids = sorted(set(_asked(request.terms, "read_id", "read_ids")))
    if not plates and not ids:
        return
    table = pq.read_table(staged / "reads.parquet", columns=["plate", "read_id"])
    held_plates = set(table.column("plate").to_pylist())
    held_ids = set(table.column("read_id").to_pylist())
    missing = [p for p in plates if p not in held_plates] + [i for i in ids if i not in held_ids]
    if missing:
        msg = (
            f"release request {request.id} asks for {', '.join(missing)}, which the legal "
            f"hold of case {case} does not hold; extend the hold or correct the request"
        )
        raise Conflict(msg, "terms")


def fulfil_release(
    door: Door,
    actor: Actor,
    request_id: int,
    *,
    case_number: str | None = None,
    note: str = "",
    purpose: str | None = None,
    out_dir: Path | None = None,
) -> Fulfilment:
    """Fulfil an approved request with an evidence export of its case (the release goes into
    the manifest and the custody chain), then link the export to the request. The actor
    needs ``releases:decide`` and ``evidence:export`` and (setting ``release_separate_export``,
    default on) must not be the request's approver. ``case_number``, when given (the
    caller's, or else the justification's), must be the request's case."""
    act = Acts.RELEASE_EXPORT
    needed = records.Permission.EVIDENCE_EXPORT
    if not actor.can(needed):
        error = Forbidden(f"user {actor.username!r} may not {needed!r} (427.4)")
        raise door.deny(actor, act, error)
    given = case_number or actor.why.case_number

    separate = door.config.release_separate_export

    def run(access: records.AuditedAccess) -> Export:
        request = records.get_release(door.engine, request_id)
        try:
            records.check_fulfiller(request, actor.username, separate=separate)
        except records.ConflictError as exc:  # before anything is exported
            raise Conflict(str(exc), "request") from exc
        case = release_case(request, given)
        access.terms["case"] = case
        return run_export(
            door,
            actor,
            access,
            case,
            out_dir=out_dir,
            purpose=purpose or request.purpose,
            release=release_summary(request),
            check=lambda staged: _check_asked(request, case, staged),
        )

    export = door.read(actor, act, run, {"request": request_id})
    fulfilled = records.fulfil_release(
        door.engine,
        request_id,
        export_id=export.export_id,
        by=actor.username,
        note=note,
        client=actor.client,
        separate=separate,
    )
    return Fulfilment(fulfilled, export)
