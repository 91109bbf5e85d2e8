"""Users, roles, training, passwords, lockout and sessions."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import records
from records._schema import now_ms, sessions, users

PASSWORD = "Correct-Horse-42"


def add(engine: Engine, username: str = "ofc.diaz", roles: tuple[str, ...] = ("officer",)) -> None:
    records.add_user(
        engine,
        username=username,
        name="Ana Diaz",
        agency="Example PD",
        job_title="Patrol officer",
        roles=list(roles),
        password=PASSWORD,
        by="admin",
    )


def test_password_rules() -> None:
    assert records.password_problems(PASSWORD) == []
    assert records.password_problems("a long enough passphrase here") == []
    problems = records.password_problems("short")
    assert any("shorter than 12" in p for p in problems)
    assert any("common password" in p for p in records.password_problems("Password123!"))
    assert any("username" in p for p in records.password_problems("Xx-jdoe-2026!", username="jdoe"))
    assert records.password_problems("aaaaaaaaaaaaaaaaaaaaaaaa")


def test_bootstrap_creates_one_administrator(engine: Engine) -> None:
    def bootstrap(username: str, name: str, password: str) -> records.User:
        return records.bootstrap_admin(
            engine,
            username=username,
            name=name,
            agency="Example PD",
            job_title="IT",
            password=password,
        )

    with pytest.raises(records.WeakPasswordError, match="password refused"):
        bootstrap("admin", "Sys Admin", "admin")
    admin = bootstrap("admin", "Sys Admin", PASSWORD)
    assert admin.roles == ("administrator",) and admin.can("users:manage")
    with pytest.raises(records.ConflictError, match="first run only"):
        bootstrap("admin2", "Other", PASSWORD)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert [r.action for r in records.read_audit(engine)] == ["users.bootstrap"]


def test_users_roles_and_training(engine: Engine) -> None:
    add(engine)
    with pytest.raises(records.ConflictError, match="exists"):
        add(engine)
    with pytest.raises(records.RecordsError, match="not known"):
        records.add_user(
            engine,
            username="x",
            name="X",
            agency="A",
            job_title="",
            roles=["chief"],
            password=PASSWORD,
            by="admin",
        )
    today = date.today()
    records.record_training(
        engine,
        "ofc.diaz",
        course="ALPR basics",
        completed_on=today - timedelta(days=400),
        expires_on=today - timedelta(days=35),
        by="admin",
    )
    assert [u.username for u in records.users_without_current_training(engine)] == ["ofc.diaz"]
    records.record_training(
        engine,
        "ofc.diaz",
        course="ALPR refresher",
        completed_on=today,
        expires_on=today + timedelta(days=365),
        by="admin",
    )
    assert records.users_without_current_training(engine) == []
    assert [t.course for t in records.training_records(engine, "ofc.diaz")] == [
        "ALPR basics",
        "ALPR refresher",
    ]
    user = records.set_roles(engine, "ofc.diaz", ["officer", "investigator"], by="admin")
    assert user.can("reads:canvass") and not user.can("users:manage")
    disabled = records.disable_user(engine, "ofc.diaz", by="admin", reason="left the agency")
    assert not disabled.active and disabled.disabled_reason == "left the agency"
    assert [u.username for u in records.list_users(engine, include_disabled=False)] == []


def test_role_table_covers_every_role_and_permission() -> None:
    table = records.role_table_markdown()
    for role in records.ROLES:
        assert role in table.splitlines()[0]
    for permission in records.PERMISSIONS:
        assert f"`{permission}`" in table
    assert not records.ROLE_PERMISSIONS["administrator"] & {"reads:search", "reads:canvass"}
    assert records.permissions_for(["auditor"]) == records.ROLE_PERMISSIONS["auditor"]


def test_login_and_session_token_is_stored_hashed(engine: Engine) -> None:
    add(engine)
    session = records.login(engine, "ofc.diaz", PASSWORD, client="10.0.0.5")
    assert records.resolve_session(engine, session.token).username == "ofc.diaz"
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sessions)).mappings().one()
    assert stored["token_hash"] == hashlib.sha256(session.token.encode()).hexdigest()
    assert session.token not in str(dict(stored))
    records.logout(engine, session.token)
    with pytest.raises(records.SessionError, match="unknown or closed"):
        records.resolve_session(engine, session.token)
    actions = [(r.action, r.outcome, r.client) for r in records.read_audit(engine, kind="login")]
    assert actions == [("login", "allowed", "10.0.0.5"), ("logout", "allowed", None)]


def test_session_expires(engine: Engine) -> None:
    add(engine)
    start = now_ms()
    session = records.login(engine, "ofc.diaz", PASSWORD, session_ttl_s=60, at_ms=start)
    assert records.resolve_session(engine, session.token, at_ms=start + 59_000).username
    with pytest.raises(records.SessionError, match="expired"):
        records.resolve_session(engine, session.token, at_ms=start + 60_000)
    with pytest.raises(records.SessionError):
        records.resolve_session(engine, "not-a-token")


def test_lockout_after_repeated_failures(engine: Engine) -> None:
    add(engine)
    start = now_ms()
    for attempt in range(2):
        with pytest.raises(records.AuthError, match="wrong password") as info:
            records.login(
                engine, "ofc.diaz", "wrong", lockout_attempts=3, lockout_s=60, at_ms=start + attempt
            )
        assert not isinstance(info.value, records.AccountLockedError)
    # locking and locked answer like a wrong password (no enumeration); the log knows why
    with pytest.raises(records.AccountLockedError, match="wrong password"):
        records.login(
            engine, "ofc.diaz", "wrong", lockout_attempts=3, lockout_s=60, at_ms=start + 2
        )
    with pytest.raises(records.AccountLockedError, match="wrong password"):
        records.login(
            engine, "ofc.diaz", PASSWORD, lockout_attempts=3, lockout_s=60, at_ms=start + 30_000
        )
    session = records.login(
        engine, "ofc.diaz", PASSWORD, lockout_attempts=3, lockout_s=60, at_ms=start + 61_000
    )
    assert session.user.locked_until_ms is None
    outcomes = [(r.outcome, r.reason or "") for r in records.read_audit(engine, kind="login")]
    assert outcomes == [
        ("denied", "wrong password (1 of 3)"),
        ("denied", "wrong password (2 of 3)"),
        ("denied", "wrong password (3 of 3); locked for 60 s"),
        ("denied", "locked"),
        ("allowed", ""),
    ]


def test_unknown_and_disabled_users_cannot_log_in(engine: Engine) -> None:
    with pytest.raises(records.AuthError, match="unknown username or wrong password"):
        records.login(engine, "nobody", PASSWORD)
    add(engine)
    session = records.login(engine, "ofc.diaz", PASSWORD)
    records.disable_user(engine, "ofc.diaz", by="admin", reason="suspended")
    with pytest.raises(records.SessionError):
        records.resolve_session(engine, session.token)
    with pytest.raises(records.AuthError, match="disabled"):
        records.login(engine, "ofc.diaz", PASSWORD)
    records.enable_user(engine, "ofc.diaz", by="admin")
    records.set_password(engine, "ofc.diaz", "Another-Secret-77", by="admin")
    assert records.login(engine, "ofc.diaz", "Another-Secret-77").user.active
