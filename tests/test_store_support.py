"""Shared data and oracles of the stored-read tests (no tests here).

The store is written through the real :class:`sinks.ReadStore`; the oracles read the same
Parquet files back with pyarrow (an independent reader) and decide matches with plain Python,
so a search result is checked against something that shares no code with it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy.engine import Engine

import records
from api import create_app
from plateflow import _cli_cases, _cli_store
from plateflow._cli_session import SESSION_ENV
from plateflow.cli import settings_from_args
from plateflow.settings import Settings
from sinks import ReadStore
from tests import records_support
from tests.cli_support import parser_of
from tests.test_api_support import (  # CASE is the store tests' too
    CASE,
    ROLE_USERS,
    add_member,
    database_url_in,
    login_all,
)

TARGET = "7ABC123"
SCENE = (38.5816, -121.4944)
#: Reads are placed relative to this instant (ms resolution, like the store).
NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
#: The window of the case tests' holds and exports, and the justification of the CLI acts
#: that name no case of their own.
START, END = NOW - timedelta(days=30), NOW + timedelta(minutes=10)
WHY = ("--case-number", "26-100")


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


OLD_DAYS = (400, 401)
#: username -> role: one user per role, as in the API tests.
USERS = {username: role for role, username in ROLE_USERS.items()}
_REDIS_ENV = "PLATEFLOW_REDIS_URL"
OCR = {c: group[0] for group in ("0ODQ", "1I", "2Z", "5S", "8B", "6G") for c in group}
_LETTERS = "ABCDEFGHJKLMNPRTUVWXY"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _read(i: int, plate: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "read_id": f"r{i:05d}",
        "camera_id": extra.pop("camera_id", f"cam-{i % 6}"),
        "plate": plate,
        "plate_raw": plate,
        "ts": _ms(at),
        "confidence": 0.9,
        "state": extra.pop("state", "CA"),
        "lat": extra.pop("lat", 38.0 + (i % 50) * 0.01),
        "lon": extra.pop("lon", -121.0 - (i % 40) * 0.01),
        "candidates": extra.pop("candidates", []),
        **extra,
    }


def make_reads() -> list[dict[str, Any]]:
    """About 2,100 reads: background traffic over 20 days, the target plate and its OCR,
    one-difference and partial-plate neighbours, a scene, and two old days (for purges)."""
    rng = random.Random(7)
    reads: list[dict[str, Any]] = []

    def add(plate: str, at: datetime, **extra: Any) -> None:
        reads.append(_read(len(reads), plate, at, **extra))

    for _ in range(2000):
        plate = "".join(rng.choice(_LETTERS) for _ in range(3)) + f"{rng.randrange(10000):04d}"
        add(plate, NOW - timedelta(minutes=rng.randrange(20 * 24 * 60)))
    for k in range(10):
        add(TARGET, NOW - timedelta(days=k * 2, hours=3), state="NV" if k == 3 else "CA")
    for plate in ("7A8C123", "7A8C123", "7ABC1Z3", "7ABC124", "7ABC12", "7BAC123", "7ABC12Z"):
        add(plate, NOW - timedelta(days=rng.randrange(15), hours=1))
    add("QQQ9999", NOW - timedelta(days=1), candidates=[{"plate": TARGET, "confidence": 0.4}])
    for plate in ("XYZ900", "AXYZ12", "8AD1234", "BAD7777", "7ABX129", "7ABC12Q"):
        add(plate, NOW - timedelta(days=rng.randrange(15), hours=2), state="OR")
    scene_time = NOW - timedelta(days=2)
    for k in range(30):
        near = k % 3 != 0  # two in three within ~300 m, the rest about 2 km away
        offset = (k % 10) * 0.0002 if near else 0.018
        plate = ["SCN0001", "SCN0002", "SCN0003", "SCN0004", "SCN0005"][k % 5]
        add(plate, scene_time + timedelta(minutes=k), lat=SCENE[0] + offset, lon=SCENE[1])
    for days in OLD_DAYS:  # each old day's reads within its calendar day, whatever the hour now
        day = (NOW - timedelta(days=days)).replace(hour=0, minute=0, second=0)
        for k in range(25):
            add(TARGET if k < 2 else f"OLD{days}{k:02d}", day + timedelta(hours=1 + k % 5))
    # Ranges and negated sets, hits and near misses ([A-C]?[A-F]1*, M?M29[0-4]6, [!A-M]*99).
    for plate in ("AXB1234", "CZF19", "DZF19", "MQM2946", "MXM2956", "NRT1099", "7XY99", "ARB99"):
        add(plate, NOW - timedelta(days=rng.randrange(15), hours=4))
    return reads


def alert(read: dict[str, Any], hotlist: str, *, covert: bool, entry_id: str) -> dict[str, Any]:
    return {
        "alert_id": f"a-{read['read_id']}-{entry_id}",
        "emitted_at": read["ts"] + 500,
        "read": read,
        "hotlist": {"name": hotlist, "category": "stolen_vehicle", "priority": 1, "covert": covert},
        "entry": {"entry_id": entry_id, "plate": read["plate"]},
        "match": {"kind": "exact"},
        "sighting_of": None,
    }


def write_store(data_dir: Path, reads: list[dict[str, Any]]) -> ReadStore:
    """Write ``reads`` in batches over 4 partitions, and alerts for two target reads: one of
    a general list and one of a covert list."""
    store = ReadStore(data_dir, fsync=False)
    for n, start in enumerate(range(0, len(reads), 300)):
        store.write_reads(n % 4, f"{1000 + n}-0", reads[start : start + 300])
    targets = [r for r in reads if r["plate"] == TARGET]
    store.write_alerts(
        0,
        "1-0",
        [
            alert(targets[0], "stolen", covert=False, entry_id="e-stolen"),
            alert(targets[1], "covert-ops", covert=True, entry_id="e-covert"),
        ],
    )
    return store


# -- the independent reader and the oracles -----------------------------------------------------


def stored(data_dir: Path, kind: str = "reads") -> list[dict[str, Any]]:
    """Every row of the store, read with pyarrow's dataset reader (not polars, not sinks)."""
    root = data_dir / kind
    if not root.exists():
        return []
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    return [{**row, "ts": _ms(row["ts"])} for row in table.to_pylist()]


