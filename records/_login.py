"""Login, sessions and a user's own password and second factor (policy 427.5(a), CJIS 5.6).

``login`` answers every refusal before the password is proven with one sentence,
:data:`LOGIN_REFUSED`: an unknown user, a wrong password, a wrong or missing one-time code and a
locked account look the same to the caller (the audit log records the true reason). The failure
counter is reserved by one atomic ``UPDATE ... SET failed_logins = failed_logins + 1 ...
RETURNING`` before the password is checked, so parallel guesses can check at most
``lockout_attempts`` passwords before the account locks; no database lock is held while argon2
runs. A client that fails more than ``client_failures_per_minute`` times in a minute is refused
with :class:`LoginThrottled` (no password checked) and those refusals are aggregated in the
audit log (:mod:`records._throttle`).

A session has an absolute lifetime and, with ``idle_s``, an idle timeout counted from its last
use; an expired session is deleted when it is presented, and every login sweeps out expired,
idle and closed ones. The token is returned once and stored only as its sha256.

:func:`session_restriction` is what a session may not do yet: after an administrator's reset
the user must change their password (:func:`records.change_password`) first; with the second factor
required for their roles, they must enrol (:func:`records.enrol_totp`) first.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._audit import append_audit
from records._errors import AccountLockedError, AuthError, SessionError
from records._passwords import dummy_hash, hash_password, needs_rehash, verify_password
from records._people import User
from records._schema import connection, now_ms, sessions, users, write_tx
from records._throttle import (
    LOGIN_SCOPE,
    LOGIN_WINDOW_S,
    bump,
    flush_anonymous,
    note_anonymous,
    window_retry_s,
)
from records._totp import SEARCH_PERMISSIONS, accepted_step

#: The one answer to a login refused before the password is proven.
LOGIN_REFUSED = "unknown username or wrong password (or one-time code, if your account has one)"
PASSWORD_CHANGE_FIRST = (
    "your password was reset by an administrator: change it first (`plateflow passwd`, or "
    "PUT /v1/auth/password); nothing else is allowed until then"
)
ENROL_FIRST = (
    "your roles search stored reads, which needs a second factor: enrol first (`plateflow "
    "totp enrol` then `plateflow totp confirm`, or POST /v1/auth/totp then "
    "/v1/auth/totp/confirm); nothing else is allowed until then"
)


class LoginThrottled(AuthError):
    """Too many failed logins from one client: try again in ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


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


def session_restriction(user: User, *, totp_required: bool = False) -> str | None:
    """Why ``user``'s session may do nothing but fix its account yet, or None."""
    if user.must_change_password:
        return PASSWORD_CHANGE_FIRST
    if totp_required and not user.totp_enrolled and user.permissions & SEARCH_PERMISSIONS:
        return ENROL_FIRST
    return None


def sweep_sessions(
    engine_or_conn: Engine | Connection, *, idle_s: int | None = None, at_ms: int | None = None
) -> int:
    """Delete every expired, idle (``idle_s``) or closed session; how many were deleted."""
    at = now_ms() if at_ms is None else at_ms
    gone = [sessions.c.expires_at <= at, sessions.c.closed_at.is_not(None)]
    if idle_s:
        last = sa.func.coalesce(sessions.c.last_seen_at, sessions.c.created_at)
        gone.append(last <= at - idle_s * 1000)
    statement = sa.delete(sessions).where(sa.or_(*gone))
    with connection(engine_or_conn, write=True) as conn:
        return conn.execute(statement).rowcount


def reserve_failure(conn: Connection, user_id: int, at: int) -> int | None:
    """Count one failure in advance, atomically, unless the account is locked (None)."""
    return conn.execute(
        sa.update(users)
        .where(
            users.c.id == user_id,
            sa.or_(users.c.locked_until.is_(None), users.c.locked_until <= at),
        )
        .values(failed_logins=users.c.failed_logins + 1)
        .returning(users.c.failed_logins)
    ).scalar_one_or_none()


