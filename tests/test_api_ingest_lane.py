"""The fast ingest path: group commit into shared pipelines, its own lane in front of FastAPI,
quiet disconnects, worker processes. Real Redis, real uvicorn, real sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import orjson
import psutil
import pytest
import redis
from fastapi.testclient import TestClient

from api._ingest_writer import StreamWriter
from benchmarks._servers import TOKEN as BENCH_TOKEN
from benchmarks._servers import start_plateflow
from plateflow.settings import Settings
from tests.test_api_support import (  # api_fixture registers the `api` fixture
    TOKEN,
    all_reads,
    api_fixture,  # noqa: F401
    make_settings,
    read,
)
from tests.test_bench_target import _Api


def test_concurrent_writes_share_pipelines_and_keep_their_own_outcome(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.set("not-a-stream", "x")  # an XADD to it fails with WRONGTYPE

    async def scenario() -> tuple[list[BaseException | None], int]:
        writer = StreamWriter(redis_url)
        calls = [writer.write([(f"lane:{i % 4}", {"data": f"r{i}"}, None)]) for i in range(60)]
        calls.append(
            writer.write([("lane:0", {"data": "ok"}, None), ("not-a-stream", {"data": "x"}, None)])
        )
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        await writer.close()
        return [o if isinstance(o, BaseException) else None for o in outcomes], writer.flushes

    outcomes, flushes = asyncio.run(scenario())
    assert outcomes[:60] == [None] * 60
    assert isinstance(outcomes[60], redis.ResponseError)
    assert "WRONGTYPE" in str(outcomes[60])
    assert flushes < 10  # 61 callers, a handful of round trips
    stored = sum(redis_client.xlen(f"lane:{p}") for p in range(4))
    assert stored == 61  # the failing caller's first entry was written: at-least-once


def test_a_command_refused_before_sending_fails_its_flush_only(redis_url: str) -> None:
    async def scenario() -> BaseException | None:
        writer = StreamWriter(redis_url)
        bad = writer.write([("lane:x", {}, None)])  # redis-py refuses an XADD without fields
        (outcome,) = await asyncio.gather(bad, return_exceptions=True)
        await writer.write([("lane:x", {"data": "later"}, None)])  # the writer goes on
        await writer.close()
        return outcome if isinstance(outcome, BaseException) else None

    assert isinstance(asyncio.run(scenario()), redis.DataError)


def test_writer_fails_every_caller_when_redis_is_unreachable() -> None:
    async def scenario() -> list[BaseException | None]:
        writer = StreamWriter("redis://127.0.0.1:1/0", socket_timeout=1)
        calls = [writer.write([("k", {"data": "x"}, None)]) for _ in range(5)]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, (redis.ConnectionError, OSError)) for o in outcomes)


def test_writer_fails_its_callers_when_redis_does_not_answer() -> None:
    """A peer that accepts and never replies: each flush is bounded as a whole by the timeout."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        url = f"redis://127.0.0.1:{mute.getsockname()[1]}/0"

        async def scenario() -> list[BaseException | None]:
            writer = StreamWriter(url, socket_timeout=0.5)
            calls = [writer.write([("k", {"data": "x"}, None)]) for _ in range(3)]
            return await asyncio.gather(*calls, return_exceptions=True)

        started = time.monotonic()
        outcomes = asyncio.run(scenario())
    assert time.monotonic() - started < 5
    assert all(isinstance(o, redis.TimeoutError) for o in outcomes), outcomes


def test_other_methods_on_an_ingest_path_are_405(api: TestClient) -> None:
    resp = api.get("/v1/reads")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert "POST" in resp.json()["detail"]


def test_request_metrics_label_the_ingest_route(api: TestClient) -> None:
    api.post("/v1/ingest/openalpr", json={"data_type": "heartbeat"})
    text = api.get("/metrics").text
    assert 'route="/v1/ingest/openalpr",status="202"' in text
    assert "plateflow_api_ingest_flush_requests_count" in text


def test_a_client_that_leaves_mid_body_logs_no_error(
    data_dir: Path, redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    api = _Api(make_settings(data_dir), redis_url)
    try:
        with caplog.at_level(logging.DEBUG):
            with socket.create_connection(("127.0.0.1", api.port)) as sock:
                head = (
                    f"POST /v1/reads HTTP/1.1\r\nHost: x\r\nX-Plateflow-Token: "
                    f"{TOKEN}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                )
                sock.sendall(head.encode() + b'[{"camera_id": "cam-1", "pla')
                time.sleep(0.3)
            deadline = time.monotonic() + 15
            while not any("disconnected" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the disconnect was never noticed"
                time.sleep(0.05)
    finally:
        api.stop()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert all_reads(redis_client) == []


def test_serve_with_two_worker_processes(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    server = start_plateflow(redis_url, tmp_path, workers=2)
    try:
        import urllib.request

        body = orjson.dumps([read(plate=f"WRK{i:03d}") for i in range(20)])
        for _ in range(5):
            request = urllib.request.Request(
                server.url + "/v1/reads",
                data=body,
                headers={"X-Plateflow-Token": BENCH_TOKEN, "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert resp.status == 202
                assert orjson.loads(resp.read())["accepted"] == 20
        workers = psutil.Process(server.proc.pid).children(recursive=True)
        serving = [p for p in workers if "spawn_main" in " ".join(p.cmdline())]
        assert len(serving) == 2, [p.cmdline() for p in workers]
    finally:
        server.stop()
    # the server runs on the default partition count, not the tests' 4
    assert len(all_reads(redis_client, Settings().partitions)) == 100