def in_window(row: dict[str, Any], start: datetime, end: datetime) -> bool:
    return _ms(start) <= int(row["ts"]) < _ms(end)


def ocr_equal(a: str, b: str) -> bool:
    return len(a) == len(b) and all(
        OCR.get(x, x) == OCR.get(y, y) for x, y in zip(a, b, strict=True)
    )


def one_difference(a: str, b: str) -> bool:
    """At most one insertion, deletion, substitution or adjacent swap."""
    if a == b:
        return True
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        swap = len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]]
        return len(diffs) == 1 or (swap and a[diffs[1]] == b[diffs[0]])
    short, long_ = sorted((a, b), key=len)
    if len(long_) - len(short) != 1:
        return False
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def glob(pattern: str) -> Callable[[str], bool]:
    return lambda plate: fnmatch.fnmatchcase(plate, pattern)


def haversine_m(lat: float, lon: float, lat0: float, lon0: float) -> float:
    p1, p0 = math.radians(lat), math.radians(lat0)
    a = (
        math.sin((p1 - p0) / 2) ** 2
        + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lon - lon0) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


# -- people and running things ------------------------------------------------------------------


def add_people(engine: Engine, names: Sequence[str], untrained: bool) -> list[str]:
    """A trained user per name (roles as in USERS) and, with ``untrained``, ``u_<name>`` too;
    returns the usernames."""
    made: list[str] = []
    for name in names:
        pairs = ((name, True), (f"u_{name}", False)) if untrained else ((name, True),)
        for username, trained in pairs:
            made.append(username)
            add_member(engine, username, USERS[name], trained=trained)
    return made


@dataclass
class Env:
    """A prepared store and database, an API client logged in as every user, and the CLI."""

    client: TestClient
    engine: Engine
    settings: Settings
    data_dir: Path
    reads: list[dict[str, Any]]
    tokens: dict[str, str]
    cli: Callable[..., tuple[int, str]]

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def audit(
        self, action: str | None = None, *, intents: bool = False
    ) -> list[records.AuditRecord]:
        """The audit records of ``action``; a search's intent (committed before its scan,
        ``terms.stage`` ``intent``) only with ``intents``: the outcome record linked to it
        carries the terms, the count and the total."""
        found = records.read_audit(self.engine)
        return [
            r
            for r in found
            if (action is None or r.action == action)
            and (intents or r.terms.get("stage") != "intent")
        ]


