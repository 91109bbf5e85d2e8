"""The alert bus against a real Redis: pub/sub delivery, covert separation, cooldown, replay."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import redis

import sinks


def make_alert(
    alert_id: str, entry_id: str = "e-1", plate: str = "ABC123", covert: bool = False
) -> dict[str, Any]:
    read = {
        "read_id": f"r-{alert_id}",
        "camera_id": "cam-1",
        "plate": plate,
        "plate_raw": plate,
        "ts": 1_700_000_000_000,
        "confidence": 0.9,
        "state": "CA",
        "lat": None,
        "lon": None,
        "candidates": [],
        "agency": None,
        "image_ref": None,
    }
    return {
        "alert_id": alert_id,
        "read": read,
        "hotlist": {"name": "ncic", "category": "stolen", "priority": 0, "covert": covert},
        "entry": {
            "entry_id": entry_id,
            "plate": plate,
            "state": "CA",
            "reason": "stolen vehicle",
            "case_number": "24-1",
            "entered_by": "officer",
            "expires_at": None,
        },
        "match": {
            "kind": "exact",
            "differences": 0,
            "substitutions": 0,
            "edits": [],
            "matched_text": plate,
            "via_candidate": False,
        },
        "state_mismatch": False,
        "verify_before_action": True,
        "advisories": ["verify through CLETS before action"],
        "emitted_at": 1_700_000_000_500,
        "sighting_of": None,
    }


def collect(pubsub: redis.client.PubSub, want: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            got.append({"channel": message["channel"].decode(), **orjson.loads(message["data"])})
    return got


@pytest.fixture()
def subscriber(redis_client: redis.Redis) -> Any:
    pubsub = redis_client.pubsub()
    pubsub.subscribe(sinks.ALERTS_CHANNEL, sinks.COVERT_CHANNEL)
    for _ in range(2):  # wait for both subscribe confirmations
        assert pubsub.get_message(timeout=2.0) is not None
    yield pubsub
    pubsub.close()


def test_publish_reaches_a_real_subscriber(redis_client: redis.Redis, subscriber: Any) -> None:
    bus = sinks.AlertBus(redis_client)
    published = bus.publish([make_alert("a1"), make_alert("a2", entry_id="e-2")])
    assert [a["alert_id"] for a in published] == ["a1", "a2"]
    received = collect(subscriber, 2)
    assert [m["alert_id"] for m in received] == ["a1", "a2"]
    assert all(m["channel"] == sinks.ALERTS_CHANNEL for m in received)
    assert received[0]["verify_before_action"] is True
    assert received[0]["sighting_of"] is None
    logged = bus.replay()
    assert [alert["alert_id"] for _, alert in logged] == ["a1", "a2"]


def test_covert_alerts_stay_off_the_general_channel_and_log(
    redis_client: redis.Redis, subscriber: Any
) -> None:
    bus = sinks.AlertBus(redis_client)
    bus.publish([make_alert("open"), make_alert("secret", entry_id="e-9", covert=True)])
    received = collect(subscriber, 2)
    by_channel = {m["alert_id"]: m["channel"] for m in received}
    assert by_channel == {"open": sinks.ALERTS_CHANNEL, "secret": sinks.COVERT_CHANNEL}
    assert [a["alert_id"] for _, a in bus.replay()] == ["open"]
    assert [a["alert_id"] for _, a in bus.replay(covert=True)] == ["secret"]
    general_log = redis_client.xrange(sinks.ALERTS_LOG)
    assert all(b"secret" not in fields[b"alert"] for _, fields in general_log)


def test_repeat_hit_within_cooldown_is_a_sighting(redis_client: redis.Redis) -> None:
    bus = sinks.AlertBus(redis_client, cooldown_s=60)
    first = bus.publish([make_alert("a1")])[0]
    assert first["sighting_of"] is None
    # A second worker (new bus, same Redis) sees the cooldown too.
    second = sinks.AlertBus(redis_client, cooldown_s=60).publish([make_alert("a2")])[0]
    assert second["sighting_of"] == "a1"
    # Another entry or another plate is a new alert.
    other = bus.publish([make_alert("a3", entry_id="e-2"), make_alert("a4", plate="XYZ9")])
    assert [a["sighting_of"] for a in other] == [None, None]
    # Two hits of one pair in a single batch: the first wins.
    batch = bus.publish([make_alert("b1", entry_id="e-5"), make_alert("b2", entry_id="e-5")])
    assert [a["sighting_of"] for a in batch] == [None, "b1"]
    ttl = redis_client.pttl(sinks.cooldown_key("e-1", "ABC123"))
    assert 0 < ttl <= 60_000


def test_replay_of_the_same_alert_id_stays_an_alert(redis_client: redis.Redis) -> None:
    bus = sinks.AlertBus(redis_client, cooldown_s=60)
    once = bus.publish([make_alert("a1")])
    again = bus.publish([make_alert("a1")])
    assert once == again
    assert again[0]["sighting_of"] is None
    # Replaying a sighting gives the same sighting.
    sighting = bus.publish([make_alert("a2")])
    assert bus.publish([make_alert("a2")]) == sighting


def test_cooldown_expires(redis_client: redis.Redis) -> None:
    bus = sinks.AlertBus(redis_client, cooldown_s=0.2)
    bus.publish([make_alert("a1")])
    time.sleep(0.35)
    assert bus.publish([make_alert("a2")])[0]["sighting_of"] is None


def test_zero_cooldown_publishes_everything(redis_client: redis.Redis) -> None:
    bus = sinks.AlertBus(redis_client, cooldown_s=0)
    out = bus.publish([make_alert("a1"), make_alert("a2")])
    assert [a["sighting_of"] for a in out] == [None, None]
    assert redis_client.keys("plateflow:cooldown:*") == []


def test_replay_pages_after_an_id_and_log_is_capped(redis_client: redis.Redis) -> None:
    bus = sinks.AlertBus(redis_client, log_maxlen=50, cooldown_s=0)
    bus.publish([make_alert(f"a{i}", entry_id=f"e{i}") for i in range(300)])
    assert redis_client.xlen(sinks.ALERTS_LOG) < 300  # approximate trim happened
    page = bus.replay(count=10)
    assert len(page) == 10
    rest = bus.replay(after=page[-1][0], count=10_000)
    ids = [a["alert_id"] for _, a in page + rest]
    assert ids == sorted(set(ids), key=lambda x: int(x[1:]))  # ordered, no repeats
    assert ids[-1] == "a299"
    assert bus.replay(after=rest[-1][0]) == []


def test_bad_settings_are_refused(redis_client: redis.Redis) -> None:
    with pytest.raises(sinks.SinksError, match="log_maxlen"):
        sinks.AlertBus(redis_client, log_maxlen=0)
    with pytest.raises(sinks.SinksError, match="cooldown_s"):
        sinks.AlertBus(redis_client, cooldown_s=-1)


def test_alert_logs_and_dead_letters_are_trimmed_by_age_too(redis_client: redis.Redis) -> None:
    for stream in (sinks.ALERTS_LOG, sinks.COVERT_LOG, sinks.DEADLETTER_STREAM):
        redis_client.xadd(stream, {"alert": b"{}", "raw": b"old"}, id="1000-0")  # in 1970
    bus = sinks.AlertBus(redis_client, cooldown_s=0, log_keep_s=3600)
    bus.publish([make_alert("a1", entry_id="e1"), make_alert("a2", entry_id="e2", covert=True)])
    for stream in (sinks.ALERTS_LOG, sinks.COVERT_LOG):
        ids = [entry_id for entry_id, _ in redis_client.xrange(stream)]
        assert len(ids) == 1 and ids[0] != b"1000-0", stream
    sinks.dead_letter(redis_client, [(b"{bad", "not JSON")], source="ingest")
    assert sinks.trim_dead_letters(redis_client, 3600) == 1
    [(_, fields)] = redis_client.xrange(sinks.DEADLETTER_STREAM)
    assert fields[b"raw"] == b"{bad"
    assert sinks.trim_dead_letters(redis_client, 0) == 0  # 0: by length only
