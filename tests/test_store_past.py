"""Past-read matching (a hotlist run over stored reads) through the API and the CLI, checked
against the flow: the same alerts, ids and advisories, the list's state rule, covert lists only
for the roles allowed, historical alerts published only when asked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis

import records
import service
from matchers import alert_id
from plateflow._cli_session import cli_client
from sinks import AlertBus
from tests.test_store_support import (
    CASE,
    END,
    TARGET,
    Env,
    expected_ids,
    glob,
    in_window,
    pages,
    shared_env_fixture,  # noqa: F401  (registers the module-scoped `shared_env` fixture)
    stored,
)

# -- past-read matching --------------------------------------------------------------------------


def _log_alerts(client: redis.Redis, hotlist: str, covert: bool = False) -> list[dict[str, Any]]:
    """The historical alerts of ``hotlist`` in the replay log (a shared Redis may hold others)."""
    return [
        alert
        for _, alert in AlertBus(client).replay(count=100_000, covert=covert)
        if alert.get("historical") and alert["hotlist"]["name"] == hotlist
    ]


def _partial_list(
    env: Env, name: str, pattern: str, reason: str, *, case_number: str, days: int
) -> records.EntryRecord:
    """A major-crime list ``name`` whose one entry, by ivy, is the partial plate ``pattern``
    (for case ``case_number``), expiring in ``days``."""
    records.create_hotlist(env.engine, name, category="major_crime", user="ivy")
    expires = (datetime.now(timezone.utc) + timedelta(days=days)).isoformat()
    return records.add_entry(
        env.engine,
        name,
        pattern,
        user="ivy",
        reason=reason,
        case_number=case_number,
        expires_at=expires,
    )


def test_past_matching_reports_and_alerts_like_the_flow(
    shared_env: Env, redis_client: redis.Redis
) -> None:
    env = shared_env
    entry = _partial_list(env, "partials", "7ab?12*", "hit and run", case_number="26-9", days=30)
    expected = expected_ids(
        env, glob("7AB?12*"), datetime.now(timezone.utc) - timedelta(days=30), END
    )
    body = {"hotlist": "partials", "plate": "7AB?12*", "days": 30, "page_size": 2}
    found = pages(env, "/v1/search/past", "ivy", body={**body, "alert": True})
    got = [read["read_id"] for page in found for read in page["reads"]]
    assert sorted(got) == sorted(expected) and found[0]["alerts_published"] == len(expected)
    assert {read["match_kind"] for page in found for read in page["reads"]} == {"partial"}
    alerts = _log_alerts(redis_client, "partials")
    assert {a["read"]["read_id"] for a in alerts} == expected
    assert all(a["historical"] is True and a["verify_before_action"] for a in alerts)
    assert {a["alert_id"] for a in alerts} == {alert_id(i, entry.entry_id) for i in expected}
    record = env.audit("reads.past")[-len(found)]
    assert (
        record.terms["alerts_published"] == len(expected) and record.terms["hotlist"] == "partials"
    )
    assert record.result_count == 2 and record.terms["total"] == len(expected)
    pages(env, "/v1/search/past", "ivy", body={**body, "alert": True})  # again: same ids
    assert {a["alert_id"] for a in _log_alerts(redis_client, "partials")} == {
        a["alert_id"] for a in alerts
    }


def test_past_matching_applies_the_lists_state_rule_and_covert_and_role_limits(
    shared_env: Env, redis_client: redis.Redis
) -> None:
    env = shared_env
    records.create_hotlist(
        env.engine, "ca-only", category="stolen_plate", user="ada", policy={"state": "require"}
    )
    records.add_entry(env.engine, "ca-only", TARGET, user="ada", reason="stolen", state="CA")
    since = datetime.now(timezone.utc) - timedelta(days=30)
    rows = [r for r in stored(env.data_dir) if in_window(r, since, END)]
    expected = {r["read_id"] for r in rows if r["plate"] == TARGET and r["state"] == "CA"}
    [page] = pages(env, "/v1/search/past", "otto", body={"hotlist": "ca-only", "plate": TARGET})
    assert {read["read_id"] for read in page["reads"]} == expected and page["alerts_published"] == 0
    resp = env.client.post(
        "/v1/search/past",
        json={**CASE, "hotlist": "ca-only", "plate": TARGET, "alert": True},
        headers=env.auth("otto"),
    )
    assert resp.status_code == 403 and "historical alerts" in resp.json()["detail"]
    assert env.audit()[-1].outcome == "denied"
    records.create_hotlist(
        env.engine, "covert-watch", category="wanted_person", user="ada", policy={"covert": True}
    )
    records.add_entry(env.engine, "covert-watch", TARGET, user="ada", reason="surveillance")
    body = {**CASE, "hotlist": "covert-watch", "plate": TARGET, "alert": True}
    resp = env.client.post("/v1/search/past", json=body, headers=env.auth("otto"))
    assert resp.status_code == 404
    resp = env.client.post("/v1/search/past", json=body, headers=env.auth("ivy"))
    assert resp.status_code == 200 and resp.json()["alerts_published"] > 0
    assert not _log_alerts(redis_client, "covert-watch")
    assert _log_alerts(redis_client, "covert-watch", covert=True)
    resp = env.client.post(
        "/v1/search/past",
        json={**CASE, "hotlist": "ca-only", "plate": "NOPE99"},
        headers=env.auth("otto"),
    )
    assert resp.status_code == 404 and "not on hotlist" in resp.json()["detail"]


def test_cli_past_search_publishes_historical_alerts(
    shared_env: Env, redis_client: redis.Redis
) -> None:
    env = shared_env
    _partial_list(env, "cli-partials", "*XYZ*", "witness", case_number="26-3", days=10)
    code, text = env.cli(
        "search",
        "past",
        "--list",
        "cli-partials",
        "--entry",
        "*xyz*",
        "--days",
        "30",
        "--alert",
        "--case-number",
        "26-3",
        as_user="ivy",
    )
    expected = expected_ids(env, glob("*XYZ*"), datetime.now(timezone.utc) - timedelta(days=30))
    assert code == 0 and f"published {len(expected)} historical alert" in text
    assert {a["read"]["read_id"] for a in _log_alerts(redis_client, "cli-partials")} == expected
    record = env.audit("reads.past")[-1]
    assert (record.client, record.result_count, record.terms["alert"]) == (cli_client(), 2, True)
    with pytest.raises(service.Forbidden, match="historical alerts"):
        env.cli(
            "search",
            "past",
            "--list",
            "cli-partials",
            "--entry",
            "*XYZ*",
            "--alert",
            "--case-number",
            "26-3",
            as_user="otto",
        )
    assert env.audit()[-1].outcome == "denied"
