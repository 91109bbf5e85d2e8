"""HTTP ingest benchmark (issue 14): plateflow's ingest beside a bare endpoint, in one run.

    python benchmarks/ingest.py --json bench-results/ingest.json [--quick]

Starts a private ``redis-server`` (no persistence), ``plateflow serve`` and the bare endpoint of
:mod:`benchmarks._bare` (Starlette + orjson + one ``XADD`` with ``redis.asyncio``), both under
uvicorn with uvloop and httptools, each on its own free port. Then, alternating between the two
so the machine's drift hits both alike:

* **most requests/s** with wrk (2 threads, 32 connections) for bodies of 1, 10, 100 and 1,000
  simulated reads (``--quick``: 1 and 100), ``--rounds`` times each; the median is reported, and
  reads/s = requests/s x reads per request;
* **latency at a fixed rate** with :mod:`plateflow._loadgen` in its own process (open loop, each
  request timed from its scheduled moment, like wrk2): ``--fixed-rate`` single-read requests/s
  (default 2,000) for ``--fixed-seconds``;
* **durability**: plateflow and the bare endpoint again on a Redis with ``appendonly yes`` and
  ``appendfsync everysec``, then ``always``, single reads and batches of 100;
* with ``--workers 2`` (default in a full run), both servers once more with two worker
  processes;
* **what a Redis crash loses**: for no AOF, ``everysec`` and ``always``, plateflow takes
  single-read requests, Redis is killed with SIGKILL right after the last 202 and started again
  on its files, and the reads still in the streams are counted against the reads acknowledged.
  (A process crash, not a power loss: ``everysec`` loses less to the first than to the second.)

Every figure of plateflow comes with the bare endpoint's figure of the same round and their
ratio. The streams are deleted between runs so Redis memory stays flat.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import redis
from rich.console import Console
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._servers import (
    TOKEN,
    RedisProcess,
    private_redis,
    run_wrk,
    start_bare,
    start_plateflow,
    wrk_script,
)
from plateflow.simulator import Simulator
from sinks import READS_STREAM_PREFIX

console = Console(stderr=True)

#: The cameras plateflow's ingest token is bound to: the simulator's ids (``cam-000``...) and
#: more, as one agent's token, so each request pays the camera check a deployment pays.
CAMERAS = [f"cam-{i:03d}" for i in range(1000)]


def _bodies(sizes: list[int]) -> dict[int, bytes]:
    sim = Simulator(malformed_rate=0.0, seed=14)
    return {k: orjson.dumps(sim.reads(1)[0] if k == 1 else sim.reads(k)) for k in sizes}


def _trim(url: str) -> None:
    """Delete what the runs wrote (read streams of both servers) to keep Redis memory flat."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter("plateflow:*")) + list(client.scan_iter("bench:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _pair(
    servers: dict[str, Any],
    script: Path,
    seconds: float,
    rounds: int,
    redis_url: str,
    progress: Progress,
    task: Any,
) -> dict[str, Any]:
    """wrk on both servers, alternating, ``rounds`` times; medians and the ratio."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            runs[name].append(run_wrk(server.url + "/v1/reads", script, seconds))
            _trim(redis_url)
            progress.advance(task)
    out: dict[str, Any] = {}
    for name, results in runs.items():
        rates = [r["requests_per_s"] for r in results]
        out[name] = {
            "requests_per_s": statistics.median(rates),
            "runs_requests_per_s": rates,
            "latency_ms": results[rates.index(statistics.median_low(rates))]["latency_ms"],
            "non_2xx": sum(r["non_2xx"] for r in results),
        }
    out["ratio"] = out["plateflow"]["requests_per_s"] / out["bare"]["requests_per_s"]
    return out


def _fixed_rate(url: str, rate: float, seconds: float, tmp: Path) -> dict[str, Any]:
    """One fixed-rate run of the load generator in its own process."""
    out = tmp / f"fixed-{time.monotonic_ns()}.json"
    args = [
        sys.executable, "-m", "plateflow._loadgen", "--url", url + "/v1/reads",
        "--rate", str(rate), "--duration", str(seconds), "--connections", "64",
        "--json", str(out), "--latencies",
    ]  # fmt: skip
    env = os.environ | {"PLATEFLOW_INGEST_TOKEN": TOKEN}
    subprocess.run(args, env=env, check=True, timeout=seconds + 120)
    result: dict[str, Any] = json.loads(out.read_text())
    latencies = sorted(result.pop("latencies_ms"))
    # A CDF of 200 points is enough for the report's plot; the raw values are not kept.
    step = max(1, len(latencies) // 200)
    result["latency_cdf_ms"] = latencies[::step] + latencies[-1:]
    return result


def _crash_check(mode: str, rate: float, seconds: float, tmp: Path) -> dict[str, Any]:
    """Single-read requests at ``rate`` for ``seconds``, then SIGKILL Redis right after the last
    202 and start it again on its files: how many acknowledged reads survived."""
    server = RedisProcess(mode)
    url = server.start()
    api = start_plateflow(url, tmp, cameras=CAMERAS)
    try:
        sent = _fixed_rate(api.url, rate, seconds, tmp)
        server.crash()
        server.start()
        client = redis.Redis.from_url(url)
        try:  # single-read requests: one stream entry per accepted read, in any partition
            streams = client.scan_iter(match=f"{READS_STREAM_PREFIX}*", _type="stream")
            kept = sum(int(client.xlen(key)) for key in streams)
        finally:
            client.close()
    finally:
        api.stop()
        server.stop()
    accepted = int(sent["accepted_reads"])
    return {"accepted": accepted, "kept_after_kill_9": kept, "lost": accepted - kept}


def _stack(redis_url: str, tmp: Path, workers: int, warm_up: Path) -> dict[str, Any]:
    """Both servers, each warmed up by one second of wrk (imports, first connections)."""
    servers = {
        "plateflow": start_plateflow(redis_url, tmp, workers, cameras=CAMERAS),
        "bare": start_bare(redis_url, tmp, workers),
    }
    for server in servers.values():
        run_wrk(server.url + "/v1/reads", warm_up, 1)
    _trim(redis_url)
    return servers


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [1, 100] if args.quick else [1, 10, 100, 1000]
    seconds = 2.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    fixed_rate = 500.0 if args.quick else args.fixed_rate
    fixed_seconds = 2.0 if args.quick else args.fixed_seconds
    workers = [1] if args.quick or args.workers == 1 else [1, args.workers]
    modes = ["everysec", "always"]
    tmp = Path(tempfile.mkdtemp(prefix="plateflow-bench-ingest-"))
    bodies = _bodies(sorted(set(sizes) | {1, 100}))
    scripts = {k: wrk_script(b, tmp / f"post-{k}.lua") for k, b in bodies.items()}
    result: dict[str, Any] = {
        "seconds_per_run": seconds,
        "rounds": rounds,
        "wrk": "2 threads, 32 connections",
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "batch": {},
        "workers": {},
        "durability": {},
    }
    wrk_runs = rounds * 2 * (len(sizes) + 2 * len(modes)) + 2 * 2 * (len(workers) - 1)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("ingest benchmark (wrk runs)", total=wrk_runs)
        with private_redis("none") as url:
            servers = _stack(url, tmp, 1, scripts[1])
            try:
                for k in sizes:
                    progress.update(task, description=f"{k} read(s) per request")
                    pair = _pair(servers, scripts[k], seconds, rounds, url, progress, task)
                    for name in ("plateflow", "bare"):
                        pair[name]["reads_per_s"] = pair[name]["requests_per_s"] * k
                    result["batch"][str(k)] = pair
                progress.update(task, description=f"fixed rate {fixed_rate:g}/s")
                fixed: dict[str, Any] = {}
                for name, server in servers.items():
                    fixed[name] = _fixed_rate(server.url, fixed_rate, fixed_seconds, tmp)
                    _trim(url)
                result["fixed_rate"] = {"rate": fixed_rate, "seconds": fixed_seconds} | fixed
            finally:
                for server in servers.values():
                    server.stop()
            for n in workers[1:]:
                servers = _stack(url, tmp, n, scripts[1])
                try:
                    progress.update(task, description=f"{n} worker processes")
                    result["workers"][str(n)] = {
                        str(k): _pair(servers, scripts[k], seconds, 1, url, progress, task)
                        for k in (1, 100)
                    }
                finally:
                    for server in servers.values():
                        server.stop()
        for mode in modes:
            with private_redis(mode) as url:
                servers = _stack(url, tmp, 1, scripts[1])
                try:
                    progress.update(task, description=f"Redis AOF appendfsync {mode}")
                    result["durability"][mode] = {
                        str(k): _pair(servers, scripts[k], seconds, rounds, url, progress, task)
                        for k in (1, 100)
                    }
                finally:
                    for server in servers.values():
                        server.stop()
    crash_rate, crash_s = (300.0, 1.0) if args.quick else (1000.0, 5.0)
    result["crash"] = {
        mode: _crash_check(mode, crash_rate, crash_s, tmp) for mode in ("none", *modes)
    }
    result["load_average_after"] = os.getloadavg()
    return result


def _table(result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="HTTP ingest: plateflow beside the bare endpoint (same run)")
    for col in ("case", "plateflow req/s", "bare req/s", "ratio", "plateflow reads/s"):
        table.add_column(col, justify="right")
    rows: list[tuple[str, dict[str, Any], int]] = [
        (f"{k} read(s)", pair, int(k)) for k, pair in result["batch"].items()
    ]
    for mode, pairs in result["durability"].items():
        rows += [(f"AOF {mode}, {k} read(s)", pair, int(k)) for k, pair in pairs.items()]
    for n, pairs in result["workers"].items():
        rows += [(f"{n} workers, {k} read(s)", pair, int(k)) for k, pair in pairs.items()]
    for name, pair, k in rows:
        pf, bare = pair["plateflow"]["requests_per_s"], pair["bare"]["requests_per_s"]
        table.add_row(name, f"{pf:,.0f}", f"{bare:,.0f}", f"{pair['ratio']:.2f}", f"{pf * k:,.0f}")
    console.print(table)
    for mode, crash in result["crash"].items():
        console.print(
            f"Redis {mode}: {crash['accepted']:,} reads acknowledged, "
            f"{crash['kept_after_kill_9']:,} kept after kill -9, {crash['lost']:,} lost"
        )
    fixed = result["fixed_rate"]
    for name in ("plateflow", "bare"):
        lat = fixed[name]["latency_ms"]
        console.print(
            f"{name} at {fixed['rate']:g} req/s: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
            f"errors {fixed[name]['errors'] or 'none'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes (CI)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per case")
    parser.add_argument("--fixed-rate", type=float, default=2000.0, help="requests/s")
    parser.add_argument("--fixed-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="also measure N worker processes")
    args = parser.parse_args(argv)
    result = run(args)
    _table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
