"""Camera ingest over HTTP with the real Redis: canonical reads, auth, limits, health, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from api import create_app, ingest_objects
from sinks import partition_for
from tests.test_api_support import (  # api_fixture registers the `api` fixture
    PARTITIONS,
    TOKEN,
    all_reads,
    api_fixture,  # noqa: F401
    dead_letters,
    make_settings,
    read,
    stream_reads,
)


def test_one_read_lands_normalised_on_its_camera_partition(
    api: TestClient, redis_client: redis.Redis
) -> None:
    resp = api.post("/v1/reads", json=read(plate="abc-1234", state="ca"))
    assert resp.status_code == 202
    assert resp.json() == {"accepted": 1, "rejected": [], "ignored": 0}
    stored = stream_reads(redis_client, partition_for("cam-elm-01", PARTITIONS))
    assert len(stored) == 1
    assert stored[0]["plate"] == "ABC1234"
    assert stored[0]["plate_raw"] == "abc-1234"
    assert stored[0]["state"] == "CA"
    assert stored[0]["ts"] == 1795867200000
    assert stored[0]["read_id"].startswith("r-")
    assert dead_letters(redis_client) == []


def test_batch_splits_good_and_bad_and_dead_letters_the_bad(
    api: TestClient, redis_client: redis.Redis
) -> None:
    batch = [
        read(plate="7XYZ119"),
        read(plate="X"),  # too short
        "not an object",
        read(confidence=93),  # a percentage
        read(camera="cam-oak-02", plate="5KLM882", ts=1795867201000),
    ]
    resp = api.post("/v1/reads", json=batch)
    assert resp.status_code == 202
    body = resp.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3]
    reasons = [r["reason"] for r in body["rejected"]]
    assert reasons[0].startswith("plate: 'X' normalises to 'X'")
    assert reasons[1].startswith("read: must be a JSON object")
    assert reasons[2].startswith("confidence: 93 is outside 0..1")
    assert sorted(r["plate"] for r in all_reads(redis_client)) == ["5KLM882", "7XYZ119"]
    dead = dead_letters(redis_client)
    assert [d["reason"] for d in dead] == reasons
    assert all(d["source"] == "api:reads" for d in dead)
    assert orjson.loads(dead[0]["raw"])["plate"] == "X"
    assert orjson.loads(dead[1]["raw"]) == "not an object"


def test_each_camera_keeps_its_partition_and_order(
    api: TestClient, redis_client: redis.Redis
) -> None:
    cameras = [f"cam-{i:02d}" for i in range(12)]
    batch = [
        read(camera=cam, plate=f"P{i:03d}{j}", ts=1795867200000 + j * 1000)
        for i, cam in enumerate(cameras)
        for j in range(5)
    ]
    resp = api.post("/v1/reads", json=batch)
    assert resp.json()["accepted"] == 60
    seen = set()
    for p in range(PARTITIONS):
        reads = stream_reads(redis_client, p)
        for r in reads:
            assert partition_for(r["camera_id"], PARTITIONS) == p
        for cam in {r["camera_id"] for r in reads}:
            mine = [r["ts"] for r in reads if r["camera_id"] == cam]
            assert mine == sorted(mine) and len(mine) == 5
            seen.add(cam)
    assert seen == set(cameras)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "needle"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"", "application/json", 400, "empty"),
        (b'"a string"', "application/json", 422, "got a string"),
        (b"42", "application/json", 422, "got a number"),
        (b"null", "application/json", 422, "got null"),
    ],
)
def test_bodies_that_are_not_reads(
    api: TestClient,
    redis_client: redis.Redis,
    body: bytes,
    content_type: str,
    status: int,
    needle: str,
) -> None:
    resp = api.post("/v1/reads", content=body, headers={"Content-Type": content_type})
    assert resp.status_code == status
    assert needle in resp.json()["detail"]
    assert all_reads(redis_client) == [] and dead_letters(redis_client) == []


def test_too_many_reads_is_413_and_stores_nothing(
    api: TestClient, redis_client: redis.Redis
) -> None:
    resp = api.post("/v1/reads", json=[read()] * 10_001)
    assert resp.status_code == 413
    assert "limit is 10,000" in resp.json()["detail"]
    assert all_reads(redis_client) == []
    assert api.post("/v1/reads", json=[read()] * 10_000).json()["accepted"] == 10_000


def test_empty_array_is_accepted_as_nothing(api: TestClient) -> None:
    resp = api.post("/v1/reads", json=[])
    assert resp.status_code == 202
    assert resp.json() == {"accepted": 0, "rejected": [], "ignored": 0}


@pytest.mark.parametrize("path", ["/v1/reads", "/v1/ingest/openalpr", "/v1/ingest/platerecognizer"])
def test_ingest_refuses_without_the_right_token(
    api: TestClient, redis_client: redis.Redis, path: str
) -> None:
    missing = api.post(path, json=read(), headers={"X-Plateflow-Token": ""})
    assert missing.status_code == 401
    assert "missing ingest token" in missing.json()["detail"]
    wrong = api.post(path, json=read(), headers={"X-Plateflow-Token": "x" * 26})
    assert wrong.status_code == 401
    assert "not one of the configured ingest tokens" in wrong.json()["detail"]
    assert TOKEN not in wrong.text
    assert all_reads(redis_client) == [] and dead_letters(redis_client) == []


def test_authorization_header_forms_are_accepted(api: TestClient) -> None:
    for scheme in ("Token", "Bearer"):
        resp = api.post(
            "/v1/reads",
            json=read(),
            headers={"X-Plateflow-Token": "", "Authorization": f"{scheme} {TOKEN}"},
        )
        assert resp.status_code == 202, resp.text


def test_ingest_is_closed_when_no_token_is_configured(
    data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    with TestClient(create_app(make_settings(data_dir, tokens=""), redis_url)) as client:
        resp = client.post("/v1/reads", json=read(), headers={"X-Plateflow-Token": TOKEN})
    assert resp.status_code == 401
    assert "PLATEFLOW_INGEST_TOKENS" in resp.json()["detail"]
    assert all_reads(redis_client) == []


def test_second_token_of_several_is_accepted(
    data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    other = "fleet-b-token-fedcba9876543210"
    settings = make_settings(data_dir, tokens=f"{TOKEN},{other}")
    with TestClient(create_app(settings, redis_url)) as client:
        resp = client.post("/v1/reads", json=read(), headers={"X-Plateflow-Token": other})
    assert resp.status_code == 202


def test_healthz_pings_redis(api: TestClient, data_dir: Path) -> None:
    resp = api.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}
    # A Redis that is not there: port 1 on localhost refuses at once.
    with TestClient(create_app(make_settings(data_dir), "redis://127.0.0.1:1/0")) as down:
        resp = down.get("/healthz")
        assert resp.status_code == 503
        assert resp.json()["checks"]["redis"] == "ConnectionError"
        ingest = down.post("/v1/reads", json=read(), headers={"X-Plateflow-Token": TOKEN})
        assert ingest.status_code == 503
        assert "nothing was stored" in ingest.json()["detail"]


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + " ") and not want:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_accepted_rejected_and_time_requests(api: TestClient) -> None:
    before = api.get("/metrics").text
    api.post("/v1/reads", json=[read(), read(plate="Q"), read(confidence=7)])
    after = api.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def delta(name: str, **labels: str) -> float:
        return _sample(text, name, labels) - _sample(before, name, labels)

    assert delta("plateflow_api_reads_accepted_total", source="api:reads") == 1
    assert delta("plateflow_api_reads_rejected_total", source="api:reads", field="plate") == 1
    assert delta("plateflow_api_reads_rejected_total", source="api:reads", field="confidence") == 1
    assert (
        delta("plateflow_api_request_duration_seconds_count", route="/v1/reads", status="202") == 1
    )
    assert delta("plateflow_api_ingest_batch_reads_count", source="api:reads") == 1


def test_auth_failures_are_counted(api: TestClient) -> None:
    before = _sample(
        api.get("/metrics").text,
        "plateflow_api_auth_failures_total",
        {"kind": "ingest", "reason": "invalid"},
    )
    api.post("/v1/reads", json=read(), headers={"X-Plateflow-Token": "y" * 20})
    after = _sample(
        api.get("/metrics").text,
        "plateflow_api_auth_failures_total",
        {"kind": "ingest", "reason": "invalid"},
    )
    assert after - before == 1


def test_openapi_documents_the_ingest_endpoints(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    for path in ("/v1/reads", "/v1/ingest/openalpr", "/v1/ingest/platerecognizer"):
        op = doc["paths"][path]["post"]
        assert {"202", "400", "401", "413", "422", "503"} <= set(op["responses"])
        assert "requestBody" in op
        assert op["security"] == [{"IngestToken": []}]
    assert (
        "multipart/form-data"
        in (doc["paths"]["/v1/ingest/platerecognizer"]["post"]["requestBody"]["content"])
    )


# -- the core without HTTP ----------------------------------------------------------------------


def test_ingest_objects_without_http(redis_client: redis.Redis) -> None:
    result = ingest_objects(
        redis_client, [read(), read(plate="??"), read(camera="cam-2")], PARTITIONS, "test"
    )
    assert result.accepted == 2
    assert [(r.index, r.field) for r in result.rejected] == [(1, "plate")]
    assert len(all_reads(redis_client)) == 2
    assert dead_letters(redis_client)[0]["source"] == "test"
    assert result.as_dict()["rejected"] == [{"index": 1, "reason": result.rejected[0].reason}]


_json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_read_like = st.fixed_dictionaries(
    {},
    optional={
        "camera_id": st.text(max_size=6) | st.integers(),
        "plate": st.text(max_size=12) | st.integers(),
        "ts": st.integers() | st.text(max_size=25),
        "confidence": st.floats() | st.integers(),
        "state": st.text(max_size=3),
        "lat": st.floats(),
        "lon": st.floats(),
        "candidates": _json,
    },
)


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_read_like | _json, max_size=6))
def test_every_item_is_either_stored_or_dead_lettered(
    redis_client: redis.Redis, items: list[Any]
) -> None:
    redis_client.flushdb()
    result = ingest_objects(redis_client, items, PARTITIONS, "prop")
    assert result.accepted + len(result.rejected) == len(items)
    assert len(all_reads(redis_client)) == result.accepted
    assert len(dead_letters(redis_client)) == len(result.rejected)
    for r in all_reads(redis_client):
        assert 2 <= len(r["plate"]) <= 10 and r["plate"].isalnum()
