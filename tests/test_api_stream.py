"""``GET /v1/alerts/stream`` over a real uvicorn with a real Redis and database, read by an
independent SSE client: exact resume with Last-Event-ID, covert separation at the HTTP level,
the gap after trimming, heartbeats, dispositions, and the audited opening and closing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import records
from api import create_app
from plateflow.settings import Settings
from records._login import token_hash
from records._schema import now_ms, sessions, write_tx
from sinks import ALERTS_LOG, COVERT_LOG, AlertBus
from tests.people import add_person
from tests.stream_support import Event, SseClient, live_server
from tests.test_sinks_alerts import make_alert

PASSWORD = "Correct-Stapler-7-Horse"
#: dora receives alerts; cora also sees covert lists; aud may not receive alerts at all.
USERS = {"dora": ["dispatcher"], "cora": ["dispatcher", "investigator"], "aud": ["auditor"]}


@dataclass
class Live:
    url: str
    engine: Engine
    bus: AlertBus
    redis: redis.Redis
    tokens: dict[str, str]
    database_url: str

    def stream(self, user: str, **params: Any) -> SseClient:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        if "last_event_id" in params:
            headers["Last-Event-ID"] = params.pop("last_event_id")
        return SseClient(f"{self.url}/v1/alerts/stream", headers=headers, params=params)

    def publish(self, *ids: str, covert: bool = False) -> None:
        alerts = [
            make_alert(i, entry_id=f"e-{i}", plate=f"P{n}{i[-3:]}", covert=covert)
            for n, i in enumerate(ids)
        ]
        self.bus.publish(alerts)

    def audit(self, action: str) -> list[records.AuditRecord]:
        return [r for r in records.read_audit(self.engine) if r.action == action]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("stream")
    url = f"sqlite:///{tmp / 'plateflow.db'}"
    engine = records.connect(url)
    for username, roles in USERS.items():
        add_person(engine, username, roles, password=PASSWORD, by="setup")
    records.create_hotlist(
        engine, "covert-ops", category="wanted", user="setup", policy={"covert": True}
    )
    settings = Settings.load(
        environ={}, data_dir=str(tmp / "data"), database_url=url, sse_heartbeat_s="0.3"
    )
    client = redis.Redis.from_url(redis_url)
    with live_server(create_app(settings, redis_url, engine=engine)) as base:
        tokens = {}
        for username in USERS:
            body = {"username": username, "password": PASSWORD}
            tokens[username] = httpx.post(f"{base}/v1/auth/login", json=body).json()["token"]
        yield Live(base, engine, AlertBus(client, cooldown_s=0), client, tokens, url)
    client.close()
    engine.dispose()


@pytest.fixture(autouse=True)
def _empty_logs(live: Live) -> None:
    live.redis.flushdb()


def ids_of(events: list[Event]) -> list[str]:
    return [e.json()["alert_id"] for e in events if e.event == "alert"]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def closes_of(live: Live, stream_id: str) -> list[records.AuditRecord]:
    return [r for r in live.audit("alerts.stream.close") if r.terms.get("stream") == stream_id]


def test_reconnect_with_last_event_id_gets_exactly_the_missed_alerts(live: Live) -> None:
    live.publish("a-001", "a-002", "a-003")
    first = live.stream("dora")
    assert first.status == 200
    assert first.response.headers["content-type"].startswith("text/event-stream")
    opening = first.next()
    assert opening.retry == 3000
    head = first.until("dispositions")
    assert ids_of(head) == ["a-001", "a-002", "a-003"]
    assert [e.id for e in head[:3]] == [e.json()["log_id"] for e in head[:3]]
    assert head[-1].json() == {"items": []}
    assert first.until("ping")[-1].comment == "ping"  # heartbeat while nothing happens
    live.publish("a-004")
    (fourth,) = first.alerts(1)
    assert fourth.json()["alert_id"] == "a-004" and fourth.json()["covert"] is False
    first.close()
    opening_record = live.audit("alerts.stream")[-1]
    wait_for(lambda: closes_of(live, opening_record.terms["stream"]), "the first close record")

    live.publish("a-005", "a-006")
    live.publish("a-007")
    second = live.stream("dora", last_event_id=fourth.id)
    events = second.until("dispositions")
    assert ids_of(events) == ["a-005", "a-006", "a-007"]  # no gap, no duplicate
    live.publish("a-008")
    assert ids_of(second.alerts(1)) == ["a-008"]
    logged = [i.decode() for i, _ in live.redis.xrange(ALERTS_LOG)]
    assert [e.id for e in events if e.event == "alert"] == logged[4:7]
    second.close()

    opened = live.audit("alerts.stream")[-2:]
    assert [o.username for o in opened] == ["dora", "dora"]
    assert [o.terms["last_event_id"] for o in opened] == [None, fourth.id]
    assert opened[0].description  # the console's standing justification
    for record, delivered in zip(opened, (4, 4), strict=True):
        (close,) = wait_for(lambda r=record: closes_of(live, r.terms["stream"]), "close record")
        assert close.result_count == delivered
        assert close.terms["delivered"] == delivered
        assert close.client == "127.0.0.1"


def test_covert_alerts_reach_only_the_covert_right_and_resume_over_both_logs(
    live: Live,
) -> None:
    # the two logs are merged by stream id, whose unit is the millisecond: publish in distinct ones
    for alert_id in ("g-001", "c-001", "g-002", "c-002"):
        live.publish(alert_id, covert=alert_id.startswith("c"))
        time.sleep(0.003)

    refused = httpx.get(
        f"{live.url}/v1/alerts/stream",
        params={"covert": "true"},
        headers={"Authorization": f"Bearer {live.tokens['dora']}"},
    )
    assert refused.status_code == 403
    assert "hotlists:view_covert" in refused.json()["detail"]
    plain = live.stream("dora")
    seen = plain.until("dispositions")
    assert ids_of(seen) == ["g-001", "g-002"]
    assert all(not e.json()["covert"] for e in seen if e.event == "alert")
    plain.close()
    # the covert right does not show covert alerts unless asked
    cora_plain = live.stream("cora")
    assert ids_of(cora_plain.until("dispositions")) == ["g-001", "g-002"]
    cora_plain.close()

    covert = live.stream("cora", covert="true")
    got = covert.until("dispositions")
    assert ids_of(got) == ["g-001", "c-001", "g-002", "c-002"]
    assert [e.json()["covert"] for e in got if e.event == "alert"] == [False, True, False, True]
    assert all("_" in (e.id or "") for e in got if e.event == "alert")
    resume_at = [e for e in got if e.event == "alert"][1].id  # g-002 and c-002 were missed
    covert.close()
    live.publish("g-003")
    time.sleep(0.003)
    live.publish("c-003", covert=True)
    again = live.stream("cora", covert="true", last_event_id=resume_at)
    assert ids_of(again.until("dispositions")) == ["g-002", "c-002", "g-003", "c-003"]
    again.close()
    # a covert cursor given to a session without covert resumes the general log only
    general = live.stream("dora", last_event_id=resume_at)
    assert ids_of(general.until("dispositions")) == ["g-002", "g-003"]
    general.close()


def test_a_trimmed_cursor_gets_a_gap_then_the_oldest_kept(live: Live) -> None:
    live.publish("t-001", "t-002", "t-003", "t-004", "t-005")
    ids = [i.decode() for i, _ in live.redis.xrange(ALERTS_LOG)]
    live.redis.xtrim(ALERTS_LOG, maxlen=2, approximate=False)
    stream = live.stream("dora", last_event_id=ids[0])
    events = stream.until("dispositions")
    assert events[1].event == "gap"
    assert events[1].json()["after"] == ids[0]
    assert events[1].json()["oldest"] == ids[3]
    assert ids_of(events) == ["t-004", "t-005"]
    stream.close()
    # the newest id kept is no gap
    caught_up = live.stream("dora", last_event_id=ids[3])
    events = caught_up.until("dispositions")
    assert ids_of(events) == ["t-005"] and not [e for e in events if e.event == "gap"]
    caught_up.close()


def test_disposition_events_and_snapshot_travel_on_the_stream(live: Live) -> None:
    live.publish("d-001")
    live.publish("d-cov", covert=True)
    ids = {
        a: i.decode()
        for log in (ALERTS_LOG, COVERT_LOG)
        for i, f in live.redis.xrange(log)
        for a in [orjson.loads(f[b"alert"])["alert_id"]]
    }

    def claim(user: str, alert_id: str) -> httpx.Response:
        return httpx.post(
            f"{live.url}/v1/alerts/{alert_id}/disposition",
            json={"log_id": ids[alert_id], "to": "claimed"},
            headers={"Authorization": f"Bearer {live.tokens[user]}"},
        )

    assert claim("dora", "d-001").status_code == 200
    assert claim("cora", "d-cov").status_code == 200
    stream = live.stream("cora", replay="0")  # may see covert lists, but did not ask
    snapshot = stream.until("dispositions")[-1].json()["items"]
    assert [(i["alert_id"], i["state"], i["by"]) for i in snapshot] == [
        ("d-001", "claimed", "dora")
    ]
    live.publish("d-002")
    (alert,) = stream.alerts(1)
    ids["d-002"] = alert.json()["log_id"]
    assert claim("dora", "d-002").status_code == 200
    event = stream.until("disposition")[-1]
    assert event.id is None
    assert (event.json()["alert_id"], event.json()["state"]) == ("d-002", "claimed")
    stream.close()
    covert = live.stream("cora", replay="0", covert="true")
    items = covert.until("dispositions")[-1].json()["items"]
    assert {i["alert_id"] for i in items} == {"d-001", "d-cov", "d-002"}
    covert.close()


def test_a_stream_whose_queue_overflows_catches_up_from_redis(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service._fanout.QUEUE_MAX", 3)
    stream = live.stream("dora", replay="0")
    stream.until("dispositions")
    burst = [f"o-{i:03d}" for i in range(12)]
    live.publish(*burst)  # one XADD script: the reader hands all twelve at once
    live.publish("o-100")
    got = ids_of(stream.alerts(13))
    assert got == [*burst, "o-100"]
    stream.close()


def test_a_browser_streams_with_its_session_cookie(live: Live) -> None:
    body = {"username": "dora", "password": PASSWORD, "cookie": True}
    login = httpx.post(f"{live.url}/v1/auth/login", json=body)
    cookie = f"plateflow_session={login.cookies['plateflow_session']}"
    live.publish("b-001")
    stream = SseClient(f"{live.url}/v1/alerts/stream", headers={"Cookie": cookie})
    assert stream.status == 200  # a GET: no CSRF header needed
    assert ids_of(stream.until("dispositions")) == ["b-001"]
    stream.close()


def test_refusals_before_the_stream_opens(live: Live) -> None:
    url = f"{live.url}/v1/alerts/stream"
    assert httpx.get(url).status_code == 401
    denied = httpx.get(url, headers={"Authorization": f"Bearer {live.tokens['aud']}"})
    assert denied.status_code == 403
    bad = httpx.get(
        url, headers={"Authorization": f"Bearer {live.tokens['dora']}", "Last-Event-ID": "x-1"}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "last_event_id"
    too_many = httpx.get(
        url, params={"replay": 5000}, headers={"Authorization": f"Bearer {live.tokens['dora']}"}
    )
    assert too_many.status_code == 422


def test_a_logout_ends_the_stream(live: Live, tmp_path: Path) -> None:
    body = {"username": "dora", "password": PASSWORD}
    token = httpx.post(f"{live.url}/v1/auth/login", json=body).json()["token"]
    stream = SseClient(f"{live.url}/v1/alerts/stream", headers={"Authorization": f"Bearer {token}"})
    stream.until("dispositions")
    httpx.post(f"{live.url}/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    end = stream.until("end")[-1]
    assert "session" in end.json()["reason"]
    with pytest.raises(EOFError):
        stream.next()
    stream.close()


def test_an_open_stream_is_use_that_keeps_the_session_from_going_idle(live: Live) -> None:
    body = {"username": "dora", "password": PASSWORD}
    token = httpx.post(f"{live.url}/v1/auth/login", json=body).json()["token"]
    idle_ms = 1800 * 1000  # PLATEFLOW_SESSION_IDLE_S's default
    digest = token_hash(token)

    def last_seen() -> int:
        with live.engine.connect() as conn:
            query = sa.select(sessions.c.last_seen_at).where(sessions.c.token_hash == digest)
            return int(conn.execute(query).scalar_one())

    stream = SseClient(f"{live.url}/v1/alerts/stream", headers={"Authorization": f"Bearer {token}"})
    stream.until("dispositions")
    # the dispatcher has done nothing but watch for all but a second of the idle time
    with write_tx(live.engine) as conn:
        stale = now_ms() - idle_ms + 1000
        conn.execute(
            sa.update(sessions).where(sessions.c.token_hash == digest).values(last_seen_at=stale)
        )
    stream.until("ping")
    stream.until("ping")  # a heartbeat that began after the update has checked the session
    assert last_seen() > stale + 60_000  # the watching counted as use
    time.sleep(1.5)  # past the moment the session would have gone idle
    me = httpx.get(f"{live.url}/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert stream.until("ping")[-1].comment == "ping"  # and the stream goes on
    stream.close()


def test_plateflow_subscribe_follows_the_stream_after_plateflow_login(
    live: Live, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}
    env |= {
        "PLATEFLOW_DATABASE_URL": live.database_url,
        "PLATEFLOW_DATA_DIR": str(tmp_path / "data"),
        "PLATEFLOW_API_URL": live.url,
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    cli = [sys.executable, "-m", "plateflow.cli"]
    run = subprocess.run(
        [*cli, "login", "dora", "--password-stdin"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    live.publish("s-001")
    follow = subprocess.Popen(
        [*cli, "subscribe", "--json", "--replay", "1", "--count", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()  # the replayed alert: the stream is open
        live.publish("s-002")
        stdout, stderr = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert follow.returncode == 0, stderr
    alerts = [orjson.loads(line) for line in [first, *stdout.splitlines()]]
    assert [a["alert_id"] for a in alerts] == ["s-001", "s-002"]
    assert live.audit("alerts.stream")[-1].username == "dora"
    # without a login the command says what to do
    env["XDG_STATE_HOME"] = str(tmp_path / "nobody")
    refused = subprocess.run(
        [*cli, "subscribe"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0 and "plateflow login" in refused.stderr