def login(
    engine: Engine,
    username: str,
    password: str,
    *,
    totp_code: str | None = None,
    totp_key: str | None = None,
    lockout_attempts: int = 5,
    lockout_s: int = 900,
    session_ttl_s: int = 8 * 3600,
    session_idle_s: int | None = None,
    client_failures_per_minute: int | None = None,
    anonymous_interval_s: int = 60,
    client: str | None = None,
    at_ms: int | None = None,
) -> Session:
    """Check the password (and the one-time code of an enrolled user) and open a session of
    ``session_ttl_s`` seconds.

    Raises :class:`AuthError` with :data:`LOGIN_REFUSED` for an unknown user, a wrong password
    or code and a locked account alike (:class:`AccountLockedError`, same message, while
    locked), :class:`AuthError` naming a disabled account (only with the right password), and
    :class:`LoginThrottled` when ``client`` failed more than ``client_failures_per_minute``
    times this minute. Every attempt is audited; throttled ones are aggregated.
    """
    at = now_ms() if at_ms is None else at_ms
    limit = client_failures_per_minute
    row: Any = None
    reserved: int | None = None
    with write_tx(engine) as conn:
        sweep_sessions(conn, idle_s=session_idle_s, at_ms=at)
        flush_anonymous(conn, interval_s=anonymous_interval_s, at_ms=at)
        window = bump(conn, LOGIN_SCOPE, client, window_s=LOGIN_WINDOW_S, at_ms=at)
        throttled = limit is not None and window.count > limit
        if not throttled:
            row = (
                conn.execute(sa.select(users).where(users.c.username == username))
                .mappings()
                .first()
            )
            if row is not None:
                reserved = reserve_failure(conn, row["id"], at)
    if throttled:
        retry = window_retry_s(window, window_s=LOGIN_WINDOW_S, at_ms=at)
        note_anonymous(
            engine,
            action="login",
            kind="login",
            outcome="denied",
            reason=f"throttled: more than {limit} failed logins from this client in a minute",
            client=client,
            interval_s=anonymous_interval_s,
            terms={"username": username},
            at_ms=at,
        )
        msg = f"too many failed logins from this client; try again in {retry} s"
        raise LoginThrottled(msg, retry)

    # The password is checked outside any transaction: argon2 holds no database lock.
    ok, step, reason = False, None, ""
    if row is None:
        verify_password(dummy_hash(), password)
        reason = "unknown user"
    elif reserved is None or reserved > lockout_attempts:
        verify_password(dummy_hash(), password)
        reason = "locked" if reserved is None else "locked by a parallel attempt"
    elif not verify_password(row["password_hash"], password):
        reason = f"wrong password ({reserved} of {lockout_attempts})"
    elif row["totp_enrolled_at"] is not None:
        step = accepted_step(row["totp_secret"], totp_code, totp_key, at_ms=at)
        ok = step is not None
        what = "missing" if not totp_code else "wrong"
        reason = "" if ok else f"{what} one-time code ({reserved} of {lockout_attempts})"
    else:
        ok = True

    failure: AuthError | None = None
    session: Session | None = None
    with write_tx(engine) as conn:
        if ok and step is not None and not use_step(conn, row["id"], step):
            ok, reason = False, f"one-time code used before ({reserved} of {lockout_attempts})"
        if ok:
            bump(conn, LOGIN_SCOPE, client, window_s=LOGIN_WINDOW_S, at_ms=at, by=-1)
            if not row["active"]:
                _give_back(conn, row["id"])
                failure = AuthError(f"account {username!r} is disabled; ask an administrator")
                reason = "disabled"
            else:
                session = _open_session(conn, row, password, session_ttl_s, client, at)
        elif reserved is not None and reserved <= lockout_attempts:
            failure = AuthError(LOGIN_REFUSED)
            until = lock_if_due(conn, row["id"], reserved, lockout_attempts, lockout_s, at)
            if until is not None:
                reason += f"; locked for {lockout_s} s"
                failure = AccountLockedError(LOGIN_REFUSED, until)
        elif row is not None:
            failure = AccountLockedError(LOGIN_REFUSED, row["locked_until"] or at)
        else:
            failure = AuthError(LOGIN_REFUSED)
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


