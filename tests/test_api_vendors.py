"""Vendor webhooks posted to the ingest endpoints, with the real Redis.

The samples in tests/data are our own, written from the vendors' public documentation
(see tests/data/README.md): the OpenALPR agent's "JSON Group Results" / "JSON Plate Results"
(openalpr/doc, source/app_integration.include) and Plate Recognizer Stream's "Webhooks and
Outputs" (guides.platerecognizer.com/docs/stream/results).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from api import openalpr_items, openalpr_read, region_to_state
from matchers.reads import ReadError
from sinks import partition_for
from tests.test_api_support import (  # api_fixture registers the `api` fixture
    PARTITIONS,
    all_reads,
    api_fixture,  # noqa: F401
    dead_letters,
    stream_reads,
)

DATA = Path(__file__).parent / "data"
AGENT = "K2mQ8vLxR4tN7pYw1ZcB6sDf3GhJ9aEu0oIiVbXn"


def sample(name: str) -> Any:
    return json.loads((DATA / name).read_text())


# -- OpenALPR -----------------------------------------------------------------------------------


def test_openalpr_group_becomes_one_canonical_read(
    api: TestClient, redis_client: redis.Redis
) -> None:
    resp = api.post("/v1/ingest/openalpr", json=sample("openalpr_alpr_group.json"))
    assert resp.status_code == 202
    assert resp.json() == {"accepted": 1, "rejected": [], "ignored": 0}
    camera = f"{AGENT}-1804289383"
    [stored] = stream_reads(redis_client, partition_for(camera, PARTITIONS))
    assert stored["camera_id"] == camera
    assert stored["read_id"] == f"{AGENT}-1804289383-1795862400287"  # best_uuid
    assert stored["plate"] == "7TJK20"
    assert stored["confidence"] == pytest.approx(0.917345)  # 91.7345 %
    assert stored["ts"] == 1795862400120  # epoch_start, ms
    assert stored["state"] == "MA"  # best_region us-ma
    assert (stored["lat"], stored["lon"]) == (42.36012, -71.05829)
    assert stored["candidates"] == [
        {"plate": "7TJK2O", "confidence": pytest.approx(0.801127)},
        {"plate": "TJK20", "confidence": pytest.approx(0.710562)},
    ]
    assert stored["image_ref"] == stored["read_id"]


def test_openalpr_results_one_read_per_result_bad_one_dead_lettered(
    api: TestClient, redis_client: redis.Redis
) -> None:
    resp = api.post("/v1/ingest/openalpr", json=sample("openalpr_alpr_results.json"))
    body = resp.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {
            "index": 1,
            "reason": "results[].plate: 'K' normalises to 'K': 2-10 letters/digits are required",
        }
    ]
    [stored] = all_reads(redis_client)
    assert stored["plate"] == "8BFX514" and stored["state"] == "CA"  # region "ca", no prefix
    assert stored["ts"] == 1795862461733
    assert stored["read_id"].endswith("-1795862461733-0")  # two plates in one frame
    [dead] = dead_letters(redis_client)
    raw = orjson.loads(dead["raw"])
    assert raw["result"]["plate"] == "K"
    assert raw["envelope"]["camera_id"] == 1804289384
    assert dead["source"] == "api:openalpr"


def test_openalpr_heartbeat_is_ignored_not_rejected(
    api: TestClient, redis_client: redis.Redis
) -> None:
    resp = api.post("/v1/ingest/openalpr", json=sample("openalpr_heartbeat.json"))
    assert resp.json() == {"accepted": 0, "rejected": [], "ignored": 1}
    assert all_reads(redis_client) == [] and dead_letters(redis_client) == []


def test_openalpr_embedded_images_never_reach_redis(
    api: TestClient, redis_client: redis.Redis
) -> None:
    group = sample("openalpr_alpr_group.json")
    group["best_confidence"] = 150  # rejected, so the raw message goes to the dead letters
    resp = api.post("/v1/ingest/openalpr", json=[group, sample("openalpr_heartbeat.json")])
    body = resp.json()
    assert body["accepted"] == 0 and body["ignored"] == 1
    assert body["rejected"][0]["reason"] == (
        "best_confidence: 150 is outside 0..100 (OpenALPR sends percentages)"
    )
    [dead] = dead_letters(redis_client)
    assert "jpeg" not in dead["raw"] and "/9j/" not in dead["raw"]
    assert orjson.loads(dead["raw"])["best_plate_number"] == "7TJK20"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"best_plate_number": None}, "best_plate_number: is required"),
        ({"epoch_start": 1795862400}, "epoch_start: 1795862400 looks like epoch seconds"),
        ({"best_confidence": "high"}, "best_confidence: is required: a confidence percentage"),
        ({"camera_id": None}, "camera_id: is required"),
        ({"gps_latitude": 95.0}, "gps_latitude: 95.0 is outside -90..90 degrees"),
        ({"data_type": None}, "data_type: is required: alpr_group or alpr_results"),
    ],
)
def test_openalpr_rejections_name_the_vendor_field(change: dict[str, Any], reason: str) -> None:
    group = sample("openalpr_alpr_group.json")
    group.update(change)
    [item] = openalpr_items(group).items
    with pytest.raises(ReadError) as err:
        openalpr_read(item)
    assert err.value.reason.startswith(reason)


def test_openalpr_without_gps_fix_has_no_location() -> None:
    group = sample("openalpr_alpr_group.json")
    group["gps_latitude"] = group["gps_longitude"] = 0
    group.pop("agent_uid")
    read = openalpr_read(openalpr_items(group).items[0])
    assert read["lat"] is None and read["lon"] is None
    assert read["camera_id"] == "1804289383"


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("us-ma", "MA"),
        ("US-CA", "CA"),
        ("ca-qc", "QC"),
        ("mo", "MO"),
        ("gb", None),
        ("mx-nle", None),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_region_to_state(code: Any, state: str | None) -> None:
    assert region_to_state(code) == state


# -- Plate Recognizer ---------------------------------------------------------------------------


def _check_platerecognizer_reads(redis_client: redis.Redis) -> None:
    reads = sorted(all_reads(redis_client), key=lambda r: r["plate"])
    assert [r["plate"] for r in reads] == ["4PKW882", "8MZT361"]
    assert [r["plate_raw"] for r in reads] == ["4pkw882", "8mzt361"]
    assert [r["state"] for r in reads] == ["NV", "CA"]
    assert all(r["camera_id"] == "sr-91-north" for r in reads)
    assert all(r["ts"] == 1795887729318 for r in reads)  # 2026-11-28T17:42:09.318204Z
    assert reads[1]["confidence"] == 0.902
    # the candidate Stream sent without a score is kept, at confidence 0
    assert reads[1]["candidates"] == [
        {"plate": "8MZT36I", "confidence": 0.771},
        {"plate": "BMZT361", "confidence": 0.0},
    ]
    assert reads[0]["read_id"] != reads[1]["read_id"]


def test_platerecognizer_json_webhook(api: TestClient, redis_client: redis.Redis) -> None:
    resp = api.post("/v1/ingest/platerecognizer", json=sample("platerecognizer_stream.json"))
    assert resp.status_code == 202
    assert resp.json() == {"accepted": 2, "rejected": [], "ignored": 0}
    _check_platerecognizer_reads(redis_client)


def test_platerecognizer_multipart_webhook_with_image(
    api: TestClient, redis_client: redis.Redis
) -> None:
    text = (DATA / "platerecognizer_stream.json").read_text()
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\xff\xd9"
    resp = api.post(
        "/v1/ingest/platerecognizer",
        data={"json": text},
        files={"upload": ("17-42-09.318204.jpg", jpeg, "image/jpeg")},
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == 2
    _check_platerecognizer_reads(redis_client)


def test_platerecognizer_multipart_without_json_field(api: TestClient) -> None:
    resp = api.post(
        "/v1/ingest/platerecognizer",
        data={"payload": "{}"},
        files={"upload": ("x.jpg", b"\xff\xd8\xff\xd9", "image/jpeg")},
    )
    assert resp.status_code == 400
    assert "no form field named 'json'" in resp.json()["detail"]
    assert "payload" in resp.json()["detail"]


def test_platerecognizer_bad_result_is_rejected_alone(
    api: TestClient, redis_client: redis.Redis
) -> None:
    hook = sample("platerecognizer_stream.json")
    bad = copy.deepcopy(hook["data"]["results"][0])
    bad["score"] = 90.2
    hook["data"]["results"].append(bad)
    resp = api.post("/v1/ingest/platerecognizer", json=hook)
    body = resp.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {
            "index": 2,
            "reason": "data.results[].score: 90.2 is outside 0..1 (percentages must "
            "be divided by 100)",
        }
    ]
    [dead] = dead_letters(redis_client)
    raw = orjson.loads(dead["raw"])
    assert raw["data"]["camera_id"] == "sr-91-north" and raw["result"]["score"] == 90.2


def test_platerecognizer_timestamp_needs_an_offset(api: TestClient) -> None:
    hook = sample("platerecognizer_stream.json")
    hook["data"]["timestamp"] = "2026-11-28 17:42:09.318204"
    body = api.post("/v1/ingest/platerecognizer", json=hook).json()
    assert body["accepted"] == 0
    assert all(
        r["reason"].startswith("data.timestamp: '2026-11-28 17:42:09.318204' has no UTC offset")
        for r in body["rejected"]
    )


def test_platerecognizer_other_events_and_missing_data(
    api: TestClient, redis_client: redis.Redis
) -> None:
    other = {"hook": {"event": "image.done", "id": "sr-91-north"}, "data": {}}
    no_data = {"hook": {"event": "recognition"}}
    no_results = {"data": {"camera_id": "sr-91-north", "timestamp": "2026-11-28T17:42:09Z"}}
    body = api.post("/v1/ingest/platerecognizer", json=[other, no_data, no_results]).json()
    assert body["accepted"] == 0 and body["ignored"] == 1
    assert [r["reason"] for r in body["rejected"]] == [
        "data: is required: the object holding camera_id and results",
        "data.results: is required: the list of recognition results",
    ]
    assert len(dead_letters(redis_client)) == 2


def test_platerecognizer_gps_when_present(api: TestClient, redis_client: redis.Redis) -> None:
    hook = sample("platerecognizer_stream.json")
    hook["data"]["gps"] = {"latitude": 33.8753, "longitude": -117.5664}
    api.post("/v1/ingest/platerecognizer", json=hook)
    assert {(r["lat"], r["lon"]) for r in all_reads(redis_client)} == {(33.8753, -117.5664)}
