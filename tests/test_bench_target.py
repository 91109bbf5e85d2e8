"""``plateflow bench target`` against a locally started API and flow: its counts against Redis.

The API runs under uvicorn in a thread on a free 127.0.0.1 port, the real flow (Bytewax) in the
test's main thread, both on the test Redis; the load generator sends a few hundred requests of
simulated traffic that includes plates of a small hotlist. What the tool reports must agree with
what Redis holds afterwards: accepted reads with the read streams, rejected reads with the
dead-letter stream, alerts of this run with the alert log.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import orjson
import pytest
import redis
import uvicorn
from bytewax.testing import run_main

from api import create_app
from dataflow import FlowOptions, build_flow
from matchers import Entry, Hotlist, Policy
from plateflow import cli
from plateflow._bench_target import run_target
from plateflow.settings import Settings
from sinks import ALERT_FIELD, ALERTS_LOG, DEADLETTER_STREAM
from tests.test_api_support import PARTITIONS, TOKEN, all_reads
from tests.test_flow import holder_for

HOT = [("7HOT001", "CA"), ("8HOT002", "CA"), ("9HOT003", None)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Api:
    """The real app under uvicorn in a thread (stopped through the server's own exit flag)."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            create_app(settings, redis_url), host="127.0.0.1", port=self.port, log_config=None
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture()
def settings(data_dir: Path, tmp_path: Path) -> Settings:
    return Settings.load(
        environ={},
        data_dir=str(data_dir),
        ingest_tokens=TOKEN,
        partitions=str(PARTITIONS),
        database_url=f"sqlite:///{tmp_path / 'records.db'}",
    )


def test_counts_agree_with_what_redis_holds(
    settings: Settings, redis_url: str, redis_client: redis.Redis
) -> None:
    api = _Api(settings, redis_url)
    hotlist = Hotlist(
        "bench", "stolen_vehicle", Policy(),
        tuple(Entry(f"bench:{p}", p, s, "test", "T-1") for p, s in HOT),
    )  # fmt: skip
    result: dict[str, object] = {}

    def load() -> None:
        result["report"] = run_target(
            f"http://127.0.0.1:{api.port}",
            TOKEN,
            rate=150,
            duration_s=2.0,
            reads_per_request=3,
            connections=8,
            redis_url=redis_url,
            partitions=PARTITIONS,
            hot_plates=HOT,
            hit_rate=0.05,
            settle_s=4.0,
        )

    try:
        loader = threading.Thread(target=load)
        loader.start()
        flow = build_flow(
            settings,
            redis_url,
            holder_for(hotlist),
            FlowOptions(drain=True, drain_after_s=6.5, flush_s=0.2),
        )
        run_main(flow)
        loader.join(timeout=60)
    finally:
        api.stop()
    report = result["report"]
    summary = report.summary()  # type: ignore[attr-defined]
    ingest = summary["ingest"]
    assert ingest["scheduled"] == 300
    assert ingest["completed"] == 300 and ingest["errors"] == {}
    assert ingest["statuses"] == {"202": 300}
    stored = all_reads(redis_client)
    ours = [r for r in stored if r["read_id"].startswith("bench-")]
    assert ingest["accepted_reads"] == len(ours) == len(stored)
    assert ingest["accepted_reads"] + ingest["rejected_reads"] == 900
    assert ingest["rejected_reads"] == redis_client.xlen(DEADLETTER_STREAM)
    inside = summary["inside"]
    assert inside["deadletters_added"] == ingest["rejected_reads"]
    logged = [
        orjson.loads(fields[ALERT_FIELD])["read"]["read_id"]
        for _, fields in redis_client.xrange(ALERTS_LOG)
    ]
    hot_reads = sum(1 for r in ours if r["plate"] in {p for p, _ in HOT})
    assert hot_reads > 0
    assert inside["alerts_of_this_run"] == len(logged) >= hot_reads
    assert 0 < inside["alert_latency_ms"]["p50"] < 10_000
    assert inside["consumer_lag_s_last"] == 0.0
    assert ingest["latency_ms"]["p50"] > 0


def test_cli_refuses_without_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PLATEFLOW_INGEST_TOKEN", raising=False)
    monkeypatch.delenv("PLATEFLOW_INGEST_TOKENS", raising=False)
    args = ["bench", "target", "--ingest-url", "http://127.0.0.1:9/", "--rate", "10"]
    assert cli.main([*args, "--duration", "1"]) == 2
    missing = tmp_path / "absent-token"
    assert cli.main([*args, "--duration", "1", "--token-file", str(missing)]) == 2
    assert cli.main([*args, "--duration", "99999"]) == 2


def test_cli_counts_connection_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PLATEFLOW_REDIS_URL", raising=False)
    monkeypatch.setenv("PLATEFLOW_INGEST_TOKEN", TOKEN)
    out = tmp_path / "report.json"
    html = tmp_path / "report.html"
    port = _free_port()  # nothing listens there: every request is refused
    code = cli.main(
        ["bench", "target", "--ingest-url", f"http://127.0.0.1:{port}", "--rate", "20",
         "--duration", "0.5", "--json", str(out), "--html", str(html)]
    )  # fmt: skip
    assert code == 1
    summary = orjson.loads(out.read_bytes())
    assert summary["ingest"]["errors"] == {"ConnectionRefusedError": 10}
    assert summary["inside"] is None
    assert "ConnectionRefusedError" in html.read_text()
