"""Named users, their roles and their training (policy 427.2.1(a), 427.3(e)(f)).

Only named, authorised and trained members use the system. A user has roles; what each role may
do is :data:`ROLE_PERMISSIONS` (the README shows it via :func:`role_table_markdown`). Training
is current on a day when it was completed on or before that day and has not expired.
Every change here is written to the audit log in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._audit import append_audit
from records._errors import ConflictError, NotFoundError, RecordsError
from records._passwords import check_password_strength, hash_password
from records._roles import ROLES, permissions_for
from records._schema import (
    connection,
    now_ms,
    record_from_row,
    sessions,
    training,
    users,
    write_tx,
)


@dataclass(frozen=True)
class User:
    """A user as recorded (never the password hash)."""

    id: int
    username: str
    name: str
    agency: str
    job_title: str
    roles: tuple[str, ...]
    active: bool
    locked_until_ms: int | None
    last_login_ms: int | None
    created_by: str
    created_at_ms: int
    disabled_reason: str | None
    #: an administrator reset the password: the user must change it before anything else
    must_change_password: bool = False
    #: enrolled in the second factor and confirmed (the secret itself never leaves records)
    totp_enrolled: bool = False

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_for(self.roles)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> User:
        return record_from_row(
            cls,
            row,
            roles=tuple(row["roles"]),
            active=bool(row["active"]),
            last_login_ms=row["last_login_at"],
            must_change_password=bool(row.get("must_change_password")),
            totp_enrolled=row.get("totp_enrolled_at") is not None,
        )


@dataclass(frozen=True)
class TrainingRecord:
    """One completed course."""

    username: str
    course: str
    completed_on: date
    expires_on: date | None
    recorded_by: str
    recorded_at_ms: int

    def current_on(self, day: date) -> bool:
        return self.completed_on <= day and (self.expires_on is None or day <= self.expires_on)


def today_utc(at_ms: int | None = None) -> date:
    """The UTC calendar date at ``at_ms`` (now if None)."""
    ms = now_ms() if at_ms is None else at_ms
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date()


def _check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        msg = (
            f"role(s) {', '.join(unknown) or '(none)'} not known; "
            f"give one or more of {', '.join(ROLES)}"
        )
        raise RecordsError(msg)
    return tuple(dict.fromkeys(roles))


def _user_row(conn: Connection, username: str) -> Mapping[Any, Any]:
    row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
    if row is None:
        raise NotFoundError(f"no user {username!r}; add one with `plateflow users add`")
    return row


def get_user(engine_or_conn: Engine | Connection, username: str) -> User:
    """The user named ``username``; raises NotFoundError."""
    with connection(engine_or_conn) as conn:
        return User.from_row(_user_row(conn, username))


def list_users(engine: Engine, *, include_disabled: bool = True) -> list[User]:
    """Every user, by username."""
    query = sa.select(users).order_by(users.c.username)
    if not include_disabled:
        query = query.where(users.c.active.is_(True))
    with engine.connect() as conn:
        return [User.from_row(r) for r in conn.execute(query).mappings()]


@dataclass(frozen=True)
class _NewUser:
    """A user to create, as given (checked and trimmed by :func:`_insert_user`)."""

    username: str
    name: str
    agency: str
    job_title: str
    roles: Sequence[str]
    password: str = field(repr=False)


def _insert_user(conn: Connection, new: _NewUser, *, by: str, at: int) -> User:
    username, name, agency = new.username, new.name, new.agency
    if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise RecordsError(f"username {username!r} may hold only letters, digits, '.', '-' and '_'")
    if not name.strip() or not agency.strip():
        raise RecordsError("a user needs a name and an agency (named, accountable users, 427.2.1)")
    if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
        raise ConflictError(f"user {username!r} exists; pick another username")
    check_password_strength(new.password, username=username)
    values = {
        "username": username,
        "name": name.strip(),
        "agency": agency.strip(),
        "job_title": new.job_title.strip(),
        "roles": list(_check_roles(new.roles)),
        "active": True,
        "password_hash": hash_password(new.password),
        "failed_logins": 0,
        "created_by": by,
        "created_at": at,
    }
    conn.execute(sa.insert(users).values(**values))
    return User.from_row(_user_row(conn, username))


def add_user(
    engine: Engine,
    *,
    username: str,
    name: str,
    agency: str,
    job_title: str,
    roles: Sequence[str],
    password: str,
    by: str,
) -> User:
    """Create an active user. Raises ConflictError for a taken username, WeakPasswordError."""
    at = now_ms()
    with write_tx(engine) as conn:
        new = _NewUser(username, name, agency, job_title, roles, password)
        user = _insert_user(conn, new, by=by, at=at)
        append_audit(
            conn,
            username=by,
            action="users.add",
            kind="admin",
            terms={"user": username, "roles": list(user.roles)},
            at_ms=at,
        )
    return user


def bootstrap_admin(
    engine: Engine, *, username: str, name: str, agency: str, job_title: str, password: str
) -> User:
    """First run: create the administrator. There is no default password: ``password`` must
    pass the password rules. Refused while any active administrator exists."""
    at = now_ms()
    with write_tx(engine) as conn:
        for row in conn.execute(
            sa.select(users.c.username, users.c.roles).where(users.c.active.is_(True))
        ):
            if "administrator" in row.roles:
                msg = (
                    f"an active administrator ({row.username!r}) exists; bootstrap is for the "
                    "first run only; ask that administrator to add users"
                )
                raise ConflictError(msg)
        new = _NewUser(username, name, agency, job_title, ["administrator"], password)
        user = _insert_user(conn, new, by="bootstrap", at=at)
        append_audit(
            conn,
            username=username,
            action="users.bootstrap",
            kind="admin",
            terms={"user": username, "roles": ["administrator"]},
            at_ms=at,
        )
    return user


def _not_self(username: str, by: str, what: str) -> None:
    """Nobody grants themselves a role or training: a second person records it."""
    if username == by:
        msg = (
            f"{by!r} cannot {what} for themselves; another administrator must record it "
            "(separation of duties)"
        )
        raise ConflictError(msg)


def set_roles(engine: Engine, username: str, roles: Sequence[str], *, by: str) -> User:
    """Replace the roles of a user (never one's own: :class:`ConflictError`)."""
    _not_self(username, by, "set roles")
    checked = list(_check_roles(roles))
    with write_tx(engine) as conn:
        _user_row(conn, username)
        conn.execute(sa.update(users).where(users.c.username == username).values(roles=checked))
        append_audit(
            conn,
            username=by,
            action="users.roles",
            kind="admin",
            terms={"user": username, "roles": checked},
        )
        return User.from_row(_user_row(conn, username))


def _end_sessions(
    conn: Connection,
    username: str,
    values: dict[str, Any],
    *,
    by: str,
    action: str,
    at: int,
    reason: str | None = None,
) -> None:
    """Update the user with ``values``, close every open session of theirs (a password change
    or a disabled account must end them) and audit ``action``."""
    row = _user_row(conn, username)
    conn.execute(sa.update(users).where(users.c.id == row["id"]).values(**values))
    conn.execute(
        sa.update(sessions)
        .where(sessions.c.user_id == row["id"], sessions.c.closed_at.is_(None))
        .values(closed_at=at)
    )
    append_audit(
        conn,
        username=by,
        action=action,
        kind="admin",
        terms={"user": username},
        reason=reason,
        at_ms=at,
    )


def set_password(engine: Engine, username: str, password: str, *, by: str) -> None:
    """An administrator's reset: set a new password (checked), clear the lockout and the second
    factor (a lost device is the usual reason; the user enrols again), close the user's
    sessions, and force a change at the next login. One's own password is changed with
    :func:`records.change_password` instead (:class:`ConflictError` here)."""
    if username == by:
        msg = (
            "an administrator's reset is for somebody else's password; change your own with "
            "`plateflow passwd` or PUT /v1/auth/password"
        )
        raise ConflictError(msg)
    check_password_strength(password, username=username)
    at = now_ms()
    values = {
        "password_hash": hash_password(password),
        "failed_logins": 0,
        "locked_until": None,
        "must_change_password": True,
        "totp_secret": None,
        "totp_enrolled_at": None,
        "totp_last_step": None,
    }
    with write_tx(engine) as conn:
        _end_sessions(conn, username, values, by=by, action="users.password", at=at)


def disable_user(engine: Engine, username: str, *, by: str, reason: str) -> User:
    """Disable a user (never deleted: their audit trail names them) and close their sessions."""
    if not reason.strip():
        raise RecordsError("disabling a user needs a reason (it goes into the audit log)")
    at = now_ms()
    values = {"active": False, "disabled_by": by, "disabled_at": at, "disabled_reason": reason}
    with write_tx(engine) as conn:
        _end_sessions(conn, username, values, by=by, action="users.disable", at=at, reason=reason)
        return User.from_row(_user_row(conn, username))


def enable_user(engine: Engine, username: str, *, by: str) -> User:
    """Re-activate a disabled user."""
    with write_tx(engine) as conn:
        row = _user_row(conn, username)
        conn.execute(
            sa.update(users)
            .where(users.c.id == row["id"])
            .values(
                active=True,
                disabled_by=None,
                disabled_at=None,
                disabled_reason=None,
                failed_logins=0,
                locked_until=None,
            )
        )
        append_audit(
            conn, username=by, action="users.enable", kind="admin", terms={"user": username}
        )
        return User.from_row(_user_row(conn, username))


def record_training(
    engine: Engine,
    username: str,
    *,
    course: str,
    completed_on: date,
    expires_on: date | None,
    by: str,
) -> TrainingRecord:
    """Record a completed course. ``expires_on`` None means the course does not expire. Nobody
    records their own training (:class:`ConflictError`)."""
    _not_self(username, by, "record training")
    if not course.strip():
        raise RecordsError("a training record needs a course name")
    if expires_on is not None and expires_on < completed_on:
        raise RecordsError(
            f"training expires ({expires_on}) before it was completed ({completed_on})"
        )
    at = now_ms()
    with write_tx(engine) as conn:
        row = _user_row(conn, username)
        conn.execute(
            sa.insert(training).values(
                user_id=row["id"],
                course=course.strip(),
                completed_on=completed_on,
                expires_on=expires_on,
                recorded_by=by,
                recorded_at=at,
            )
        )
        append_audit(
            conn,
            username=by,
            action="users.train",
            kind="admin",
            at_ms=at,
            terms={
                "user": username,
                "course": course,
                "completed": completed_on,
                "expires": expires_on,
            },
        )
    return TrainingRecord(username, course.strip(), completed_on, expires_on, by, at)


def training_records(engine_or_conn: Engine | Connection, username: str) -> list[TrainingRecord]:
    """The training of a user, oldest first."""
    query = (
        sa.select(training, users.c.username)
        .join(users, users.c.id == training.c.user_id)
        .where(users.c.username == username)
        .order_by(training.c.completed_on, training.c.id)
    )

    with connection(engine_or_conn) as conn:
        return [
            TrainingRecord(
                r["username"],
                r["course"],
                r["completed_on"],
                r["expires_on"],
                r["recorded_by"],
                r["recorded_at"],
            )
            for r in conn.execute(query).mappings()
        ]


def current_training(conn: Connection, user_id: int, day: date) -> bool:
    """Whether the user has at least one course current on ``day``."""
    query = sa.select(training.c.id).where(
        training.c.user_id == user_id,
        training.c.completed_on <= day,
        sa.or_(training.c.expires_on.is_(None), training.c.expires_on >= day),
    )
    return conn.execute(query.limit(1)).first() is not None


def users_without_current_training(engine: Engine, day: date | None = None) -> list[User]:
    """Active users with no course current on ``day`` (today UTC by default)."""
    on = day or today_utc()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(users).where(users.c.active.is_(True)).order_by(users.c.username)
        )
        return [
            User.from_row(r) for r in rows.mappings() if not current_training(conn, r["id"], on)
        ]
