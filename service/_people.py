"""Sessions, users and training as acts (427.2.1, 427.3(e)(f), 427.5(a)).

Login and logout are audited by :mod:`records` (every attempt, failures included). User and
training administration runs through the door like every data act: the administrator is a
named, trained member too, and says why (a case, event or ticket number, or a description)
each time; that justification sits in the audit log beside the change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

import records
from service._acts import Acts
from service._door import Actor, Door
from service._errors import Forbidden, ServiceError, Unauthenticated, as_service_error

__all__ = [
    "NewUser",
    "UserDetail",
    "add_user",
    "change_password",
    "confirm_totp",
    "describe_user",
    "disable_user",
    "enable_user",
    "enrol_totp",
    "lapsed_training",
    "list_training",
    "list_users",
    "login",
    "logout",
    "record_training",
    "set_password",
    "set_roles",
    "today",
    "view_user",
]


def today() -> date:
    return datetime.now(timezone.utc).date()


@dataclass(frozen=True)
class UserDetail:
    """A user with their training records."""

    user: records.User
    training: tuple[records.TrainingRecord, ...]


def login(
    door: Door,
    username: str,
    password: str,
    *,
    client: str | None,
    totp_code: str | None = None,
) -> records.Session:
    """Check the password (and the one-time code of an enrolled user) and open a session
    (lockout, throttle, lifetimes from the config). Raises :class:`~service.Unauthenticated`
    with one sentence for an unknown user, a wrong password or code and a locked account
    (:class:`~service.Locked`, same sentence), or :class:`~service.Throttled`."""
    config = door.config
    try:
        return records.login(
            door.engine,
            username,
            password,
            totp_code=totp_code,
            totp_key=config.totp_key,
            lockout_attempts=config.lockout_attempts,
            lockout_s=config.lockout_s,
            session_ttl_s=config.session_ttl_s,
            session_idle_s=config.session_idle_s,
            client_failures_per_minute=config.login_client_failures,
            anonymous_interval_s=config.anonymous_audit_interval_s,
            client=client,
        )
    except records.AuthError as exc:
        raise as_service_error(exc) or Unauthenticated(str(exc)) from exc


def change_password(
    door: Door, token: str, current: str, new: str, *, client: str | None
) -> records.User:
    """The session's user changes their own password (the current one proves it is them);
    the one act a session whose password was reset may do. Their other sessions close."""
    door.session_user(token)  # an expired session is Unauthenticated, like every act
    try:
        return records.change_password(door.engine, token, current, new, proof=_proof(door, client))
    except records.RecordsError as exc:
        raise _own_error(exc) from exc


def enrol_totp(door: Door, token: str, password: str, *, client: str | None) -> str:
    """Start enrolling the session's user in the second factor; the provisioning URI (which
    holds the secret) is returned this once; :func:`confirm_totp` finishes."""
    door.session_user(token)
    try:
        return records.enrol_totp(
            door.engine, token, password, key=door.config.totp_key, proof=_proof(door, client)
        )
    except records.RecordsError as exc:
        raise _own_error(exc) from exc


def confirm_totp(door: Door, token: str, code: str, *, client: str | None) -> records.User:
    """Finish enrolment with a first code from the app; from then on login needs codes."""
    door.session_user(token)
    try:
        return records.confirm_totp(
            door.engine, token, code, key=door.config.totp_key, proof=_proof(door, client)
        )
    except records.RecordsError as exc:
        raise _own_error(exc, "code") from exc


def _proof(door: Door, client: str | None) -> records.Proof:
    config = door.config
    return records.Proof(client, config.session_idle_s, config.lockout_attempts, config.lockout_s)


def _own_error(exc: records.RecordsError, field: str = "current_password") -> ServiceError:
    """A wrong current password (or code) is a refusal of the request (403, naming
    ``field``), not of the session."""
    if isinstance(exc, records.AuthError) and not isinstance(exc, records.SessionError):
        return Forbidden(str(exc), field, reason="wrong_password")
    error = as_service_error(exc)
    assert error is not None
    return error


def logout(door: Door, token: str, *, client: str | None) -> None:
    """Close a session (idempotent); the logout is audited."""
    records.logout(door.engine, token, client=client)


def describe_user(door: Door, user: records.User) -> UserDetail:
    """A user's own record and training (no ALPR data): what ``me`` shows."""
    return UserDetail(user, tuple(records.training_records(door.engine, user.username)))


