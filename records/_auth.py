"""Login, sessions and justified, audited access (policy 427.3(c), 427.5(a)).

``login`` checks the password (argon2), counts failures and locks the account for ``lockout_s``
after ``lockout_attempts`` of them, and opens a session whose token is returned once and stored
only as its sha256. Every login attempt is audited.

``audited`` is how any operation that touches ALPR data runs: it checks the :class:`Inquiry`
(user known, active, permitted, trained, justified), writes a denied record and raises
:class:`AccessDenied` if any check fails, else yields a connection in a write transaction and
writes the allowed record, with the result count, in that same transaction before it commits.
If the record cannot be written the transaction fails and no result may be returned.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._audit import AuditRecord, append_audit
from records._errors import AccessDenied, AccountLockedError, AuditError, AuthError, SessionError
from records._passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from records._people import User, current_training, today_utc
from records._schema import now_ms, sessions, users, write_tx

log = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    """What is stored for a session token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """An open session. ``token`` is given to the client once and never stored."""

    token: str
    user: User
    created_at_ms: int
    expires_at_ms: int


def login(
    engine: Engine,
    username: str,
    password: str,
    *,
    lockout_attempts: int = 5,
    lockout_s: int = 900,
    session_ttl_s: int = 8 * 3600,
    client: str | None = None,
    at_ms: int | None = None,
) -> Session:
    """Check the password and open a session of ``session_ttl_s`` seconds.

    Raises :class:`AuthError` ("unknown username or wrong password", or disabled account) and
    :class:`AccountLockedError` while locked, even with the right password. Every attempt,
    allowed or not, is in the audit log.
    """
    at = now_ms() if at_ms is None else at_ms
    failure: AuthError | None = None
    session: Session | None = None
    with write_tx(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        if row is None:
            verify_password(DUMMY_HASH, password)
            failure = AuthError("unknown username or wrong password")
            reason = "unknown user"
        elif row["locked_until"] is not None and row["locked_until"] > at:
            until = row["locked_until"]
            failure = AccountLockedError(
                f"account {username!r} is locked after repeated failed logins; try again in "
                f"{(until - at + 999) // 1000} s or ask an administrator to reset the password",
                until,
            )
            reason = "locked"
        elif not verify_password(row["password_hash"], password):
            failures = row["failed_logins"] + 1
            values: dict[str, Any] = {"failed_logins": failures}
            reason = f"wrong password ({failures} of {lockout_attempts})"
            failure = AuthError("unknown username or wrong password")
            if failures >= lockout_attempts:
                values = {"failed_logins": 0, "locked_until": at + lockout_s * 1000}
                reason = f"wrong password; locked for {lockout_s} s"
                failure = AccountLockedError(
                    f"account {username!r} is now locked for {lockout_s} s after "
                    f"{lockout_attempts} failed logins",
                    at + lockout_s * 1000,
                )
            conn.execute(sa.update(users).where(users.c.id == row["id"]).values(**values))
        elif not row["active"]:
            failure = AuthError(f"account {username!r} is disabled; ask an administrator")
            reason = "disabled"
        else:
            token = secrets.token_urlsafe(32)
            expires = at + session_ttl_s * 1000
            conn.execute(
                sa.insert(sessions).values(
                    token_hash=token_hash(token),
                    user_id=row["id"],
                    created_at=at,
                    expires_at=expires,
                    client=client[:64] if client else None,
                )
            )
            values = {"failed_logins": 0, "locked_until": None, "last_login_at": at}
            if needs_rehash(row["password_hash"]):
                values["password_hash"] = hash_password(password)
            conn.execute(sa.update(users).where(users.c.id == row["id"]).values(**values))
            fresh = conn.execute(sa.select(users).where(users.c.id == row["id"])).mappings().one()
            session = Session(token, User.from_row(fresh), at, expires)
            reason = ""
        append_audit(
            conn,
            username=username[:64],
            action="login",
            kind="login",
            client=client,
            outcome="denied" if failure else "allowed",
            reason=reason or None,
            at_ms=at,
        )
    if failure is not None:
        raise failure
    assert session is not None
    return session


def resolve_session(engine: Engine, token: str, *, at_ms: int | None = None) -> User:
    """The user of an open, unexpired session. Raises :class:`SessionError` otherwise."""
    at = now_ms() if at_ms is None else at_ms
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(sessions.c.expires_at, sessions.c.closed_at, users)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.token_hash == token_hash(token))
            )
            .mappings()
            .first()
        )
    if row is None or row["closed_at"] is not None:
        raise SessionError("session unknown or closed; log in again")
    if row["expires_at"] <= at:
        raise SessionError("session expired; log in again")
    if not row["active"]:
        raise SessionError(f"account {row['username']!r} is disabled")
    return User.from_row(row)


def logout(engine: Engine, token: str, *, client: str | None = None) -> None:
    """Close a session (idempotent) and audit the logout."""
    at = now_ms()
    with write_tx(engine) as conn:
        row = conn.execute(
            sa.select(users.c.username, sessions.c.closed_at)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.token_hash == token_hash(token))
        ).first()
        if row is None or row.closed_at is not None:
            return
        conn.execute(
            sa.update(sessions)
            .where(sessions.c.token_hash == token_hash(token))
            .values(closed_at=at)
        )
        append_audit(
            conn, username=row.username, action="logout", kind="login", client=client, at_ms=at
        )


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


def _refusal(
    conn: Connection,
    inquiry: Inquiry,
    permission: str,
    *,
    data_access: bool,
    min_description_length: int,
    at: int,
) -> tuple[User | None, AccessDenied | None]:
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
    if not data_access:
        return user, None
    if not current_training(conn, user.id, today_utc(at)):
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
    if isinstance(engine_or_conn, Connection):
        user, refusal = _refusal(
            engine_or_conn,
            inquiry,
            permission,
            data_access=data_access,
            min_description_length=min_description_length,
            at=at,
        )
    else:
        with engine_or_conn.connect() as conn:
            user, refusal = _refusal(
                conn,
                inquiry,
                permission,
                data_access=data_access,
                min_description_length=min_description_length,
                at=at,
            )
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
    refusal: AccessDenied | None = None
    access: AuditedAccess | None = None
    try:
        with write_tx(engine) as conn:
            user, refusal = _refusal(
                conn,
                inquiry,
                permission,
                data_access=data_access,
                min_description_length=min_description_length,
                at=at,
            )
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