def lock_if_due(
    conn: Connection, user_id: int, reserved: int, attempts: int, lockout_s: int, at: int
) -> int | None:
    """Lock the account when the failure reserved as number ``reserved`` reaches ``attempts``
    (the counter starts again); when it is locked until, or None."""
    if reserved < attempts:
        return None
    until = at + lockout_s * 1000
    set_user(conn, user_id, failed_logins=0, locked_until=until)
    return until


def _give_back(conn: Connection, user_id: int) -> None:
    """Return a reserved failure (the password was right after all)."""
    counter = users.c.failed_logins
    set_user(conn, user_id, failed_logins=sa.case((counter > 0, counter - 1), else_=0))


def set_user(conn: Connection, user_id: int, **values: Any) -> None:
    conn.execute(sa.update(users).where(users.c.id == user_id).values(**values))


def use_step(conn: Connection, user_id: int, step: int) -> bool:
    """Record ``step`` as the last code used, atomically; False if it (or a later one) was."""
    used = conn.execute(
        sa.update(users)
        .where(
            users.c.id == user_id,
            sa.or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .returning(users.c.id)
    ).first()
    return used is not None


def _open_session(
    conn: Connection, row: Any, password: str, ttl_s: int, client: str | None, at: int
) -> Session:
    token = secrets.token_urlsafe(32)
    expires = at + ttl_s * 1000
    conn.execute(
        sa.insert(sessions).values(
            token_hash=token_hash(token),
            user_id=row["id"],
            created_at=at,
            expires_at=expires,
            last_seen_at=at,
            client=client[:64] if client else None,
        )
    )
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": at}
    if needs_rehash(row["password_hash"]):
        values["password_hash"] = hash_password(password)
    set_user(conn, row["id"], **values)
    fresh = conn.execute(sa.select(users).where(users.c.id == row["id"])).mappings().one()
    return Session(token, User.from_row(fresh), at, expires)


def resolve_session(
    engine: Engine, token: str, *, idle_s: int | None = None, at_ms: int | None = None
) -> User:
    """The user of an open session that has not expired nor been idle for ``idle_s`` seconds;
    its last use is brought up to date. Raises :class:`SessionError` otherwise (an expired or
    idle session is deleted)."""
    at = now_ms() if at_ms is None else at_ms
    digest = token_hash(token)
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(
                    sessions.c.expires_at,
                    sessions.c.closed_at,
                    sa.func.coalesce(sessions.c.last_seen_at, sessions.c.created_at).label(
                        "session_last_seen"
                    ),
                    users,
                )
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.token_hash == digest)
            )
            .mappings()
            .first()
        )
    if row is None or row["closed_at"] is not None:
        raise SessionError("session unknown or closed; log in again")
    last = row["session_last_seen"]
    problem = None
    if row["expires_at"] <= at:
        problem = "session expired; log in again"
    elif idle_s and last + idle_s * 1000 <= at:
        problem = f"session unused for more than {idle_s} s, so it expired; log in again"
    if problem is not None:
        with write_tx(engine) as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.token_hash == digest))
        raise SessionError(problem)
    if not row["active"]:
        raise SessionError(f"account {row['username']!r} is disabled")
    # A write per request would queue every request behind SQLite's write lock: the last use is
    # kept to within a tenth of the idle timeout (at most a minute).
    if idle_s and at - last >= min(60_000, idle_s * 100):
        with write_tx(engine) as conn:
            conn.execute(
                sa.update(sessions).where(sessions.c.token_hash == digest).values(last_seen_at=at)
            )
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
