"""The dev overlay's Redis users (k8s/overlays/dev/users.acl) in a real Redis: each service
can do its job and nothing the others do. The flow's user runs every cluster test
(tests/test_cluster.py); here the API's and the ingest's, and the refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import sinks
from sinks import (
    ALERTS_LOG,
    HOTLISTS_CHANGED,
    OFFSETS_KEY,
    AlertBus,
    StreamProgress,
    append_reads,
    stream_key,
)
from tests.cluster_support import LocalRedis

READ = {"read_id": "r1", "camera_id": "cam-1", "plate": "7ABC123", "ts": 1_795_867_200_000,
        "confidence": 0.9}  # fmt: skip


def alert(read_id: str) -> dict[str, object]:
    return {
        "alert_id": f"a-{read_id}",
        "read": {**READ, "read_id": read_id},
        "hotlist": {"name": "stolen", "category": "stolen_vehicle", "priority": 1},
        "entry": {"entry_id": "stolen:1", "plate": "7ABC123"},
        "match": {"kind": "exact"},
    }


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[LocalRedis]:
    local = LocalRedis(tmp_path / "redis").start()
    yield local
    local.stop()


def connect(server: LocalRedis, user: str) -> redis.Redis:
    return redis.Redis.from_url(server.url(user), socket_timeout=5)


def test_ingest_appends_reads_and_nothing_else(server: LocalRedis) -> None:
    ingest = connect(server, "ingest")
    append_reads(ingest, [READ], 12)
    assert sum(server.client().xlen(stream_key(p)) for p in range(12)) == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        ingest.xrange(ALERTS_LOG)
    with pytest.raises(redis.exceptions.NoPermissionError):
        ingest.xread({stream_key(0): "0-0"})  # appending is not reading
    with pytest.raises(redis.exceptions.NoPermissionError):
        ingest.publish(HOTLISTS_CHANGED, "stolen")
    with pytest.raises(redis.exceptions.NoPermissionError):
        ingest.hset(OFFSETS_KEY, "0", "1-0")


def test_api_reads_alert_logs_publishes_and_announces_but_never_touches_reads(
    server: LocalRedis,
) -> None:
    flow = connect(server, "flow")
    AlertBus(flow).publish([alert("r1")])  # the flow's script: cooldown, PUBLISH, XADD
    api = connect(server, "api")
    bus = AlertBus(api)
    assert [a["alert_id"] for _, a in bus.replay()] == ["a-r1"]
    published = bus.publish([alert("r2")])  # past-read matching publishes historical alerts
    assert published[0]["sighting_of"] == "a-r1"  # the same cooldown, across services
    api.publish(HOTLISTS_CHANGED, "stolen")
    # the alert stream to consoles: XREAD over the logs and the disposition events
    tails = [sinks.ALERTS_LOG, sinks.COVERT_LOG, sinks.DISPOSITION_EVENTS]
    tails.append(sinks.COVERT_DISPOSITION_EVENTS)
    assert api.xread(dict.fromkeys(tails, "0-0"), count=10)
    assert api.xinfo_stream(sinks.ALERTS_LOG)["length"] >= 1
    for refused in (
        lambda: api.xrange(stream_key(0)),
        lambda: api.xadd(stream_key(0), {"data": b"{}"}),
        lambda: StreamProgress(api).committed(0),
        lambda: api.keys("*"),
        lambda: api.flushdb(),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            refused()


def test_default_user_is_off(server: LocalRedis) -> None:
    anonymous = redis.Redis(port=server.port, socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
