"""Alert delivery to dispatch consoles: 50 SSE consumers while the real flow matches 20,000 reads/s.

    python benchmarks/console.py --json bench-results/console.json
    python benchmarks/console.py --quick          # seconds: 10 consumers, 2,000 reads/s

1. Starts a private Redis and ``plateflow serve`` (one worker) against it, adds a trained
   dispatcher and logs in over HTTP.
2. Starts ``--consumers`` stream consumers in a process of their own: asyncio and httpx, each
   reading ``GET /v1/alerts/stream`` and parsing the event stream itself (no project code), and
   waits until every one has its ``dispositions`` snapshot (connected, live).
3. Runs the real flow in this process, as benchmarks/pipeline.py does: a feeder sends reads
   stamped with the current time at ``--rate`` reads/s into the streams while the flow matches
   them against a 100,000-entry hotlist and publishes alerts (about one read in a thousand).
4. Reports, over every (consumer, alert): p50/p99/max from the alert's ``emitted_at`` (set by
   the flow when it builds the alert) to its receipt by the consumer, and for each consumer the
   alerts it missed: logged in ``plateflow:alerts:log`` during the run but not received within
   60 s after the flow stopped (must be 0). The flow's own pub/sub delivery (read time to a
   Redis subscriber) is shown beside it, and the API's share of the delay: from the alert's
   append to ``plateflow:alerts:log`` (the ms of its ``log_id``, Redis's clock) to receipt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import write_json
from benchmarks._servers import private_redis, start_plateflow
from sinks import ALERT_FIELD, ALERTS_LOG

console = Console(stderr=True)
USER, PASSWORD = "bench-dispatcher", "Bench-Console-Password-7"
#: After the flow stops, how long the consumers may take to receive every logged alert; what
#: is still missing then counts as missed.
DRAIN_S = 60.0


# -- the consumers (a process of their own: their event loop never shares the flow's GIL) -------


async def _consume(
    url: str,
    token: str,
    received: dict[str, float],
    lat: tuple[list[float], list[float]],
    ready: asyncio.Event,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(10.0, read=None)
    async with (
        httpx.AsyncClient(timeout=timeout) as client,
        client.stream("GET", f"{url}/v1/alerts/stream?replay=0", headers=headers) as resp,
    ):
        resp.raise_for_status()
        # the event stream split by hand, on bytes: one consumer process reads fifty streams,
        # and httpx's line iterator would cost more than the server's whole delivery
        pending = b""
        async for chunk in resp.aiter_raw():
            pending += chunk
            *blocks, pending = pending.split(b"\n\n")
            now = time.time() * 1000
            for block in blocks:
                if block.startswith(b"event: alert\n"):
                    data = block.split(b"\ndata: ", 1)[1].split(b"\nid: ", 1)[0]
                    alert = orjson.loads(data)
                    received[alert["alert_id"]] = now
                    lat[0].append(now - alert["emitted_at"])
                    lat[1].append(now - int(alert["log_id"].split("-", 1)[0]))
                elif block.startswith(b"event: dispositions\n"):
                    ready.set()


async def _consumers(url: str, token: str, n: int, work: Path) -> None:
    received: list[dict[str, float]] = [{} for _ in range(n)]
    lat: list[tuple[list[float], list[float]]] = [([], []) for _ in range(n)]
    ready = [asyncio.Event() for _ in range(n)]
    tasks = [
        asyncio.create_task(_consume(url, token, received[i], lat[i], ready[i])) for i in range(n)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 120)
    (work / "ready").touch()
    expected: set[str] | None = None
    deadline = 0.0
    while True:
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"a consumer failed: {failed[0].exception()!r}")
        if expected is None and (work / "expected.json").exists():
            expected = set(json.loads((work / "expected.json").read_text()))
            deadline = time.monotonic() + DRAIN_S
        if expected is not None and (
            all(expected <= r.keys() for r in received) or time.monotonic() > deadline
        ):
            break
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out = {
        "received": [sorted(r) for r in received],
        "latency_ms": [emitted for emitted, _ in lat],
        "logged_latency_ms": [logged for _, logged in lat],
    }
    (work / "consumers.json").write_text(json.dumps(out))


def consumer_main(url: str, token: str, n: int, work: Path) -> int:
    asyncio.run(_consumers(url, token, n, work))
    return 0


# -- the run ------------------------------------------------------------------------------------


def _add_dispatcher(data_dir: Path) -> None:
    import records

    engine = records.connect(f"sqlite:///{data_dir / 'plateflow.db'}")
    records.add_user(
        engine, username=USER, name="Bench Dispatcher", agency="Bench PD",
        job_title="dispatcher", roles=["dispatcher"], password=PASSWORD, by="bench",
    )  # fmt: skip
    today = date.today()
    records.record_training(
        engine, USER, course="ALPR", completed_on=today, expires_on=today + timedelta(days=365),
        by="bench",
    )  # fmt: skip
    engine.dispose()


def _wait(path: Path, what: str, proc: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the consumers exited with {proc.returncode} before {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _flow(url: str, tmp: Path, rate: float, seconds: float) -> list[float]:
    """The real flow under a live feed (benchmarks/pipeline.py's latency phase)."""
    from benchmarks.pipeline import fixed_holder, hotlists, latency_phase
    from dataflow import tune_gc
    from plateflow.settings import Settings
    from plateflow.simulator import Simulator

    sim = Simulator(population_size=500_000, seed=5)
    lists = hotlists(False, sim)
    sim = Simulator(population_size=500_000, seed=5, hot_plates=[
        (e.plate, e.state) for h in lists for e in h.entries[:500] if not e.is_pattern
    ], hit_rate=0.001)  # fmt: skip
    holder = fixed_holder(lists)
    settings = Settings.load({}, data_dir=str(tmp / "flow-data"), batch_size="200")
    tune_gc()
    return latency_phase(url, settings, holder, sim, rate, seconds)


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="plateflow-console-"))
    work = tmp / "consumers"
    work.mkdir()
    with private_redis() as redis_url:
        server = start_plateflow(redis_url, tmp)
        consumers = None
        try:
            port = server.url.rsplit(":", 1)[1]
            _add_dispatcher(tmp / f"data-{port}")
            login = httpx.post(
                f"{server.url}/v1/auth/login", json={"username": USER, "password": PASSWORD}
            )
            login.raise_for_status()
            token = login.json()["token"]
            # the session token by the environment, never on a command line
            command = [sys.executable, __file__, "--consumer", server.url, str(args.consumers),
                       str(work)]  # fmt: skip
            env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}
            consumers = subprocess.Popen(command, env={**env, "PLATEFLOW_BENCH_TOKEN": token})
            _wait(work / "ready", "every consumer connected", consumers, 120)
            pubsub_lat = _flow(redis_url, tmp, args.rate, args.seconds)
            time.sleep(1.0)  # the flow's last publish
            client = redis.Redis.from_url(redis_url)
            logged = [
                orjson.loads(fields[ALERT_FIELD])["alert_id"]
                for _, fields in client.xrange(ALERTS_LOG)
            ]
            client.close()
            (work / "expected.json").write_text(json.dumps(logged))
            consumers.wait(timeout=DRAIN_S + 30)
            got = json.loads((work / "consumers.json").read_text())
        finally:
            if consumers is not None and consumers.poll() is None:
                consumers.kill()
                consumers.wait()
            server.stop()
    expected = set(logged)
    missed = [len(expected - set(r)) for r in got["received"]]
    lat = [x for per in got["latency_ms"] for x in per]
    logged_lat = [x for per in got["logged_latency_ms"] for x in per]
    return {
        "consumers": args.consumers,
        "rate_reads_per_s": args.rate,
        "seconds": args.seconds,
        "flow": "real flow (benchmarks/pipeline.py latency phase), 100,000-entry hotlist",
        "alerts_logged": len(expected),
        "alerts_per_s": round(len(expected) / args.seconds, 1),
        "deliveries": len(lat),
        "emitted_to_receipt_p50_ms": _pct(lat, 50),
        "emitted_to_receipt_p99_ms": _pct(lat, 99),
        "emitted_to_receipt_max_ms": round(max(lat), 1) if lat else None,
        "logged_to_receipt_p50_ms": _pct(logged_lat, 50),
        "logged_to_receipt_p99_ms": _pct(logged_lat, 99),
        "missed_max_per_consumer": max(missed) if missed else None,
        "missed_total": sum(missed),
        "pubsub_read_to_receipt_p50_ms": _pct(pubsub_lat, 50),
        "pubsub_read_to_receipt_p99_ms": _pct(pubsub_lat, 99),
        "quick": args.quick,
    }


def _table(result: dict[str, Any]) -> None:
    table = Table(title="alert delivery to dispatch consoles (SSE)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:,}" if isinstance(value, (int, float)) else str(value))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--consumer"]:
        url, n, work = argv[1:4]
        return consumer_main(url, os.environ["PLATEFLOW_BENCH_TOKEN"], int(n), Path(work))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes (CI)")
    parser.add_argument("--consumers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20_000.0, help="reads/s into the flow")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of traffic")
    args = parser.parse_args(argv)
    if args.quick:
        args.consumers, args.rate, args.seconds = min(args.consumers, 10), 2000.0, 4.0
    result = run(args)
    _table(result)
    if args.json:
        write_json(result, args.json)
    return 0 if result["missed_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
