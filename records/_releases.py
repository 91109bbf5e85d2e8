"""Release requests (policy 427.7) and purge records (427.4).

A release request records the requesting agency, whether it is a law-enforcement agency, the
person asking and the purpose. A Records Supervisor (or a designee holding that role) approves
or denies it with a reason; an approved request is fulfilled by an export that is linked to it.
Requests, decisions and fulfilments are separate append-only rows: nothing here is ever updated
or deleted (database triggers refuse it), and there is no delete function. A request from an
agency that is not law enforcement is flagged for the public-records process: it can be denied
or referred, never approved and fulfilled as an ALPR export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._audit import append_audit
from records._errors import AccessDenied, ConflictError, NotFoundError, RecordsError, ReleaseError
from records._people import User
from records._roles import Permission
from records._schema import (
    in_window,
    now_ms,
    purge_records,
    record_from_row,
    release_decisions,
    release_fulfilments,
    release_requests,
    users,
    write_tx,
)


@dataclass(frozen=True)
class ReleaseRequest:
    """A request with its decision and fulfilment, if any. ``status`` is one of
    ``pending``, ``public_records`` (non-law-enforcement, awaiting the public-records process),
    ``approved``, ``denied`` and ``fulfilled``."""

    id: int
    requesting_agency: str
    law_enforcement: bool
    requester: str
    purpose: str
    case_number: str | None
    terms: Mapping[str, Any]
    created_by: str
    created_at_ms: int
    approved: bool | None
    decision_reason: str | None
    decided_by: str | None
    decided_at_ms: int | None
    export_id: str | None
    fulfilled_by: str | None
    fulfilled_at_ms: int | None

    @property
    def status(self) -> str:
        if self.export_id is not None:
            return "fulfilled"
        if self.approved is True:
            return "approved"
        if self.approved is False:
            return "denied"
        return "pending" if self.law_enforcement else "public_records"


def _query() -> sa.Select[Any]:
    return (
        sa.select(
            release_requests,
            release_decisions.c.approved,
            release_decisions.c.reason.label("decision_reason"),
            release_decisions.c.decided_by,
            release_decisions.c.decided_at,
            release_fulfilments.c.export_id,
            release_fulfilments.c.fulfilled_by,
            release_fulfilments.c.fulfilled_at,
        )
        .outerjoin(release_decisions, release_decisions.c.request_id == release_requests.c.id)
        .outerjoin(release_fulfilments, release_fulfilments.c.request_id == release_requests.c.id)
        .order_by(release_requests.c.id)
    )


def _from_row(r: Mapping[Any, Any]) -> ReleaseRequest:
    return record_from_row(
        ReleaseRequest,
        r,
        law_enforcement=bool(r["law_enforcement"]),
        terms=dict(r["terms"] or {}),
        approved=None if r["approved"] is None else bool(r["approved"]),
    )


def _get(conn: Connection, request_id: int) -> ReleaseRequest:
    row = conn.execute(_query().where(release_requests.c.id == request_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no release request {request_id}")
    return _from_row(row)


def get_release(engine: Engine, request_id: int) -> ReleaseRequest:
    """One release request; raises NotFoundError."""
    with engine.connect() as conn:
        return _get(conn, request_id)


def list_releases(
    engine: Engine, *, start_ms: int | None = None, end_ms: int | None = None
) -> list[ReleaseRequest]:
    """Requests created in ``[start_ms, end_ms)`` (all by default), oldest first."""
    query = in_window(_query(), release_requests.c.created_at, start_ms, end_ms)
    with engine.connect() as conn:
        return [_from_row(r) for r in conn.execute(query).mappings()]


def create_release_request(
    engine: Engine,
    *,
    requesting_agency: str,
    law_enforcement: bool,
    requester: str,
    purpose: str,
    by: str,
    case_number: str | None = None,
    terms: Mapping[str, Any] | None = None,
    client: str | None = None,
) -> ReleaseRequest:
    """Record a written release request (427.7). All of agency, requester and purpose are
    required."""
    missing = [
        n
        for n, v in (
            ("requesting_agency", requesting_agency),
            ("requester", requester),
            ("purpose", purpose),
        )
        if not v or not v.strip()
    ]
    if missing:
        raise RecordsError(f"a release request needs {', '.join(missing)} (427.7)")
    at = now_ms()
    with write_tx(engine) as conn:
        result = conn.execute(
            sa.insert(release_requests)
            .values(
                requesting_agency=requesting_agency.strip(),
                law_enforcement=law_enforcement,
                requester=requester.strip(),
                purpose=purpose.strip(),
                case_number=case_number,
                terms=dict(terms or {}),
                created_by=by,
                created_at=at,
            )
            .returning(release_requests.c.id)
        )
        request_id = int(result.scalar_one())
        append_audit(
            conn,
            username=by,
            action="release.request",
            kind="release",
            client=client,
            at_ms=at,
            case_number=case_number,
            description=purpose,
            terms={
                "request": request_id,
                "agency": requesting_agency,
                "law_enforcement": law_enforcement,
                "requester": requester,
            },
        )
        return _get(conn, request_id)


def _decider(conn: Connection, username: str, permission: str) -> User:
    row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
    if row is None:
        raise AccessDenied(f"no user {username!r}", reason="unknown_user")
    user = User.from_row(row)
    if not user.active:
        raise AccessDenied(f"user {username!r} is disabled", reason="inactive")
    if not user.can(permission):
        raise AccessDenied(
            f"user {username!r} (roles {', '.join(user.roles)}) may not {permission!r}: only a "
            "Records Supervisor or designee decides releases (427.7)",
            reason="forbidden",
        )
    return user


def decide_release(
    engine: Engine,
    request_id: int,
    *,
    approve: bool,
    reason: str,
    by: str,
    client: str | None = None,
) -> ReleaseRequest:
    """Approve or deny a request, with a reason, as a user holding ``releases:decide``.

    A request from a non-law-enforcement agency cannot be approved here: it goes through the
    public-records process. A request is decided once.
    """
    if not reason.strip():
        raise ReleaseError("a release decision needs a reason (427.7)")
    at = now_ms()
    action = "release.approve" if approve else "release.deny"
    # The decision is audited once, refused or made, under one action and time.
    audit_decision = partial(
        append_audit,
        username=by,
        action=action,
        kind="release",
        client=client,
        at_ms=at,
        terms={"request": request_id},
    )
    denied: AccessDenied | None = None
    with write_tx(engine) as conn:
        try:
            _decider(conn, by, Permission.RELEASES_DECIDE)
        except AccessDenied as exc:
            denied = exc
            audit_decision(conn, outcome="denied", reason=f"{exc.reason}: {exc}")
    if denied is not None:
        raise denied
    with write_tx(engine) as conn:
        request = _get(conn, request_id)
        if request.approved is not None:
            raise ConflictError(
                f"release request {request_id} was already {request.status} by {request.decided_by}"
            )
        if approve and not request.law_enforcement:
            raise ReleaseError(
                f"release request {request_id} is from {request.requesting_agency!r}, not a "
                "law-enforcement agency: refer it to the public-records process instead of "
                "approving an ALPR release (427.6, 427.7)"
            )
        if approve and request.created_by == by:
            raise ConflictError(
                f"release request {request_id} was recorded by {by!r}, who cannot also approve "
                "it (separation of duties, 427.7); ask another holder of releases:decide"
            )
        conn.execute(
            sa.insert(release_decisions).values(
                request_id=request_id,
                approved=approve,
                reason=reason.strip(),
                decided_by=by,
                decided_at=at,
            )
        )
        audit_decision(conn, reason=reason)
        return _get(conn, request_id)


def check_fulfiller(request: ReleaseRequest, by: str, *, separate: bool = True) -> None:
    """Separation of duties at fulfilment (427.7, configurable): with ``separate``, the person
    who approved a request cannot also export it. Raises :class:`ConflictError` naming them."""
    if separate and request.approved is True and request.decided_by == by:
        raise ConflictError(
            f"release request {request.id} was approved by {by!r}, who cannot also export it "
            "(separation of duties, 427.7; PLATEFLOW_RELEASE_SEPARATE_EXPORT); ask another "
            "holder of releases:decide and evidence:export"
        )


def fulfil_release(
    engine: Engine,
    request_id: int,
    *,
    export_id: str,
    by: str,
    note: str = "",
    client: str | None = None,
    separate: bool = True,
) -> ReleaseRequest:
    """Link the export that fulfils an approved request. Refused unless approved, and once,
    and (``separate``, :func:`check_fulfiller`) when ``by`` approved it."""
    if not export_id.strip():
        raise ReleaseError("fulfilling a release needs the export id")
    at = now_ms()
    with write_tx(engine) as conn:
        request = _get(conn, request_id)
        if request.export_id is not None:
            raise ConflictError(
                f"release request {request_id} was fulfilled by export {request.export_id}"
            )
        if request.approved is not True:
            raise ReleaseError(
                f"release request {request_id} is {request.status}; only an "
                "approved request is fulfilled"
            )
        check_fulfiller(request, by, separate=separate)
        conn.execute(
            sa.insert(release_fulfilments).values(
                request_id=request_id,
                export_id=export_id,
                fulfilled_by=by,
                fulfilled_at=at,
                note=note,
            )
        )
        append_audit(
            conn,
            username=by,
            action="release.fulfil",
            kind="release",
            client=client,
            at_ms=at,
            terms={"request": request_id, "export": export_id},
        )
        return _get(conn, request_id)


# -- purges --------------------------------------------------------------------------------


def _ms(value: datetime | int | None) -> int:
    if value is None:
        return now_ms()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise RecordsError("give an aware datetime (UTC) for record times, not a naive one")
        return int(value.timestamp() * 1000)
    return int(value)


@dataclass(frozen=True)
class PurgeRecord:
    """A purge of stored reads: which partition, how many rows, by whom, when."""

    partition: str
    rows: int
    by: str
    at_ms: int
    note: str


def record_purge(
    engine: Engine,
    partition: str,
    rows: int,
    by: str,
    at: datetime | int | None = None,
    *,
    note: str = "",
) -> PurgeRecord:
    """Record that ``rows`` reads of ``partition`` (e.g. ``reads/date=2025-09-30``) were purged
    by ``by`` (a user or ``retention-job``) at ``at`` (aware datetime or epoch ms; now)."""
    if rows < 0:
        raise RecordsError(f"purged row count {rows} is negative")
    at_ms = _ms(at)
    with write_tx(engine) as conn:
        conn.execute(
            sa.insert(purge_records).values(
                partition=partition, rows=rows, purged_by=by, purged_at=at_ms, note=note
            )
        )
        append_audit(
            conn,
            username=by,
            action="retention.purge",
            kind="retention",
            at_ms=at_ms,
            terms={"partition": partition, "rows": rows},
            result_count=rows,
        )
    return PurgeRecord(partition, rows, by, at_ms, note)


def _oldest_first(
    engine: Engine, table: sa.Table, at: Any, start_ms: int | None, end_ms: int | None
) -> list[sa.RowMapping]:
    """The rows of ``table`` whose time column ``at`` lies in ``[start_ms, end_ms)``, oldest
    first (ties in insertion order)."""
    query = in_window(sa.select(table).order_by(at, table.c.id), at, start_ms, end_ms)
    with engine.connect() as conn:
        return list(conn.execute(query).mappings())


def list_purges(
    engine: Engine, *, start_ms: int | None = None, end_ms: int | None = None
) -> list[PurgeRecord]:
    """Purges recorded in ``[start_ms, end_ms)``, oldest first."""
    return [
        PurgeRecord(r["partition"], r["rows"], r["purged_by"], r["purged_at"], r["note"])
        for r in _oldest_first(engine, purge_records, purge_records.c.purged_at, start_ms, end_ms)
    ]
