"""Justified, audited access (policy 427.3(c), 427.5(a)); login and sessions are in
:mod:`records._login`.

``audited`` is how any operation that touches ALPR data runs: it checks the :class:`Inquiry`
(user known, active, permitted, trained, justified), writes a denied record and raises
:class:`AccessDenied` if any check fails, else yields a connection in a write transaction and
writes the allowed record, with the result count, in that same transaction before it commits.
If the record cannot be written the transaction fails and no result may be returned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._audit import AuditRecord, append_audit
from records._errors import AccessDenied, AuditError
from records._people import User, current_training, today_utc
from records._schema import connection, now_ms, users, write_tx

log = logging.getLogger(__name__)


# -- inquiries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inquiry:
    """Who asks, and why (427.3(c)): a case number or event number, else a description."""

    user: str | User
    case_number: str | None = None
    event_number: str | None = None
    description: str | None = None

    @property
    def username(self) -> str:
        return self.user.username if isinstance(self.user, User) else self.user


@dataclass(frozen=True)
class _Rules:
    """What an inquiry is checked against: the permission it needs, whether it reaches ALPR
    data (then training and a justification are required too), the shortest description that
    justifies it, and the moment (epoch ms) training must be current at."""

    permission: str
    data_access: bool
    min_description_length: int
    at: int


def _refusal(
    conn: Connection, inquiry: Inquiry, rules: _Rules
) -> tuple[User | None, AccessDenied | None]:
    permission = rules.permission
    min_description_length = rules.min_description_length
    row = (
        conn.execute(sa.select(users).where(users.c.username == inquiry.username))
        .mappings()
        .first()
    )
    if row is None:
        return None, AccessDenied(
            f"no user {inquiry.username!r}; log in as a named user", reason="unknown_user"
        )
    user = User.from_row(row)
    if not user.active:
        return user, AccessDenied(f"user {user.username!r} is disabled", reason="inactive")
    if not user.can(permission):
        return user, AccessDenied(
            f"user {user.username!r} (roles {', '.join(user.roles)}) may not {permission!r}; "
            "ask an administrator for a role that allows it",
            reason="forbidden",
        )
    if not rules.data_access:
        return user, None
    if not current_training(conn, user.id, today_utc(rules.at)):
        return user, AccessDenied(
            f"user {user.username!r} has no current ALPR training on record (427.3(f)); "
            "complete the course and have an administrator record it with `plateflow users train`",
            reason="untrained",
        )
    if not (inquiry.case_number or "").strip() and not (inquiry.event_number or "").strip():
        text = (inquiry.description or "").strip()
        if not text:
            return user, AccessDenied(
                "inquiry needs a case_number or event_number, or else a description of at least "
                f"{min_description_length} characters (427.3(c))",
                reason="no_justification",
                field="case_number",
            )
        if len(text) < min_description_length:
            return user, AccessDenied(
                f"description is {len(text)} characters; without a case_number or event_number "
                f"it needs at least {min_description_length} (427.3(c))",
                reason="no_justification",
                field="description",
            )
    return user, None


def check_inquiry(
    engine_or_conn: Engine | Connection,
    inquiry: Inquiry,
    permission: str,
    *,
    data_access: bool = True,
    min_description_length: int = 20,
    at_ms: int | None = None,
) -> User:
    """Check without auditing; raises :class:`AccessDenied`. Prefer :func:`audited`, which
    also writes the audit record."""
    at = now_ms() if at_ms is None else at_ms
    rules = _Rules(permission, data_access, min_description_length, at)
    with connection(engine_or_conn) as conn:
        user, refusal = _refusal(conn, inquiry, rules)
    if refusal is not None:
        raise refusal
    assert user is not None
    return user


@dataclass
class AuditedAccess:
    """What an audited block gets: the connection, the checked user, and the result count and
    terms to record (set ``result_count`` before the block ends)."""

    conn: Connection
    user: User
    terms: dict[str, Any] = field(default_factory=dict)
    result_count: int | None = None
    record: AuditRecord | None = None


@contextmanager
def audited(
    engine: Engine,
    inquiry: Inquiry,
    action: str,
    *,
    permission: str,
    terms: Mapping[str, Any] | None = None,
    client: str | None = None,
    kind: str = "inquiry",
    data_access: bool = True,
    min_description_length: int = 20,
    at_ms: int | None = None,
) -> Iterator[AuditedAccess]:
    """Run an access to ALPR data under the policy and in the audit log.

    Refused (unknown or disabled user, missing permission, no current training, no case/event
    number or short description): a ``denied`` record is committed and :class:`AccessDenied`
    raised. Allowed: the block runs in a write transaction; on exit the ``allowed`` record is
    appended in it and the transaction commits, and only then may the caller return results. If
    the block raises, its work is rolled back and a ``failed`` record is written on its own.
    ``data_access=False`` skips the training and justification checks, for administration.
    On SQLite the block holds the database write lock (writers queue behind it, readers do
    not), so keep slow work that needs no database, such as a Parquet scan, short or outside.
    """
    at = now_ms() if at_ms is None else at_ms
    common: dict[str, Any] = {
        "username": inquiry.username[:64],
        "action": action,
        "kind": kind,
        "client": client,
        "case_number": inquiry.case_number or None,
        "event_number": inquiry.event_number or None,
        "description": inquiry.description or None,
    }
    rules = _Rules(permission, data_access, min_description_length, at)
    refusal: AccessDenied | None = None
    access: AuditedAccess | None = None
    try:
        with write_tx(engine) as conn:
            user, refusal = _refusal(conn, inquiry, rules)
            if refusal is not None:
                append_audit(
                    conn,
                    terms=terms,
                    outcome="denied",
                    at_ms=at,
                    reason=f"{refusal.reason}: {refusal}",
                    **common,
                )
            else:
                assert user is not None
                access = AuditedAccess(conn=conn, user=user, terms=dict(terms or {}))
                yield access
                access.record = append_audit(
                    conn,
                    terms=access.terms,
                    result_count=access.result_count,
                    at_ms=at_ms,
                    **common,
                )
    except AuditError:
        raise
    except BaseException as exc:
        if access is not None:
            try:
                with write_tx(engine) as conn:
                    append_audit(
                        conn,
                        terms=access.terms,
                        outcome="failed",
                        reason=f"{exc.__class__.__name__}: {exc}"[:1000],
                        **common,
                    )
            except Exception:
                log.exception("could not audit the failure of %s by %s", action, inquiry.username)
        raise
    if refusal is not None:
        raise refusal


def record_denied(
    engine: Engine,
    action: str,
    *,
    reason: str,
    username: str = "(anonymous)",
    client: str | None = None,
    terms: Mapping[str, Any] | None = None,
    kind: str = "inquiry",
    case_number: str | None = None,
    event_number: str | None = None,
    description: str | None = None,
) -> AuditRecord:
    """Audit an attempt refused before :func:`audited` could run (no or expired login, a bad
    request): one ``denied`` record in its own transaction. ``reason`` says why, e.g.
    ``"unauthenticated: no session"``."""
    with write_tx(engine) as conn:
        return append_audit(
            conn,
            username=username[:64],
            action=action,
            kind=kind,
            outcome="denied",
            reason=reason,
            client=client,
            terms=terms,
            case_number=case_number,
            event_number=event_number,
            description=description,
        )