def cli_runner(
    settings_args: list[str], tokens: dict[str, str], redis_url: str
) -> Callable[..., tuple[int, str]]:
    """Run ``plateflow search|retention|hold|evidence`` through argparse, logged in as
    ``as_user`` (their session token in ``PLATEFLOW_SESSION_TOKEN``, as a script would) or
    with no session, the Redis URL (it carries a password) in ``PLATEFLOW_REDIS_URL``;
    returns the exit code and what the command printed."""

    def run(*argv: str, as_user: str | None = None) -> tuple[int, str]:
        args = parser_of(_cli_store).parse_args([*argv, *settings_args])
        buffer = io.StringIO()
        console = Console(file=buffer, width=300, no_color=True)
        saved_out = _cli_store.out, _cli_cases.out
        saved_env = {name: os.environ.get(name) for name in (SESSION_ENV, _REDIS_ENV)}
        _cli_store.out = _cli_cases.out = console
        os.environ.pop(SESSION_ENV, None)
        os.environ[_REDIS_ENV] = redis_url
        if as_user is not None:
            os.environ[SESSION_ENV] = tokens[as_user]
        try:
            code = args.handler(args, settings_from_args(args))
        finally:
            _cli_store.out, _cli_cases.out = saved_out
            for name, value in saved_env.items():
                os.environ.pop(name, None)
                if value is not None:
                    os.environ[name] = value
        return int(code), buffer.getvalue()

    return run


@contextlib.contextmanager
def build_env(
    tmp: Path, redis_url: str, names: Sequence[str] = tuple(USERS), untrained: bool = True
) -> Iterator[Env]:
    """Store, database, users, API and CLI on fresh files (and tables)."""
    data_dir = tmp / "data"
    url = database_url_in(tmp)
    engine = records_support.fresh(url)
    usernames = add_people(engine, names, untrained)
    reads = make_reads()
    write_store(data_dir, reads)
    settings = Settings.load(
        environ={}, data_dir=str(data_dir), database_url=url, redis_url=redis_url
    )
    flags = ["--database-url", url, "--data-dir", str(data_dir)]
    try:
        with TestClient(create_app(settings, redis_url, engine=engine)) as client:
            tokens = login_all(client, usernames)
            runner = cli_runner(flags, tokens, redis_url)
            yield Env(client, engine, settings, data_dir, reads, tokens, runner)
    finally:
        engine.dispose()


@pytest.fixture(name="env")
def env_fixture(tmp_path: Path, redis_url: str, redis_client: Any) -> Iterator[Env]:
    """A fresh world per test, for tests that change the store (holds, purges, exports), with
    the investigator ``ivy`` and the records supervisor ``rex``."""
    with build_env(tmp_path, redis_url, ("ivy", "rex"), untrained=False) as env:
        yield env


@pytest.fixture(name="shared_env", scope="module")
def shared_env_fixture(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Env]:
    """One world for a module of tests that only read the store."""
    with build_env(tmp_path_factory.mktemp("store"), redis_url) as env:
        yield env


# -- paging through the API and the independent expectation ---------------------------------


def pages(
    env: Env, path: str, user: str, *, params: dict[str, Any] | None = None, body: Any = None
) -> list[dict[str, Any]]:
    """Every page of a search, following ``next_cursor``."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        if body is None:
            query = {**CASE, **(params or {}), **({"cursor": cursor} if cursor else {})}
            resp = env.client.get(path, params=query, headers=env.auth(user))
        else:
            payload = {**CASE, **body, **({"cursor": cursor} if cursor else {})}
            resp = env.client.post(path, json=payload, headers=env.auth(user))
        assert resp.status_code == 200, resp.text
        found.append(resp.json())
        cursor = found[-1]["next_cursor"]
        if cursor is None:
            return found


def expected_ids(env: Env, accept: Any, start: datetime = START, end: datetime = END) -> set[str]:
    return {
        r["read_id"]
        for r in stored(env.data_dir)
        if in_window(r, start, end) and accept(r["plate"])
    }
