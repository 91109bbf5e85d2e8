"""Shared helpers of the API tests (no tests here).

A test module rather than a conftest addition because tests/conftest.py belongs to the lead;
pytest puts tests/ on sys.path, so ``from test_api_support import ...`` works under any runner.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from api import create_app
from plateflow.settings import Settings
from sinks import DEADLETTER_STREAM, stream_key

TOKEN = "cam-token-0123456789abcdef"
PARTITIONS = 4


def make_settings(data_dir: Path, tokens: str = TOKEN) -> Settings:
    return Settings.load(
        environ={}, data_dir=str(data_dir), ingest_tokens=tokens, partitions=str(PARTITIONS)
    )


@pytest.fixture(name="api")
def api_fixture(data_dir: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(data_dir), redis_url)) as client:
        client.headers["X-Plateflow-Token"] = TOKEN
        yield client


def read(camera: str = "cam-elm-01", plate: str = "ABC1234", **extra: Any) -> dict[str, Any]:
    return {"camera_id": camera, "plate": plate, "ts": "2026-11-28T12:00:00Z",
            "confidence": 0.9, **extra}


def stream_reads(client: redis.Redis, partition: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, fields in client.xrange(stream_key(partition)):
        payload = orjson.loads(fields[b"data"])
        out.extend(payload if isinstance(payload, list) else [payload])
    return out


def all_reads(client: redis.Redis) -> list[dict[str, Any]]:
    return [r for p in range(PARTITIONS) for r in stream_reads(client, p)]


def dead_letters(client: redis.Redis) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange(DEADLETTER_STREAM)
    ]
