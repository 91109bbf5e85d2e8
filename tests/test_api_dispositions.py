"""The disposition routes end to end: a real app on the real database and Redis, alerts on the
real alert bus, logged-in members of each role."""

from __future__ import annotations

import orjson
import redis

import records
import sinks
from tests.dispositions_support import alert, publish
from tests.people import add_person
from tests.test_api_support import (
    PASSWORD,
    World,
    login_all,
    world_fixture,  # noqa: F401  (registers the module-scoped `world` fixture)
)

URL = "/v1/alerts/{}/disposition"


def _post(world: World, user: str, alert_id: str, body: dict[str, object]) -> object:
    return world.client.post(URL.format(alert_id), json=body, headers=world.auth(user))


def test_a_hit_is_claimed_verified_and_confirmed_over_http(
    world: World, redis_client: redis.Redis
) -> None:
    ids = publish(redis_client, alert("a-h1"), alert("a-h2", priority=4))
    log_id = ids["a-h1"]
    resp = _post(world, "dora", "a-h1", {"log_id": log_id, "to": "claimed"})
    assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert (body["state"], body["claimed_by"], body["from"], body["log_id"]) == (
        "claimed",
        "dora",
        "new",
        log_id,
    )
    taken = _post(world, "otto", "a-h1", {"log_id": log_id, "to": "verifying"})
    assert taken.status_code == 409  # type: ignore[attr-defined]
    assert "claimed by dora" in taken.json()["detail"]  # type: ignore[attr-defined]
    missing = _post(world, "dora", "a-h1", {"log_id": log_id, "to": "rejected"})
    assert missing.status_code == 422  # type: ignore[attr-defined]
    assert missing.json()["field"] == "reason"  # type: ignore[attr-defined]
    other = _post(world, "dora", "a-h1", {"log_id": log_id, "to": "rejected", "reason": "other"})
    assert other.json()["field"] == "reason_text"  # type: ignore[attr-defined]
    verifying = _post(world, "dora", "a-h1", {"log_id": log_id, "to": "verifying"})
    assert verifying.json()["deadline_at"].endswith("Z")  # type: ignore[attr-defined]
    no_action = _post(world, "dora", "a-h1", {"log_id": log_id, "to": "confirmed"})
    assert no_action.status_code == 422  # type: ignore[attr-defined]
    assert no_action.json()["field"] == "action"  # type: ignore[attr-defined]
    done = _post(
        world, "dora", "a-h1", {"log_id": log_id, "to": "confirmed", "action": "officer_dispatched"}
    )
    assert done.status_code == 200 and done.json()["state"] == "confirmed"  # type: ignore[attr-defined]
    no_note = _post(world, "dora", "a-h1", {"log_id": log_id, "to": "undo"})
    assert no_note.json()["field"] == "note"  # type: ignore[attr-defined]
    again = _post(world, "dora", "a-h1", {"log_id": log_id, "to": "claimed"})
    assert again.status_code == 409  # type: ignore[attr-defined]
    states = world.client.get("/v1/alerts/dispositions", headers=world.auth("otto"))
    assert states.status_code == 200, states.text
    found = {i["alert_id"]: i for i in states.json()["items"]}
    assert found["a-h1"]["state"] == "confirmed" and "a-h2" not in found
    assert found["a-h1"]["action"] == "officer_dispatched"
    events = [orjson.loads(f[b"event"]) for _, f in redis_client.xrange(sinks.DISPOSITION_EVENTS)]
    assert [e["state"] for e in events] == ["claimed", "verifying", "confirmed"]
    assert events[-1] == done.json()  # type: ignore[attr-defined]
    audit = [r for r in records.read_audit(world.engine) if r.action == "alerts.disposition"]
    assert [r.outcome for r in audit[-9:]] == [
        "allowed", "failed", "failed", "failed", "allowed", "failed", "allowed", "failed", "failed",
    ]  # fmt: skip
    assert all(r.client for r in audit)


