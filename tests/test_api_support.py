"""Shared helpers of the API tests (no tests here).

A test module rather than a conftest addition because tests/conftest.py belongs to the lead;
tests/ is a package, so the others import it as ``tests.test_api_support``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

import records
from api import create_app
from plateflow.settings import Settings
from sinks import DEADLETTER_STREAM, stream_key
from tests import records_support
from tests.people import add_person

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
    return {
        "camera_id": camera,
        "plate": plate,
        "ts": "2026-11-28T12:00:00Z",
        "confidence": 0.9,
        **extra,
    }


def stream_reads(client: redis.Redis, partition: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, fields in client.xrange(stream_key(partition)):
        payload = orjson.loads(fields[b"data"])
        out.extend(payload if isinstance(payload, list) else [payload])
    return out


def all_reads(client: redis.Redis, partitions: int = PARTITIONS) -> list[dict[str, Any]]:
    return [r for p in range(partitions) for r in stream_reads(client, p)]


def dead_letters(client: redis.Redis) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange(DEADLETTER_STREAM)
    ]


# -- Part B: people, database, logged-in clients --------------------------------------------------

PASSWORD = "Correct-Stapler-7-Horse"
CASE = {"case_number": "2026-004211"}
#: One trained user per role, and one untrained user per role (``u_`` + the same name).
ROLE_USERS = {
    "administrator": "ada",
    "dispatcher": "dora",
    "officer": "otto",
    "investigator": "ivy",
    "records_supervisor": "rex",
    "auditor": "aud",
}


@dataclass
class World:
    """A running API on a prepared database: users of every role, trained or not, logged in."""

    client: TestClient
    engine: Engine
    settings: Settings
    tokens: dict[str, str]

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def last_audit(self) -> records.AuditRecord:
        return records.read_audit(self.engine)[-1]


def database_url_in(tmp: Path) -> str:
    """The configured PostgreSQL, else a SQLite file in ``tmp``."""
    return os.environ.get("PLATEFLOW_DATABASE_URL") or f"sqlite:///{tmp / 'plateflow.db'}"


def add_member(engine: Engine, username: str, role: str, *, trained: bool = True) -> None:
    """A user of one role, "Test <username>" of Test PD, with current training unless
    ``trained`` is False. Each costs an argon2 hash, so fixtures make only what they use."""
    add_person(
        engine,
        username,
        [role],
        password=PASSWORD,
        name=f"Test {username}",
        agency="Test PD",
        trained=trained,
        course="ALPR policy 427 and CLETS",
        by="setup",
    )


def login_all(client: TestClient, usernames: Iterable[str]) -> dict[str, str]:
    """Log every user in (password ``PASSWORD``); returns the session token of each."""
    tokens = {}
    for username in usernames:
        resp = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        tokens[username] = resp.json()["token"]
    return tokens


@pytest.fixture(name="world", scope="module")
def world_fixture(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[World]:
    url = database_url_in(tmp_path_factory.mktemp("db"))
    engine = records_support.fresh(url)
    data_dir = tmp_path_factory.mktemp("data")
    settings = Settings.load(
        environ={},
        data_dir=str(data_dir),
        ingest_tokens=TOKEN,
        partitions=str(PARTITIONS),
        database_url=url,
    )
    users = {**ROLE_USERS, **{f"untrained_{r}": f"u_{n}" for r, n in ROLE_USERS.items()}}
    for key, username in users.items():
        role = key.removeprefix("untrained_")
        add_member(engine, username, role, trained=not key.startswith("untrained_"))
    add_person(
        engine,
        "target",
        ["officer"],
        password=PASSWORD,
        name="Tess Target",
        agency="Test PD",
        trained=False,
        by="setup",
    )
    records.create_hotlist(engine, "stolen", category="stolen_vehicle", user="setup")
    records.add_entry(engine, "stolen", "ABC123", user="setup", reason="stolen 2026-11-01")
    records.create_hotlist(
        engine, "covert-ops", category="wanted_vehicle", user="setup", policy={"covert": True}
    )
    records.add_entry(engine, "covert-ops", "ZZZ999", user="setup", reason="surveillance")
    records_support.release_request(engine, "setup")
    with TestClient(create_app(settings, redis_url, engine=engine)) as client:
        yield World(client, engine, settings, login_all(client, users.values()))
    engine.dispose()
