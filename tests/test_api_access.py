"""Every data endpoint refuses, and audits, each way in which an access is not allowed.

For each endpoint: no login (401), a trained user whose role does not allow it (403), an
untrained user whose role does (403, saying training), and a permitted, trained user without
a case number (422 naming ``case_number``). Each attempt must be the newest audit record, with
the user, the action, the outcome ``denied`` and the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import records
from records._schema import client_counters
from tests.test_api_support import (
    CASE,
    PASSWORD,
    World,
    world_fixture,  # noqa: F401  (registers the module-scoped `world` fixture)
)

NEW_USER = {
    "username": "newbie",
    "name": "Nell Newbie",
    "agency": "Test PD",
    "job_title": "dispatcher",
    "roles": ["dispatcher"],
    "password": PASSWORD,
}
TRAINING = {"course": "ALPR policy 427", "completed_on": "2026-10-01", "expires_on": "2027-10-01"}
PATTERN = {
    "plate": "7AB?12",
    "reason": "hit and run, partial plate from witness",
    "expires_at": "2027-01-31",
}

CANVASS = {
    "start": "2026-11-28T10:00:00Z",
    "end": "2026-11-28T12:00:00Z",
    "center": {"lat": 38.58, "lon": -121.49},
    "radius_m": 300,
}
HOLD = {"reason": "homicide 26-118", "plate": {"plate": "ABC123"}}
PAST = {"hotlist": "stolen", "plate": "ABC123", "days": 30}

# (method, path, json body, action, a role allowed, a role not allowed)
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str, str, str]] = [
    ("GET", "/v1/users", None, "users.list", "ada", "dora"),
    ("POST", "/v1/users", NEW_USER, "users.add", "ada", "ivy"),
    ("GET", "/v1/users/target", None, "users.view", "ada", "otto"),
    ("PUT", "/v1/users/target/roles", {"roles": ["officer"]}, "users.roles", "ada", "aud"),
    ("POST", "/v1/users/target/disable", {"reason": "left"}, "users.disable", "ada", "aud"),
    ("POST", "/v1/users/target/enable", None, "users.enable", "ada", "aud"),
    (
        "PUT",
        "/v1/users/target/password",
        {"password": PASSWORD + "!"},
        "users.password",
        "ada",
        "rex",
    ),
    ("GET", "/v1/users/target/training", None, "users.training", "ada", "dora"),
    ("POST", "/v1/users/target/training", TRAINING, "users.train", "ada", "aud"),
    ("GET", "/v1/training/lapsed", None, "users.lapsed", "ada", "dora"),
    ("GET", "/v1/hotlists", None, "hotlists.list", "dora", "aud"),
    (
        "POST",
        "/v1/hotlists",
        {"name": "new-list", "category": "stolen_plate"},
        "hotlists.create",
        "ada",
        "ivy",
    ),
    ("GET", "/v1/hotlists/stolen", None, "hotlists.view", "dora", "aud"),
    ("POST", "/v1/hotlists/stolen/entries", PATTERN, "hotlists.entry.add", "ivy", "dora"),
    ("DELETE", "/v1/hotlists/stolen/entries/ABC123", None, "hotlists.entry.remove", "ada", "otto"),
    (
        "PUT",
        "/v1/hotlists/stolen/policy",
        {"policy": {"differences": 1}},
        "hotlists.policy",
        "ada",
        "ivy",
    ),
    ("GET", "/v1/alerts", None, "alerts.history", "dora", "ada"),
    ("GET", "/v1/alerts/log", None, "alerts.log", "otto", "ada"),
    (
        "POST",
        "/v1/releases",
        {
            "requesting_agency": "State Police",
            "law_enforcement": True,
            "requester": "Lt. Ng",
            "purpose": "fugitive search",
        },
        "releases.request",
        "ivy",
        "dora",
    ),
    ("GET", "/v1/releases", None, "releases.list", "rex", "dora"),
    ("GET", "/v1/releases/1", None, "releases.view", "aud", "ivy"),
    (
        "POST",
        "/v1/releases/1/decision",
        {"approve": True, "reason": "lawful purpose"},
        "releases.decide",
        "rex",
        "ivy",
    ),
    ("GET", "/v1/search/plate?plate=ABC123", None, "reads.plate", "otto", "dora"),
    ("GET", "/v1/search/partial?pattern=7AB*", None, "reads.partial", "otto", "ada"),
    ("POST", "/v1/search/canvass", CANVASS, "reads.canvass", "ivy", "otto"),
    ("POST", "/v1/search/past", PAST, "reads.past", "otto", "ada"),
    ("POST", "/v1/holds", HOLD, "holds.place", "rex", "ivy"),
    ("GET", "/v1/holds", None, "holds.list", "rex", "otto"),
    ("POST", "/v1/holds/H-1/release", {"reason": "case closed"}, "holds.release", "rex", "ivy"),
    ("POST", "/v1/evidence/exports", {"purpose": "court"}, "evidence.export", "ivy", "otto"),
    ("GET", "/v1/evidence/exports/EXP-1/verify", None, "evidence.verify", "ivy", "dora"),
    (
        "GET",
        "/v1/evidence/exports/EXP-1/files/reads.csv",
        None,
        "evidence.download",
        "rex",
        "otto",
    ),
    ("POST", "/v1/releases/1/export", {"note": "on USB"}, "releases.export", "rex", "ivy"),
    ("GET", "/v1/audit", None, "audit.read", "aud", "ada"),
    ("GET", "/v1/audit/verify", None, "audit.verify", "aud", "ada"),
    ("GET", "/v1/audit/report?quarter=2026Q4", None, "audit.report", "aud", "ada"),
]
IDS = [f"{m} {p.split('?')[0]}" for m, p, *_ in ENDPOINTS]


def call(
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> Any:
    return client.request(method, path, json=body, headers=headers or {}, params=params)


def new_anonymous_window(world: World) -> None:
    """Anonymous refusals are recorded once per client and window, then only counted
    (tests/test_service_people.py); each case here starts a fresh window to see its record."""
    with world.engine.begin() as conn:
        conn.execute(sa.delete(client_counters))


def assert_audited(world: World, username: str, action: str, reason: str) -> records.AuditRecord:
    record = world.last_audit()
    assert (record.username, record.action, record.outcome) == (username, action, "denied")
    assert record.reason is not None and record.reason.startswith(reason), record.reason
    assert record.client  # the client address is recorded
    return record


@pytest.mark.parametrize(
    ("method", "path", "body", "action", "allowed", "wrong"), ENDPOINTS, ids=IDS
)
def test_without_login_is_401_and_audited(
    world: World, method: str, path: str, body: Any, action: str, allowed: str, wrong: str
) -> None:
    new_anonymous_window(world)
    resp = call(world.client, method, path, body, params=CASE)
    assert resp.status_code == 401, resp.text
    assert "log in" in resp.json()["detail"]
    assert resp.headers["www-authenticate"] == "Bearer"
    assert_audited(world, "(anonymous)", action, "no_login")
    # a token that is not a session is refused and audited the same way
    new_anonymous_window(world)
    resp = call(world.client, method, path, body, {"Authorization": "Bearer forged"}, CASE)
    assert resp.status_code == 401
    assert_audited(world, "(anonymous)", action, "session")


@pytest.mark.parametrize(
    ("method", "path", "body", "action", "allowed", "wrong"), ENDPOINTS, ids=IDS
)
def test_wrong_role_is_403_and_audited(
    world: World, method: str, path: str, body: Any, action: str, allowed: str, wrong: str
) -> None:
    resp = call(world.client, method, path, body, world.auth(wrong), CASE)
    assert resp.status_code == 403, resp.text
    assert "may not" in resp.json()["detail"]
    record = assert_audited(world, wrong, action, "forbidden")
    assert record.case_number == CASE["case_number"]


@pytest.mark.parametrize(
    ("method", "path", "body", "action", "allowed", "wrong"), ENDPOINTS, ids=IDS
)
def test_untrained_is_403_and_audited(
    world: World, method: str, path: str, body: Any, action: str, allowed: str, wrong: str
) -> None:
    untrained = f"u_{allowed}"
    resp = call(world.client, method, path, body, world.auth(untrained), CASE)
    assert resp.status_code == 403, resp.text
    assert "no current ALPR training" in resp.json()["detail"]
    assert_audited(world, untrained, action, "untrained")


@pytest.mark.parametrize(
    ("method", "path", "body", "action", "allowed", "wrong"), ENDPOINTS, ids=IDS
)
def test_no_case_number_is_422_naming_the_field_and_audited(
    world: World, method: str, path: str, body: Any, action: str, allowed: str, wrong: str
) -> None:
    resp = call(world.client, method, path, body, world.auth(allowed))
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "case_number"
    assert "case_number" in resp.json()["detail"]
    assert_audited(world, allowed, action, "no_justification")


def test_short_description_names_the_description_field(world: World) -> None:
    resp = world.client.get(
        "/v1/hotlists", headers=world.auth("dora"), params={"description": "just looking"}
    )
    assert resp.status_code == 422
    assert resp.json()["field"] == "description"
    assert "at least 20" in resp.json()["detail"]
    assert_audited(world, "dora", "hotlists.list", "no_justification")


def test_a_long_enough_description_or_event_number_justifies(world: World) -> None:
    why = {"description": "canvass after the 4th St burglary, suspect car seen northbound"}
    resp = world.client.get("/v1/hotlists", headers=world.auth("dora"), params=why)
    assert resp.status_code == 200
    record = world.last_audit()
    assert (record.outcome, record.description) == ("allowed", why["description"])
    resp = world.client.get(
        "/v1/hotlists", headers=world.auth("dora"), params={"event_number": "E26-11-0042"}
    )
    assert resp.status_code == 200
    assert world.last_audit().event_number == "E26-11-0042"


def test_justification_in_the_json_body(world: World) -> None:
    resp = world.client.post(
        "/v1/releases",
        headers=world.auth("ivy"),
        json={
            "requesting_agency": "State Police",
            "law_enforcement": True,
            "requester": "Lt. Ng",
            "purpose": "fugitive search",
            "case_number": "26-77",
        },
    )
    assert resp.status_code == 201, resp.text
    justified = [
        r
        for r in records.read_audit(world.engine, username="ivy")
        if r.action == "releases.request"
    ]
    assert justified[-1].outcome == "allowed" and justified[-1].case_number == "26-77"


def _template(path: str) -> str:
    path = path.split("?")[0]
    for concrete, name in (
        ("/target", "/{username}"),
        ("/stolen", "/{name}"),
        ("/ABC123", "/{plate}"),
        ("/1", "/{request_id}"),
        ("/H-1", "/{case}"),
        ("/EXP-1", "/{export_id}"),
        ("/reads.csv", "/{name}"),
    ):
        path = path.replace(concrete, name)
    return path


def test_openapi_documents_the_refusals_and_the_justification(world: World) -> None:
    doc = world.client.get("/openapi.json").json()
    for method, path, *_ in ENDPOINTS:
        op = doc["paths"][_template(path)][method.lower()]
        assert {"401", "403", "422"} <= set(op["responses"]), path
        names = {p["name"] for p in op.get("parameters", [])}
        assert {"case_number", "event_number", "description"} <= names, path
        assert op["security"] == [{"Session": []}], path
        assert op.get("summary"), path
