"""The allowed paths of the session, users, hotlists, alerts, releases and audit endpoints,
against the real database, Redis and Parquet store, with the audit log checked after each."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi.testclient import TestClient

import records
from sinks import HOTLISTS_CHANGED, AlertBus, ReadStore
from tests.people import add_person
from tests.test_api_support import (
    CASE,
    PASSWORD,
    World,
    world_fixture,  # noqa: F401  (registers the module-scoped `world` fixture)
)


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/v1/auth/login", json={"username": username, "password": password})


def audit_of(world: World, action: str) -> list[records.AuditRecord]:
    return [r for r in records.read_audit(world.engine) if r.action == action]


# -- session ------------------------------------------------------------------------------------


def test_login_me_logout(world: World) -> None:
    resp = login(world.client, "dora")
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["user"]["roles"] == ["dispatcher"]
    assert "alerts:receive" in body["user"]["permissions"]
    auth = {"Authorization": f"Bearer {body['token']}"}
    me = world.client.get("/v1/auth/me", headers=auth).json()
    assert me["user"]["username"] == "dora" and me["training_current"] is True
    assert world.client.post("/v1/auth/logout", headers=auth).status_code == 204
    assert world.client.get("/v1/auth/me", headers=auth).status_code == 401
    resp = world.client.get("/v1/hotlists", headers=auth, params=CASE)
    assert resp.status_code == 401 and "closed" in resp.json()["detail"]
    assert [r.outcome for r in audit_of(world, "logout")][-1] == "allowed"


def test_bad_password_then_lockout(world: World) -> None:
    add_person(world.engine, "locky", ["officer"], password=PASSWORD, trained=False, by="setup")
    for _ in range(world.settings.lockout_attempts - 1):
        resp = login(world.client, "locky", "Wrong-Password-123")
        assert resp.status_code == 401
        assert resp.json()["detail"] == records.LOGIN_REFUSED
    # locking, and the locked account, answer like a wrong password (no enumeration)
    resp = login(world.client, "locky", "Wrong-Password-123")
    assert (resp.status_code, resp.json()["detail"]) == (401, records.LOGIN_REFUSED)
    resp = login(world.client, "locky")  # even with the right password
    assert (resp.status_code, resp.json()["detail"]) == (401, records.LOGIN_REFUSED)
    outcomes = [r.outcome for r in records.read_audit(world.engine, username="locky")]
    assert outcomes.count("denied") == world.settings.lockout_attempts + 1
    assert login(world.client, "nobody-here").status_code == 401


def test_invalid_request_is_refused_and_audited(world: World) -> None:
    resp = world.client.post(
        "/v1/users", headers=world.auth("ada"), params=CASE, json={"username": "x"}
    )
    assert resp.status_code == 422
    assert resp.json()["field"] in {"name", "agency", "roles", "password"}
    last = world.last_audit()
    assert (last.username, last.outcome) == ("ada", "failed")
    assert last.reason is not None and last.reason.startswith("invalid request")


# -- users and training -------------------------------------------------------------------------


def test_administrator_adds_trains_disables_a_user(world: World) -> None:
    ada, client = world.auth("ada"), world.client
    new = {
        "username": "nell",
        "name": "Nell Newbie",
        "agency": "Test PD",
        "job_title": "dispatcher",
        "roles": ["dispatcher"],
        "password": PASSWORD,
    }
    resp = client.post("/v1/users", headers=ada, json=new, params={"event_number": "HR-2026-311"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["username"] == "nell" and resp.json()["created_by"] == "ada"
    [justified] = [r for r in audit_of(world, "users.add") if r.event_number == "HR-2026-311"]
    assert justified.outcome == "allowed" and justified.username == "ada"
    assert client.post("/v1/users", headers=ada, json=new, params=CASE).status_code == 409
    weak = client.post(
        "/v1/users", headers=ada, params=CASE, json={**new, "username": "weak", "password": "short"}
    )
    assert weak.status_code == 422 and "shorter than 12" in weak.json()["detail"]
    assert world.last_audit().outcome == "failed"

    token = login(client, "nell").json()["token"]
    nell = {"Authorization": f"Bearer {token}"}
    refused = client.get("/v1/hotlists", headers=nell, params=CASE)
    assert refused.status_code == 403 and "training" in refused.json()["detail"]
    resp = client.post(
        "/v1/users/nell/training",
        headers=ada,
        params=CASE,
        json={"course": "ALPR policy 427", "completed_on": "2026-01-05"},
    )
    assert resp.status_code == 201 and resp.json()["current"] is True
    assert client.get("/v1/hotlists", headers=nell, params=CASE).status_code == 200
    detail = client.get("/v1/users/nell", headers=ada, params=CASE).json()
    assert detail["training_current"] and detail["training"][0]["course"] == "ALPR policy 427"

    resp = client.put(
        "/v1/users/nell/roles", headers=ada, params=CASE, json={"roles": ["dispatcher", "officer"]}
    )
    assert resp.json()["roles"] == ["dispatcher", "officer"]
    bad_role = client.put(
        "/v1/users/nell/roles", headers=ada, params=CASE, json={"roles": ["sheriff"]}
    )
    assert bad_role.status_code == 422 and "not known" in bad_role.json()["detail"]
    resp = client.post(
        "/v1/users/nell/disable", headers=ada, params=CASE, json={"reason": "transferred"}
    )
    assert resp.json()["active"] is False
    assert client.get("/v1/hotlists", headers=nell, params=CASE).status_code == 401
    assert client.post("/v1/users/nell/enable", headers=ada, params=CASE).json()["active"]
    assert client.get("/v1/users/ghost", headers=ada, params=CASE).status_code == 404
    names = [u["username"] for u in client.get("/v1/users", headers=ada, params=CASE).json()]
    assert "nell" in names and "ada" in names
    lapsed = client.get("/v1/training/lapsed", headers=ada, params=CASE).json()
    assert "u_dora" in [u["username"] for u in lapsed] and "nell" not in lapsed


# -- hotlists -----------------------------------------------------------------------------------


def test_covert_lists_exist_only_for_roles_allowed(world: World) -> None:
    client = world.client
    seen = [
        h["name"]
        for h in client.get("/v1/hotlists", headers=world.auth("dora"), params=CASE).json()
    ]
    assert "stolen" in seen and "covert-ops" not in seen
    seen = [
        h["name"] for h in client.get("/v1/hotlists", headers=world.auth("ivy"), params=CASE).json()
    ]
    assert "covert-ops" in seen
    hidden = client.get("/v1/hotlists/covert-ops", headers=world.auth("dora"), params=CASE)
    assert hidden.status_code == 404 and hidden.json()["detail"] == "no hotlist 'covert-ops'"
    assert world.last_audit().outcome == "failed"  # the attempt is on record
    shown = client.get("/v1/hotlists/covert-ops", headers=world.auth("ivy"), params=CASE)
    assert shown.status_code == 200
    assert [e["plate"] for e in shown.json()["entries"]] == ["ZZZ999"]
    assert world.last_audit().result_count == 1


def test_investigator_enters_partial_plates_only(world: World, redis_url: str) -> None:
    client, ivy = world.client, world.auth("ivy")
    listener = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(HOTLISTS_CHANGED)
    time.sleep(0.05)

    def enter(entry: dict[str, str], case: dict[str, str] = CASE) -> httpx.Response:
        return client.post("/v1/hotlists/stolen/entries", headers=ivy, params=case, json=entry)

    entry = {"plate": "4KX?9*", "reason": "fled a fatal collision", "expires_at": "2027-02-01"}
    resp = enter(entry, {"case_number": "26-0911"})
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert made["is_pattern"] and made["case_number"] == "26-0911"
    assert made["entered_by"] == "ivy"
    assert made["expires_at"] == "2027-02-02T00:00:00.000Z"  # a date runs through that day
    message = None
    deadline = time.monotonic() + 5
    while message is None and time.monotonic() < deadline:
        message = listener.get_message(timeout=0.2)
    assert message is not None and message["data"] == b"stolen"
    listener.close()

    full = enter({"plate": "9XYZ123", "reason": "suspect"})
    assert full.status_code == 403 and "partial-plate patterns only" in full.json()["detail"]
    assert world.last_audit().outcome == "denied"
    no_expiry = enter({"plate": "5LM*", "reason": "witness saw part"})
    assert no_expiry.status_code == 422 and "expir" in no_expiry.json()["detail"]
    gone = client.delete("/v1/hotlists/stolen/entries/4KX?9*", headers=ivy, params=CASE)
    # unencoded, '?' starts the query string: the path names the full plate 4KX, refused
    assert gone.status_code == 403
    gone = client.delete("/v1/hotlists/stolen/entries/4KX%3F9%2A", headers=ivy, params=CASE)
    assert gone.status_code == 200, gone.text


def test_administrator_changes_lists(world: World) -> None:
    client, ada = world.client, world.auth("ada")
    made = client.post(
        "/v1/hotlists",
        headers=ada,
        params=CASE,
        json={"name": "plates-q4", "category": "stolen_plate"},
    )
    assert made.status_code == 201 and made.json()["version"] == 1
    assert (
        client.post(
            "/v1/hotlists",
            headers=ada,
            params=CASE,
            json={"name": "plates-q4", "category": "stolen_plate"},
        ).status_code
        == 409
    )
    added = client.post(
        "/v1/hotlists/plates-q4/entries",
        headers=ada,
        params=CASE,
        json={"plate": "8ABC123", "state": "CA", "reason": "stolen plate"},
    )
    assert added.status_code == 201 and not added.json()["is_pattern"]
    cost = client.put(
        "/v1/hotlists/plates-q4/policy",
        headers=ada,
        params=CASE,
        json={"policy": {"differences": 0, "ocr_equivalents": 1}},
    )
    assert cost.status_code == 200, cost.text
    assert cost.json()["sample_size"] == 10_000 and not cost.json()["over_ceiling"]
    detail = client.get("/v1/hotlists/plates-q4", headers=ada, params=CASE).json()
    assert detail["hotlist"]["policy"]["ocr_equivalents"] == 1
    assert [c["change"] for c in detail["history"]] == ["create", "add", "policy"]
    removed = client.delete("/v1/hotlists/plates-q4/entries/8ABC123", headers=ada, params=CASE)
    assert removed.json()["version"] == 4
    old = client.get("/v1/hotlists/plates-q4", headers=ada, params={**CASE, "version": "2"})
    assert [e["plate"] for e in old.json()["entries"]] == ["8ABC123"]
    assert client.get("/v1/hotlists/nope", headers=ada, params=CASE).status_code == 404


# -- alerts -------------------------------------------------------------------------------------


def _alert(n: int, plate: str, hotlist: str, covert: bool, ts: int) -> dict[str, Any]:
    return {
        "alert_id": f"a-{n}",
        "emitted_at": ts + 50,
        "sighting_of": None,
        "read": {
            "read_id": f"r-{n}",
            "camera_id": "cam-elm-01",
            "plate": plate,
            "ts": ts,
            "confidence": 0.9,
        },
        "hotlist": {"name": hotlist, "category": "stolen_vehicle", "priority": 0, "covert": covert},
        "entry": {"entry_id": f"{hotlist}:{plate}", "plate": plate},
        "match": {"kind": "exact"},
        "verify_before_action": True,
        "advisories": [],
    }


def test_alert_history_hides_covert_alerts(world: World) -> None:
    now = int(time.time() * 1000)
    alerts = [
        _alert(1, "ABC123", "stolen", False, now - 60_000),
        _alert(2, "ZZZ999", "covert-ops", True, now - 30_000),
    ]
    ReadStore(world.settings.data_dir, world.settings.retention_days).write_alerts(0, "1-0", alerts)
    dora = world.client.get("/v1/alerts", headers=world.auth("dora"), params=CASE).json()
    assert [a["alert_id"] for a in dora["alerts"]] == ["a-1"]
    assert world.last_audit().result_count == 1
    ivy = world.client.get("/v1/alerts", headers=world.auth("ivy"), params=CASE).json()
    assert [a["alert_id"] for a in ivy["alerts"]] == ["a-2", "a-1"]  # newest first
    one = world.client.get(
        "/v1/alerts", headers=world.auth("ivy"), params={**CASE, "plate": "abc-123"}
    ).json()
    assert one["count"] == 1 and world.last_audit().terms["plate"] == "abc-123"
    naive = world.client.get(
        "/v1/alerts", headers=world.auth("dora"), params={**CASE, "start": "2026-11-01T00:00:00"}
    )
    assert naive.status_code == 422 and naive.json()["field"] == "start"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        # the default 7-day start would fall before year 1: was a 500 (an unchecked overflow)
        ("/v1/alerts", {"end": "0001-01-02T00:00:00Z"}, "end"),
        ("/v1/search/plate", {"plate": "ABC123", "end": "0001-01-02T00:00:00Z"}, "end"),
        ("/v1/alerts", {"start": "0001-01-01T00:00:00+05:00"}, "start"),
        ("/v1/alerts", {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "start"),
    ],
)
def test_a_time_window_out_of_range_is_a_422_naming_the_field(
    world: World, path: str, params: dict[str, str], field: str
) -> None:
    resp = world.client.get(path, headers=world.auth("ivy"), params={**CASE, **params})
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field and field in resp.json()["detail"]
    record = world.last_audit()
    assert (record.outcome, record.username) == ("denied", "ivy")


def test_alert_log_replay(world: World, redis_client: redis.Redis) -> None:
    now = int(time.time() * 1000)
    AlertBus(redis_client).publish(
        [_alert(3, "JKL555", "stolen", False, now), _alert(4, "QQQ111", "covert-ops", True, now)]
    )
    resp = world.client.get("/v1/alerts/log", headers=world.auth("otto"), params=CASE).json()
    assert [e["alert"]["alert_id"] for e in resp["alerts"]] == ["a-3"]
    after = world.client.get(
        "/v1/alerts/log", headers=world.auth("otto"), params={**CASE, "after": resp["last_id"]}
    ).json()
    assert after == {"alerts": [], "last_id": None}
    covert = world.client.get(
        "/v1/alerts/log", headers=world.auth("dora"), params={**CASE, "covert": "true"}
    )
    assert covert.status_code == 403 and world.last_audit().outcome == "denied"
    covert = world.client.get(
        "/v1/alerts/log", headers=world.auth("ivy"), params={**CASE, "covert": "true"}
    ).json()
    assert [e["alert"]["alert_id"] for e in covert["alerts"]] == ["a-4"]
    bad = world.client.get(
        "/v1/alerts/log", headers=world.auth("otto"), params={**CASE, "after": "yesterday"}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "after"


# -- releases -----------------------------------------------------------------------------------


def test_release_workflow(world: World) -> None:
    client = world.client
    ask = {
        "requesting_agency": "State DOJ",
        "law_enforcement": True,
        "requester": "Agent Roe",
        "purpose": "trafficking investigation",
    }
    made = client.post("/v1/releases", headers=world.auth("ivy"), json=ask, params=CASE).json()
    assert made["status"] == "pending" and made["created_by"] == "ivy"
    rid = made["id"]
    path = f"/v1/releases/{rid}"
    decided = client.post(
        f"{path}/decision",
        headers=world.auth("rex"),
        params=CASE,
        json={"approve": True, "reason": "lawful, need to know"},
    ).json()
    assert decided["status"] == "approved" and decided["decided_by"] == "rex"
    again = client.post(
        f"{path}/decision",
        headers=world.auth("rex"),
        params=CASE,
        json={"approve": False, "reason": "changed mind"},
    )
    assert again.status_code == 409
    # fulfilment happens only through a real evidence export: POST {path}/export
    # (tests/test_store_cases.py::test_release_fulfilment_through_the_api)
    assert client.get(path, headers=world.auth("aud"), params=CASE).json()["status"] == "approved"

    press = client.post(
        "/v1/releases",
        headers=world.auth("ivy"),
        params=CASE,
        json={**ask, "requesting_agency": "Daily Planet", "law_enforcement": False},
    ).json()
    assert press["status"] == "public_records"
    refused = client.post(
        f"/v1/releases/{press['id']}/decision",
        headers=world.auth("rex"),
        params=CASE,
        json={"approve": True, "reason": "why not"},
    )
    assert refused.status_code == 409 and "public-records" in refused.json()["detail"]
    assert world.last_audit().outcome == "failed"
    listed = client.get("/v1/releases", headers=world.auth("rex"), params=CASE).json()
    assert {r["id"] for r in listed} >= {rid, press["id"]}
    assert (
        client.get("/v1/releases/9999", headers=world.auth("rex"), params=CASE).status_code == 404
    )


# -- audit --------------------------------------------------------------------------------------


def test_auditor_reads_verifies_and_reports(world: World) -> None:
    client, aud = world.client, world.auth("aud")
    log = client.get("/v1/audit", headers=aud, params={**CASE, "username": "(anonymous)"}).json()
    assert all(r["username"] == "(anonymous)" for r in log["records"])
    everything = client.get("/v1/audit", headers=aud, params=CASE).json()
    seqs = [r["seq"] for r in everything["records"]]
    assert seqs == sorted(seqs) and everything["count"] == len(seqs)
    first, second = everything["records"][:2]
    assert second["prev_hash"] == first["hash"]
    verify = client.get("/v1/audit/verify", headers=aud, params=CASE).json()
    assert verify["ok"] is True and verify["problems"] == [] and verify["first_bad"] is None
    assert verify["head_key_id"].startswith("k")  # signed by the audit key
    quarter = f"{datetime.now(timezone.utc).year}Q{(datetime.now(timezone.utc).month - 1) // 3 + 1}"
    html = client.get("/v1/audit/report", headers=aud, params={**CASE, "quarter": quarter})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text.lower()
    csv = client.get(
        "/v1/audit/report", headers=aud, params={**CASE, "quarter": quarter, "format": "csv"}
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    missing = client.get("/v1/audit/report", headers=aud, params=CASE)
    assert missing.status_code == 422 and missing.json()["field"] == "quarter"
    record = world.last_audit()
    assert (record.action, record.outcome) == ("audit.report", "denied")


def test_health_checks_the_database(world: World) -> None:
    body = world.client.get("/healthz").json()
    assert body == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}
    assert orjson.loads(world.client.get("/openapi.json").content)["info"]["title"] == "plateflow"
