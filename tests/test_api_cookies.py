"""A browser's login: the session cookie (HttpOnly, SameSite=Strict, Secure over https), the CSRF
cookie and header on unsafe requests, logout clearing both; bearer tokens unchanged. Real app,
real database, real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

import records
from api import create_app
from plateflow.settings import Settings
from tests.people import add_person

PASSWORD = "Correct-Stapler-7-Horse"
CASE = "2026-004211"


@pytest.fixture(name="app_parts")
def app_parts_fixture(
    tmp_path: Path, engine: Engine, redis_url: str
) -> Iterator[tuple[Settings, Engine, str]]:
    add_person(engine, "ada", ["administrator"], password=PASSWORD, by="setup")
    settings = Settings.load(environ={}, data_dir=str(tmp_path / "data"))
    yield settings, engine, redis_url


def client_for(
    parts: tuple[Settings, Engine, str], base_url: str = "http://testserver"
) -> TestClient:
    settings, engine, redis_url = parts
    return TestClient(create_app(settings, redis_url, engine=engine), base_url=base_url)


def new_user(name: str) -> dict[str, object]:
    return {
        "username": name,
        "name": name.title(),
        "agency": "Test PD",
        "roles": ["dispatcher"],
        "password": PASSWORD,
        "case_number": CASE,
    }


def set_cookies(resp: object) -> dict[str, str]:
    headers = resp.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return {h.split("=", 1)[0]: h for h in headers}


def login(client: TestClient, *, cookie: bool = True) -> dict[str, object]:
    resp = client.post(
        "/v1/auth/login", json={"username": "ada", "password": PASSWORD, "cookie": cookie}
    )
    assert resp.status_code == 200, resp.text
    return {"body": resp.json(), "cookies": set_cookies(resp)}


def test_cookie_login_sets_the_session_and_csrf_cookies(app_parts: tuple) -> None:
    with client_for(app_parts) as client:
        got = login(client)
        body, cookies = got["body"], got["cookies"]
        assert isinstance(body, dict) and isinstance(cookies, dict)
        session, csrf = cookies["plateflow_session"].lower(), cookies["plateflow_csrf"].lower()
        assert f"plateflow_session={body['token']}".lower() in session
        assert "httponly" in session and "samesite=strict" in session and "path=/" in session
        assert "secure" not in session  # plain http
        assert f"plateflow_csrf={body['csrf_token']}".lower() in csrf
        assert "httponly" not in csrf and "samesite=strict" in csrf
        # the cookie alone signs in: the user's own record and a guarded GET
        client.headers.pop("Authorization", None)
        assert client.get("/v1/auth/me").json()["user"]["username"] == "ada"
        assert client.get("/v1/users", params={"case_number": CASE}).status_code == 200
    with client_for(app_parts) as client:
        assert (
            set_cookies(
                client.post("/v1/auth/login", json={"username": "ada", "password": PASSWORD})
            )
            == {}
        )  # no cookie unless asked


def test_cookies_are_secure_over_https(app_parts: tuple) -> None:
    with client_for(app_parts, base_url="https://testserver") as client:
        cookies = login(client)["cookies"]
        assert isinstance(cookies, dict)
        assert "secure" in cookies["plateflow_session"].lower()
        assert "secure" in cookies["plateflow_csrf"].lower()


def test_a_cookie_signed_post_needs_the_csrf_header(app_parts: tuple, engine: Engine) -> None:
    with client_for(app_parts) as client:
        csrf = login(client)["body"]["csrf_token"]  # type: ignore[index]
        missing = client.post("/v1/users", json=new_user("nocsrf"))
        assert missing.status_code == 403
        assert "X-CSRF-Token" in missing.json()["detail"]
        wrong = client.post(
            "/v1/users", json=new_user("wrongcsrf"), headers={"X-CSRF-Token": "forged"}
        )
        assert wrong.status_code == 403
        refusals = [r for r in records.read_audit(engine) if (r.reason or "").startswith("csrf")]
        assert [(r.username, r.outcome) for r in refusals] == [("ada", "denied")] * 2
        assert {u.username for u in records.list_users(engine)} == {"ada"}
        ok = client.post("/v1/users", json=new_user("withcsrf"), headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201, ok.text
        # logout is a POST too: refused without the header, then it clears both cookies
        assert client.post("/v1/auth/logout").status_code == 403
        out = client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        cleared = set_cookies(out)
        assert set(cleared) == {"plateflow_session", "plateflow_csrf"}
        assert all("max-age=0" in c.lower() for c in cleared.values())
        assert client.get("/v1/auth/me").status_code == 401


def test_bearer_tokens_need_no_csrf(app_parts: tuple) -> None:
    with client_for(app_parts) as client:
        token = login(client, cookie=False)["body"]["token"]  # type: ignore[index]
        resp = client.post(
            "/v1/users", json=new_user("bybearer"), headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 201, resp.text
        # a bearer token wins over a (stale) cookie and needs no CSRF header
        client.cookies.set("plateflow_session", "stale-cookie-token")
        again = client.post(
            "/v1/users", json=new_user("bybearer2"), headers={"Authorization": f"Bearer {token}"}
        )
        assert again.status_code == 201, again.text
