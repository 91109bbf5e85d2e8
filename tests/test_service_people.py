"""People and sessions at the door (the API and the CLI share it): anonymous floods are
aggregated, a reset password or a missing second factor confines a session to fixing the
account, sessions expire when idle and expired ones are deleted."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import records
import service
from records._schema import now_ms, sessions, write_tx
from records._throttle import flush_anonymous
from service import Acts
from tests.test_api_support import PASSWORD, add_member

WHY = service.Justification(event_number="E26-1")


def _door(engine: Engine, data_dir: Path, **config: object) -> service.Door:
    return service.Door(engine, service.ServiceConfig(data_dir=data_dir, **config))  # type: ignore[arg-type]


def test_a_thousand_anonymous_refusals_add_a_handful_of_records(
    engine: Engine, data_dir: Path
) -> None:
    door = _door(engine, data_dir, anonymous_audit_interval_s=3600)
    for i in range(1000):
        token = None if i % 2 else f"forged-{i}"
        with pytest.raises(service.Unauthenticated):
            door.enter(
                Acts.PLATE_HISTORY,
                token,
                why=service.Justification(description="d" * 5000),
                client="203.0.113.9",
                origin={"path": "/v1/search/plate", "query": {"plate": "X" * 4000, "n": str(i)}},
            )
    found = records.read_audit(engine)
    assert len(found) == 1
    first = found[0]
    assert first.username == records.ANONYMOUS and first.outcome == "denied"
    assert len(first.description or "") <= 200 and len(str(first.terms)) < 1000
    # once the window is over, one summary says how many more there were and of what
    with write_tx(engine) as conn:
        written = flush_anonymous(conn, interval_s=3600, at_ms=now_ms() + 3_601_000)
    assert written == 1
    summary = records.read_audit(engine)[-1]
    assert summary.action == "anonymous.refusals" and summary.terms["refusals"] == 999
    assert summary.terms["actions"] == {"reads.plate": 1000}
    assert len(records.read_audit(engine)) == 2
    assert records.verify_chain(engine).ok


def test_a_reset_password_confines_the_session(engine: Engine, data_dir: Path) -> None:
    door = _door(engine, data_dir)
    add_member(engine, "ada", "administrator")
    add_member(engine, "dora", "dispatcher")
    ada = door.enter(Acts.USER_PASSWORD, records.login(engine, "ada", PASSWORD).token, why=WHY)
    service.set_password(door, ada, "dora", "Reset-By-Admin-2026")
    session = service.login(door, "dora", "Reset-By-Admin-2026", client="cli:dora@host")
    assert session.user.must_change_password
    with pytest.raises(service.Forbidden, match="change it first") as refused:
        door.enter(Acts.HOTLIST_LIST, session.token, why=WHY)
    assert refused.value.reason == "account_setup"
    assert records.read_audit(engine)[-1].reason.startswith("account_setup")
    with pytest.raises(service.Forbidden, match="current password is wrong"):
        service.change_password(
            door, session.token, "Wrong-One-1234", "Mine-Alone-2026!", client=None
        )
    user = service.change_password(
        door, session.token, "Reset-By-Admin-2026", "Mine-Alone-2026!", client=None
    )
    assert not user.must_change_password
    assert door.enter(Acts.HOTLIST_LIST, session.token, why=WHY).username == "dora"


def test_idle_sessions_expire_and_expired_ones_are_deleted(engine: Engine) -> None:
    add_member(engine, "dora", "dispatcher")
    start = now_ms()
    idle = records.login(engine, "dora", PASSWORD, session_idle_s=600, at_ms=start)
    busy = records.login(engine, "dora", PASSWORD, session_idle_s=600, at_ms=start)
    old = records.login(engine, "dora", PASSWORD, session_ttl_s=60, at_ms=start)
    # the busy session is used every five minutes; the idle one not at all
    for minutes in (5, 10, 15):
        at = start + minutes * 60_000
        assert records.resolve_session(engine, busy.token, idle_s=600, at_ms=at).username
    with pytest.raises(records.SessionError, match="unused for more than 600 s"):
        records.resolve_session(engine, idle.token, idle_s=600, at_ms=start + 15 * 60_000)
    with pytest.raises(records.SessionError, match="unknown"):  # deleted when presented
        records.resolve_session(engine, idle.token, idle_s=600, at_ms=start + 15 * 60_000)
    records.logout(engine, busy.token)
    # the next login sweeps out the expired and the closed sessions
    records.login(engine, "dora", PASSWORD, session_idle_s=600, at_ms=start + 16 * 60_000)
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one()
    assert left == 1
    with pytest.raises(records.SessionError, match="unknown"):
        records.resolve_session(engine, old.token, at_ms=start + 16 * 60_000)


def test_a_stolen_session_is_no_password_oracle(engine: Engine, data_dir: Path) -> None:
    """Wrong current passwords count like failed logins: the account locks."""
    door = _door(engine, data_dir, lockout_attempts=2)
    add_member(engine, "dora", "dispatcher")
    token = service.login(door, "dora", PASSWORD, client="x").token
    for _ in range(2):
        with pytest.raises(service.Forbidden, match="current password is wrong"):
            service.change_password(door, token, "Guess-Number-1!", "Mine-Alone-2026!", client="x")
    with pytest.raises(service.Forbidden, match="locked"):
        service.change_password(door, token, PASSWORD, "Mine-Alone-2026!", client="x")
    with pytest.raises(service.Unauthenticated, match="wrong password"):
        service.login(door, "dora", PASSWORD, client="x")
    reasons = [r.reason for r in records.read_audit(engine, username="dora")][-4:]
    assert reasons[1] == "wrong current password (2 of 2); locked for 900 s"
    assert reasons[2] == "locked"
