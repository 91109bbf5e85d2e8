"""A logged-in user's own account: changing their password, enrolling a second factor.

Both need the current password again (:class:`Proof`): a wrong one counts as a failed login and
locks the account like one, so a stolen session is no password-guessing oracle. Enrolment has
two steps: :func:`enrol_totp` returns the provisioning URI once (the secret is stored only
encrypted, :mod:`records._totp`), :func:`confirm_totp` takes a first code from the app; only
then does login ask for codes, so a user who never scanned the URI is not locked out.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._audit import append_audit
from records._errors import AuthError, ConflictError
from records._login import (
    lock_if_due,
    reserve_failure,
    resolve_session,
    set_user,
    token_hash,
    use_step,
)
from records._passwords import check_password_strength, hash_password, verify_password
from records._people import User
from records._schema import now_ms, sessions, users, write_tx
from records._totp import accepted_step, new_secret, provisioning_uri


@dataclass(frozen=True)
class Proof:
    """How a session's user proves it is them again (their password), and the lockout that
    keeps a stolen session from being a password-guessing oracle."""

    client: str | None = None
    idle_s: int | None = None
    lockout_attempts: int = 5
    lockout_s: int = 900

    def failed(self, conn: Connection, user_id: int, reserved: int, what: str, at: int) -> str:
        """Count a failed proof reserved as number ``reserved``; the audit reason."""
        reason = f"{what} ({reserved} of {self.lockout_attempts})"
        if lock_if_due(conn, user_id, reserved, self.lockout_attempts, self.lockout_s, at):
            reason += f"; locked for {self.lockout_s} s"
        return reason


def _proven(
    engine: Engine, token: str, password: str, action: str, proof: Proof
) -> tuple[User, str]:
    """The session's user, once their current password is proven; a wrong one counts as a
    failed login (the account locks like at login), is audited and refused with
    :class:`AuthError`. Also the stored hash."""
    user = resolve_session(engine, token, idle_s=proof.idle_s)
    at = now_ms()
    with write_tx(engine) as conn:
        reserved = reserve_failure(conn, user.id, at)
        stored = conn.execute(
            sa.select(users.c.password_hash).where(users.c.id == user.id)
        ).scalar_one()
    locked = reserved is None or reserved > proof.lockout_attempts
    right = not locked and verify_password(stored, password)
    with write_tx(engine) as conn:
        if right:
            set_user(conn, user.id, failed_logins=0)
            return user, stored
        reason = "locked"
        if reserved is not None and not locked:
            reason = proof.failed(conn, user.id, reserved, "wrong current password", at)
        append_audit(
            conn,
            username=user.username,
            action=action,
            kind="login",
            client=proof.client,
            outcome="denied",
            reason=reason,
        )
    if locked:
        msg = "the account is locked after repeated failed passwords; try again later"
        raise AuthError(msg)
    raise AuthError("the current password is wrong; nothing was changed")


def _done(conn: Connection, user: User, action: str, proof: Proof) -> User:
    """Audit ``action`` as done by ``user`` and return their record as it is now."""
    append_audit(conn, username=user.username, action=action, kind="login", client=proof.client)
    fresh = conn.execute(sa.select(users).where(users.c.id == user.id)).mappings().one()
    return User.from_row(fresh)


def change_password(
    engine: Engine,
    token: str,
    current: str,
    new: str,
    *,
    proof: Proof = Proof(),
) -> User:
    """The session's user changes their own password: the current one proves it is them, the
    new one must pass the rules and differ. Clears a forced change; closes every other session
    of theirs (this one stays open). Audited as ``password.change``."""
    user, stored = _proven(engine, token, current, "password.change", proof)
    check_password_strength(new, username=user.username)
    if verify_password(stored, new):
        raise ConflictError("the new password is the current one; choose a different password")
    at = now_ms()
    with write_tx(engine) as conn:
        set_user(
            conn,
            user.id,
            password_hash=hash_password(new),
            must_change_password=False,
            failed_logins=0,
            locked_until=None,
        )
        conn.execute(
            sa.update(sessions)
            .where(
                sessions.c.user_id == user.id,
                sessions.c.closed_at.is_(None),
                sessions.c.token_hash != token_hash(token),
            )
            .values(closed_at=at)
        )
        return _done(conn, user, "password.change", proof)


def enrol_totp(
    engine: Engine,
    token: str,
    password: str,
    *,
    key: str | None,
    proof: Proof = Proof(),
) -> str:
    """Start enrolling the session's user in the second factor (their password proves it is
    them) and return the provisioning URI, once: it holds the secret, which is stored only
    encrypted under ``key`` and never shown again. Login asks for codes once
    :func:`confirm_totp` has seen one. Enrolling again before that replaces the secret.
    Refused (:class:`ConflictError`) when enrolled (an administrator's password reset clears
    it) or without a key."""
    user, _ = _proven(engine, token, password, "totp.enrol", proof)
    if user.totp_enrolled:
        msg = (
            f"{user.username!r} already has a second factor; to replace a lost one, ask an "
            "administrator to reset your password, then enrol again"
        )
        raise ConflictError(msg)
    secret, stored = new_secret(key)
    with write_tx(engine) as conn:
        set_user(conn, user.id, totp_secret=stored, totp_enrolled_at=None, totp_last_step=None)
        append_audit(
            conn, username=user.username, action="totp.enrol", kind="login", client=proof.client
        )
    return provisioning_uri(secret, user.username)


def confirm_totp(
    engine: Engine,
    token: str,
    code: str,
    *,
    key: str | None,
    proof: Proof = Proof(),
) -> User:
    """Finish enrolment with a first code from the app: from now on login needs a code.
    Refused (:class:`ConflictError`) with nothing pending, :class:`AuthError` for a wrong
    code (counted like a failed login)."""
    user = resolve_session(engine, token, idle_s=proof.idle_s)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(users.c.totp_secret).where(users.c.id == user.id)
        ).scalar_one()
    if user.totp_enrolled or stored is None:
        msg = "no second factor is waiting for confirmation: enrol first (POST /v1/auth/totp)"
        raise ConflictError(msg)
    step = accepted_step(stored, code, key)
    with write_tx(engine) as conn:
        if step is None or not use_step(conn, user.id, step):
            at = now_ms()
            reserved = reserve_failure(conn, user.id, at)
            reason = "locked"
            if reserved is not None:
                reason = proof.failed(conn, user.id, reserved, "wrong one-time code", at)
            append_audit(
                conn,
                username=user.username,
                action="totp.confirm",
                kind="login",
                client=proof.client,
                outcome="denied",
                reason=reason,
            )
        else:
            set_user(conn, user.id, totp_enrolled_at=now_ms())
            return _done(conn, user, "totp.confirm", proof)
    raise AuthError("the one-time code is wrong; check the app's clock and try the next code")