def test_bad_requests_are_4xx_with_a_message(world: World, redis_client: redis.Redis) -> None:
    ids = publish(redis_client, alert("a-h3"))
    cases = [
        ("aud", "a-h3", {"log_id": ids["a-h3"], "to": "claimed"}, 403, None),
        ("dora", "a-h3", {"log_id": "yesterday", "to": "claimed"}, 422, "log_id"),
        ("dora", "a-h3", {"log_id": ids["a-h3"], "to": "lost"}, 422, "to"),
        ("dora", "a-h3", {"to": "claimed"}, 422, "log_id"),
        ("dora", "a-nope", {"log_id": ids["a-h3"], "to": "claimed"}, 404, "alert_id"),
    ]
    for user, alert_id, body, status, field in cases:
        resp = _post(world, user, alert_id, body)
        assert resp.status_code == status, (body, resp.text)  # type: ignore[attr-defined]
        assert resp.json()["detail"]  # type: ignore[attr-defined]
        if field:
            assert resp.json()["field"] == field, resp.text  # type: ignore[attr-defined]
    anonymous = world.client.post(URL.format("a-h3"), json={"log_id": "1-0", "to": "claimed"})
    assert anonymous.status_code == 401
    naive = world.client.get(
        "/v1/alerts/dispositions",
        params={"since": "2026-12-01T00:00:00"},
        headers=world.auth("dora"),
    )
    assert naive.status_code == 422 and naive.json()["field"] == "since"


def test_covert_hits_are_404_without_the_right(world: World, redis_client: redis.Redis) -> None:
    add_person(world.engine, "cleo", ["dispatcher", "investigator"], password=PASSWORD)
    world.tokens.update(login_all(world.client, ["cleo"]))
    ids = publish(redis_client, alert("a-hc", hotlist="covert-ops", covert=True))
    body = {"log_id": ids["a-hc"], "to": "claimed"}
    hidden = _post(world, "dora", "a-hc", body)
    assert hidden.status_code == 404, hidden.text  # type: ignore[attr-defined]
    assert "covert" not in hidden.json()["detail"]  # type: ignore[attr-defined]
    shown = _post(world, "cleo", "a-hc", body)
    assert shown.status_code == 200 and shown.json()["covert"] is True  # type: ignore[attr-defined]
    for user, expect in (("dora", False), ("cleo", True)):
        items = world.client.get("/v1/alerts/dispositions", headers=world.auth(user)).json()
        assert ("a-hc" in {i["alert_id"] for i in items["items"]}) is expect
    assert redis_client.xlen(sinks.COVERT_DISPOSITION_EVENTS) == 1
    assert redis_client.xlen(sinks.DISPOSITION_EVENTS) == 0


def test_administrators_manage_the_reason_and_action_lists(world: World) -> None:
    lists = world.client.get("/v1/dispositions/lists", headers=world.auth("dora"))
    assert lists.status_code == 200
    assert lists.json()["reasons"][0] == {
        "code": "misread",
        "label": "Misread plate (OCR error)",
        "needs_text": False,
    }
    assert "no_action" in {a["code"] for a in lists.json()["actions"]}
    new = {"code": "tow_ordered", "label": "Vehicle towed"}
    refused = world.client.post(
        "/v1/dispositions/lists/actions", json=new, headers=world.auth("dora")
    )
    assert refused.status_code == 403
    added = world.client.post("/v1/dispositions/lists/actions", json=new, headers=world.auth("ada"))
    assert added.status_code == 201, added.text
    assert "tow_ordered" in {a["code"] for a in added.json()["actions"]}
    dup = world.client.post("/v1/dispositions/lists/actions", json=new, headers=world.auth("ada"))
    assert dup.status_code == 409
    gone = world.client.delete(
        "/v1/dispositions/lists/actions/tow_ordered", headers=world.auth("ada")
    )
    assert gone.status_code == 200 and "tow_ordered" not in {
        a["code"] for a in gone.json()["actions"]
    }
    unknown = world.client.delete("/v1/dispositions/lists/reasons/nope", headers=world.auth("ada"))
    assert unknown.status_code == 404 and "no reason 'nope'" in unknown.json()["detail"]
    bad = world.client.post("/v1/dispositions/lists/colours", json=new, headers=world.auth("ada"))
    assert bad.status_code == 422
    bad_code = world.client.post(
        "/v1/dispositions/lists/reasons",
        json={"code": "A B", "label": "x"},
        headers=world.auth("ada"),
    )
    assert bad_code.status_code == 422 and "lower-case" in bad_code.json()["detail"]
