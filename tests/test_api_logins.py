"""Login abuse and account hygiene over HTTP: the per-client throttle (429), one 401 for
unknown users, wrong passwords and locked accounts, an anonymous flood that cannot grow the
audit log, the forced password change after an administrator's reset, no self-granted roles
or training, and the TOTP second factor."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

import records
from api import create_app
from plateflow.settings import Settings
from tests.people import add_person
from tests.test_api_support import CASE, PASSWORD, TOKEN, database_url_in

TOTP_KEY = "k" * 40


def _app(tmp: Path, redis_url: str, **overrides: str) -> tuple[TestClient, Engine]:
    url = database_url_in(tmp)
    engine = records.connect(url)
    records.reset_schema(engine)
    settings = Settings.load(
        environ={},
        data_dir=str(tmp / "data"),
        ingest_tokens=TOKEN,
        database_url=url,
        **overrides,
    )
    return TestClient(create_app(settings, redis_url, engine=engine)), engine


@pytest.fixture(name="app")
def app_fixture(tmp_path: Path, redis_url: str) -> Iterator[tuple[TestClient, Engine]]:
    client, engine = _app(tmp_path, redis_url, login_client_failures="4", lockout_attempts="2")
    add_person(engine, "ada", ["administrator"], password=PASSWORD, by="setup")
    add_person(engine, "dora", ["dispatcher"], password=PASSWORD, by="setup")
    with client:
        yield client, engine
    engine.dispose()


def login(client: TestClient, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/v1/auth/login", json={"username": username, "password": password, **extra})


def bearer(resp: Any) -> dict[str, str]:
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def test_one_401_for_unknown_wrong_and_locked_then_throttle(app: tuple[TestClient, Engine]) -> None:
    client, engine = app
    answers = [
        login(client, "nobody"),
        login(client, "dora", "Wrong-Password-123"),
        login(client, "dora", "Wrong-Password-123"),  # locks dora (lockout_attempts=2)
        login(client, "dora"),  # locked: the right password, the same answer
    ]
    assert {(r.status_code, r.json()["detail"]) for r in answers} == {(401, records.LOGIN_REFUSED)}
    # the fifth failure in a minute from this client: throttled, no password checked
    resp = login(client, "ada")
    assert resp.status_code == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "too many failed logins" in resp.json()["detail"]
    reasons = [
        (r.username, (r.reason or "")[:14]) for r in records.read_audit(engine, kind="login")
    ]
    assert reasons[:4] == [
        ("nobody", "unknown user"),
        ("dora", "wrong password"),
        ("dora", "wrong password"),
        ("dora", "locked"),
    ]
    assert reasons[4][0] == records.ANONYMOUS and reasons[4][1].startswith("throttled")


def test_anonymous_flood_adds_a_handful_of_audit_rows(app: tuple[TestClient, Engine]) -> None:
    """200 over HTTP (the door's own test sends 1,000: a test client request costs ~20 ms)."""
    client, engine = app
    before = len(records.read_audit(engine))
    for i in range(200):
        headers = {"Authorization": "Bearer not-a-session"} if i % 2 else {}
        resp = client.get("/v1/hotlists", params={**CASE, "q": "x" * 5000}, headers=headers)
        assert resp.status_code == 401
    added = records.read_audit(engine)[before:]
    assert len(added) <= 3
    assert all(len(r.reason or "") < 1200 and len(str(r.terms)) < 3000 for r in added)
    assert added[0].username == records.ANONYMOUS and added[0].outcome == "denied"


def test_reset_forces_a_password_change(app: tuple[TestClient, Engine]) -> None:
    client, engine = app
    ada = bearer(login(client, "ada"))
    new = "Reset-By-Admin-2026"
    resp = client.put("/v1/users/dora/password", headers=ada, params=CASE, json={"password": new})
    assert resp.status_code == 204, resp.text
    resp = login(client, "dora", new)
    assert resp.json()["user"]["must_change_password"] is True
    dora = bearer(resp)
    refused = client.get("/v1/hotlists", headers=dora, params=CASE)
    assert refused.status_code == 403 and "change it first" in refused.json()["detail"]
    assert client.get("/v1/auth/me", headers=dora).status_code == 200
    wrong = client.put(
        "/v1/auth/password",
        headers=dora,
        json={"current_password": "Not-The-One-123", "new_password": "Mine-Alone-2026!"},
    )
    assert wrong.status_code == 403 and wrong.json()["field"] == "current_password"
    weak = client.put(
        "/v1/auth/password", headers=dora, json={"current_password": new, "new_password": "short"}
    )
    assert weak.status_code == 422 and "shorter than 12" in weak.json()["detail"]
    done = client.put(
        "/v1/auth/password",
        headers=dora,
        json={"current_password": new, "new_password": "Mine-Alone-2026!"},
    )
    assert done.status_code == 204, done.text
    assert client.get("/v1/hotlists", headers=dora, params=CASE).status_code == 200
    assert client.get("/v1/auth/me", headers=dora).json()["user"]["must_change_password"] is False
    actions = [(r.action, r.outcome) for r in records.read_audit(engine, username="dora")]
    assert ("password.change", "denied") in actions and ("password.change", "allowed") in actions


def test_nobody_grants_themselves_a_role_or_training(app: tuple[TestClient, Engine]) -> None:
    client, engine = app
    ada = bearer(login(client, "ada"))
    resp = client.put(
        "/v1/users/ada/roles", headers=ada, params=CASE, json={"roles": ["investigator"]}
    )
    assert resp.status_code == 409 and "another administrator" in resp.json()["detail"]
    resp = client.post(
        "/v1/users/ada/training",
        headers=ada,
        params=CASE,
        json={"course": "ALPR", "completed_on": "2026-11-01"},
    )
    assert resp.status_code == 409 and "another administrator" in resp.json()["detail"]
    resp = client.put("/v1/users/ada/password", headers=ada, params=CASE, json={"password": "x"})
    assert resp.status_code == 409 and "plateflow passwd" in resp.json()["detail"]
    assert records.get_user(engine, "ada").roles == ("administrator",)
    # a second person may
    resp = client.put("/v1/users/dora/roles", headers=ada, params=CASE, json={"roles": ["officer"]})
    assert resp.status_code == 200


def test_totp_second_factor(tmp_path: Path, redis_url: str) -> None:
    client, engine = _app(tmp_path, redis_url, totp_required="true")
    add_person(engine, "ivy", ["investigator"], password=PASSWORD, by="setup")
    with client:
        # no key configured: enrolment is refused with the fix
        ivy = bearer(login(client, "ivy"))
        refused = client.get("/v1/hotlists", headers=ivy, params=CASE)
        assert refused.status_code == 403 and "enrol first" in refused.json()["detail"]
        resp = client.post("/v1/auth/totp", headers=ivy, json={"password": PASSWORD})
        assert resp.status_code == 409 and "PLATEFLOW_TOTP_KEY" in resp.json()["detail"]
    engine.dispose()
    client, engine = _app(tmp_path, redis_url, totp_required="true", totp_key=TOTP_KEY)
    add_person(engine, "ivy", ["investigator"], password=PASSWORD, by="setup")
    with client:
        ivy = bearer(login(client, "ivy"))
        resp = client.post("/v1/auth/totp", headers=ivy, json={"password": PASSWORD})
        assert resp.status_code == 201, resp.text
        uri = resp.json()["provisioning_uri"]
        totp = pyotp.parse_uri(uri)
        assert uri.startswith("otpauth://totp/") and "ivy" in uri
        # not confirmed yet: still refused, login needs no code yet, a wrong code is refused
        assert client.get("/v1/hotlists", headers=ivy, params=CASE).status_code == 403
        assert login(client, "ivy").status_code == 200
        wrong = client.post("/v1/auth/totp/confirm", headers=ivy, json={"code": "000000"})
        assert wrong.status_code == 403 and wrong.json()["field"] == "code"
        code = totp.now()
        done = client.post("/v1/auth/totp/confirm", headers=ivy, json={"code": code})
        assert done.status_code == 200 and done.json()["totp_enrolled"] is True
        again = client.post("/v1/auth/totp", headers=ivy, json={"password": PASSWORD})
        assert again.status_code == 409
        assert client.get("/v1/hotlists", headers=ivy, params=CASE).status_code == 200
        # the secret is stored encrypted, never in the audit log
        secret = totp.secret
        with engine.connect() as conn:
            stored = (
                conn.execute(
                    records.metadata.tables["users"]
                    .select()
                    .where(records.metadata.tables["users"].c.username == "ivy")
                )
                .mappings()
                .one()["totp_secret"]
            )
        assert secret not in stored
        assert all(secret not in str(r) for r in records.read_audit(engine))
        # login now needs the code, and a code is good once
        missing = login(client, "ivy")
        assert (missing.status_code, missing.json()["detail"]) == (401, records.LOGIN_REFUSED)
        replay = login(client, "ivy", totp_code=code)  # the confirmation used this one
        assert replay.status_code == 401
        step = records.get_user(engine, "ivy")
        assert step.totp_enrolled
        later = totp.at(time.time() + 30)  # the next step: accepted (one step of drift)
        assert login(client, "ivy", totp_code=later).status_code == 200
        assert login(client, "ivy", totp_code=later).status_code == 401  # good once
    engine.dispose()
