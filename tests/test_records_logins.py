"""Login abuse and session lifetime: the atomic failure counter, no enumeration, the per-client
throttle, aggregated anonymous refusals, idle timeouts and the deletion of expired sessions."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import records
from records._schema import now_ms, users
from tests.people import add_person

PASSWORD = "Correct-Horse-42"


def _failed_logins(engine: Engine, username: str) -> tuple[int, int | None]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(users.c.failed_logins, users.c.locked_until).where(
                users.c.username == username
            )
        ).one()
    return row.failed_logins, row.locked_until


def test_parallel_wrong_passwords_cannot_bypass_the_lockout(engine: Engine) -> None:
    """Eight threads guess at once (PostgreSQL when configured): with the counter read, then
    written, they overwrite each other's increments and the account never locks."""
    add_person(engine, "ofc.par", ["officer"], password=PASSWORD, trained=False)
    attempts, threads_n = 3, 8
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def guess() -> None:
        barrier.wait()
        try:
            records.login(
                engine, "ofc.par", "Wrong-Guess-123!", lockout_attempts=attempts, lockout_s=600
            )
        except records.AuthError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guess) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == threads_n
    _, locked_until = _failed_logins(engine, "ofc.par")
    assert locked_until is not None and locked_until > now_ms()
    # the right password is refused now, with the same answer as any wrong one
    with pytest.raises(records.AuthError) as info:
        records.login(engine, "ofc.par", PASSWORD, lockout_attempts=attempts)
    assert str(info.value) == records.LOGIN_REFUSED
    # no more passwords were checked than the lockout allows
    checked = [
        r
        for r in records.read_audit(engine, username="ofc.par")
        if (r.reason or "").startswith("wrong password")
    ]
    assert len(checked) == attempts


def test_same_answer_for_unknown_wrong_and_locked(engine: Engine) -> None:
    add_person(engine, "ofc.enum", ["officer"], password=PASSWORD, trained=False)
    answers = []
    for username, password in [
        ("nobody.here", PASSWORD),
        ("ofc.enum", "Wrong-Guess-123!"),
        ("ofc.enum", "Wrong-Guess-123!"),  # this one locks the account
        ("ofc.enum", PASSWORD),  # locked: the right password gets the same answer
    ]:
        with pytest.raises(records.AuthError) as info:
            records.login(engine, username, password, lockout_attempts=2, lockout_s=600)
        answers.append(str(info.value))
    assert set(answers) == {records.LOGIN_REFUSED}
    reasons = [
        (r.username, (r.reason or "")[:14]) for r in records.read_audit(engine, kind="login")
    ]
    assert reasons == [
        ("nobody.here", "unknown user"),
        ("ofc.enum", "wrong password"),
        ("ofc.enum", "wrong password"),
        ("ofc.enum", "locked"),
    ]