def list_users(door: Door, actor: Actor, *, include_disabled: bool = True) -> list[records.User]:
    return door.read_all(
        actor,
        Acts.USER_LIST,
        lambda: records.list_users(door.engine, include_disabled=include_disabled),
    )


def view_user(door: Door, actor: Actor, username: str) -> UserDetail:
    def run(access: records.AuditedAccess) -> UserDetail:
        user = records.get_user(access.conn, username)
        access.result_count = 1
        return UserDetail(user, tuple(records.training_records(access.conn, username)))

    return door.read(actor, Acts.USER_VIEW, run, {"user": username})


@dataclass(frozen=True)
class NewUser:
    """Who a new user is: a named member of an agency (427.2.1(a)) with roles."""

    username: str
    name: str
    agency: str
    job_title: str
    roles: tuple[str, ...]


def add_user(door: Door, actor: Actor, new: NewUser, *, password: str) -> records.User:
    """Add a named user with roles; the password must pass the password rules."""
    fields = {**dataclasses.asdict(new), "roles": list(new.roles)}
    return door.write(
        actor,
        Acts.USER_ADD,
        lambda: records.add_user(door.engine, **fields, password=password, by=actor.username),
        {"user": new.username, "roles": list(new.roles)},
    )


def set_roles(door: Door, actor: Actor, username: str, roles: Sequence[str]) -> records.User:
    return door.write(
        actor,
        Acts.USER_ROLES,
        lambda: records.set_roles(door.engine, username, list(roles), by=actor.username),
        {"user": username, "roles": list(roles)},
    )


def disable_user(door: Door, actor: Actor, username: str, *, reason: str) -> records.User:
    """Disable a user (never deleted); their sessions are closed."""
    return door.write(
        actor,
        Acts.USER_DISABLE,
        lambda: records.disable_user(door.engine, username, by=actor.username, reason=reason),
        {"user": username},
    )


def enable_user(door: Door, actor: Actor, username: str) -> records.User:
    return door.write(
        actor,
        Acts.USER_ENABLE,
        lambda: records.enable_user(door.engine, username, by=actor.username),
        {"user": username},
    )


def set_password(door: Door, actor: Actor, username: str, password: str) -> None:
    """Set a user's password; their sessions are closed."""
    door.write(
        actor,
        Acts.USER_PASSWORD,
        lambda: records.set_password(door.engine, username, password, by=actor.username),
        {"user": username},
    )


def list_training(door: Door, actor: Actor, username: str) -> list[records.TrainingRecord]:
    def run(access: records.AuditedAccess) -> list[records.TrainingRecord]:
        records.get_user(access.conn, username)  # unknown user: not found, not an empty list
        found = list(records.training_records(access.conn, username))
        access.result_count = len(found)
        return found

    return door.read(actor, Acts.TRAINING_LIST, run, {"user": username})


def record_training(
    door: Door,
    actor: Actor,
    username: str,
    *,
    course: str,
    completed_on: date,
    expires_on: date | None,
) -> records.TrainingRecord:
    return door.write(
        actor,
        Acts.TRAINING_RECORD,
        lambda: records.record_training(
            door.engine,
            username,
            course=course,
            completed_on=completed_on,
            expires_on=expires_on,
            by=actor.username,
        ),
        {"user": username, "course": course},
    )


def lapsed_training(door: Door, actor: Actor) -> list[records.User]:
    """Active users without current training."""
    return door.read_all(
        actor, Acts.TRAINING_LAPSED, lambda: records.users_without_current_training(door.engine)
    )
