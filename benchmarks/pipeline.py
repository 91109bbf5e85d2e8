"""End-to-end pipeline benchmark: streams -> flow -> alerts + Parquet.

    python benchmarks/pipeline.py --reads 1000000 --json bench-results/pipeline.json

1. Loads N simulated reads into the partitioned streams (camera batches of 100 reads an entry).
2. Runs the real flow until drained against a 100,000-entry hotlist (exact + one OCR
   substitution), with ``--mixed`` the issue-3 mixed set instead (1,000,000 entries OCR, 100,000
   entries one difference + OCR, 10,000 patterns), and reports end-to-end reads/s and the time
   per stage (from the flow's own Prometheus counters).
3. Measures alert latency separately, under live traffic: a feeder sends reads stamped with the
   current time at ``--latency-rate`` reads/s while the flow runs and a subscriber records
   publish-time minus read-time for every alert (preloaded reads would only measure queueing).

With ``--processes 1,2,3`` it runs the flow as a cluster instead: for each count, the same
reads are loaded again and N real ``plateflow run --drain`` processes read them, each with the
environment a flow pod gets and its own index built from hotlist files
(benchmarks/pipeline_cluster.py); the table compares the counts measured in the same run,
beside the in-process flow (``bytewax.testing.run_main``) over the same reads.

    python benchmarks/pipeline.py --reads 2000000 --processes 1,2,3 --json bench/cluster.json

Redis is ``PLATEFLOW_REDIS_URL`` if set (it is FLUSHED), else a fresh embedded server.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.matching import make_pattern, unique_plates
from dataflow import FlowConfig, FlowOptions, IndexHolder, build_flow, tune_gc
from dataflow import _metrics as m
from matchers import Entry, Hotlist, OcrClasses, Policy
from plateflow.embedded import EmbeddedRedis
from plateflow.settings import Settings
from plateflow.simulator import Simulator, random_plates
from sinks import ALERTS_CHANNEL, append_reads

console = Console()


def hotlists(mixed: bool, sim: Simulator) -> list[Hotlist]:
    rng = np.random.default_rng(42)

    def plate_list(name: str, n: int, policy: Policy) -> Hotlist:
        plates = random_plates(rng, n - n // 100, "DLLLDDD") + random_plates(
            rng, n // 200, "LLLDDDD"
        )
        # 0.5% of the list passes the cameras, so there are real hits
        plates += [sim.plates[int(i)] for i in rng.integers(0, len(sim.plates) // 20, n // 200)]
        entries = tuple(Entry(f"{name}:{i}", p) for i, p in enumerate(dict.fromkeys(plates)))
        return Hotlist(name, "stolen_plate", policy, entries)

    if not mixed:
        return [plate_list("stolen100k", 100_000, Policy(ocr_equivalents=1))]
    # the same kind of partial plates as benchmarks/matching.py: what witnesses give
    patterns = [
        Entry(f"partial:{i}", make_pattern(rng, p), None, "partial", f"C-{i}")
        for i, p in enumerate(unique_plates(rng, 10_000))
    ]
    return [
        plate_list("ncic1m", 1_000_000, Policy(ocr_equivalents=1, priority=3)),
        plate_list("stolen100k", 100_000, Policy(differences=1, ocr_equivalents=1, priority=1)),
        Hotlist("partials", "major_crime", Policy(ocr_equivalents=1, priority=0), tuple(patterns)),
    ]


def fixed_holder(lists: list[Hotlist]) -> IndexHolder:
    """An index holder over ``lists`` as they are (no database, no reloads)."""
    return IndexHolder(lambda: lists, {h.name: h for h in lists}.get, OcrClasses())


def load_reads(client: redis.Redis, sim: Simulator, n: int, partitions: int) -> float:
    started = time.perf_counter()
    chunk = 50_000
    ts = int(time.time() * 1000)
    for start in range(0, n, chunk):
        reads = sim.reads(min(chunk, n - start), ts_ms=ts + start)
        append_reads(client, reads, partitions, per_entry=100)
    return time.perf_counter() - started


def stage_seconds() -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in m.STAGE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["stage"]] = sample.value
    return out


def latency_phase(
    url: str, settings: Settings, holder: IndexHolder, sim: Simulator, rate: float, seconds: float
) -> list[float]:
    latencies: list[float] = []
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(ALERTS_CHANNEL)
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            msg = pubsub.get_message(timeout=0.1)
            if msg is not None:
                alert = orjson.loads(msg["data"])
                latencies.append(time.time() * 1000 - alert["read"]["ts"])

    def feed() -> None:
        feeder = redis.Redis.from_url(url)
        for chunk in sim.stream(rate, chunk=max(1, int(rate // 100))):
            append_reads(feeder, chunk, settings.partitions, per_entry=100)
            if stop.is_set():
                break
        feeder.close()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    feeder_thread = threading.Thread(target=feed, daemon=True)
    feeder_thread.start()
    config = FlowConfig.from_settings(settings)
    flow = build_flow(config, url, holder, FlowOptions(drain=True, drain_after_s=seconds))
    from bytewax.testing import run_main

    timer = threading.Timer(seconds - 0.5, stop.set)
    timer.start()
    run_main(flow)
    stop.set()
    feeder_thread.join()
    time.sleep(0.3)
    listener.join()
    pubsub.close()
    client.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument(
        "--processes",
        type=lambda raw: [int(n) for n in raw.split(",")],
        default=None,
        help="run the flow as a cluster of N processes instead, e.g. 2 or 1,2,3",
    )
    parser.add_argument(
        "--workers-per-process",
        type=int,
        default=2,
        help="Bytewax workers (threads) in each cluster process (BYTEWAX_WORKERS_PER_PROCESS); "
        "2, as a flow pod runs (k8s/base/flow.yaml)",
    )
    parser.add_argument("--mixed", action="store_true", help="the issue-3 mixed hotlist set")
    parser.add_argument("--latency-rate", type=float, default=20_000.0)
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    configured = os.environ.get("PLATEFLOW_REDIS_URL")
    tmp = Path(tempfile.mkdtemp(prefix="plateflow-bench-"))
    server = None if configured else EmbeddedRedis(tmp / "redis")
    url = configured or server.start()  # type: ignore[union-attr]
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sim = Simulator(population_size=500_000, seed=5)
        lists = hotlists(args.mixed, sim)
        sim = Simulator(population_size=500_000, seed=5, hot_plates=[
            (e.plate, e.state) for h in lists for e in h.entries[:500] if not e.is_pattern
        ], hit_rate=0.001)  # fmt: skip
        if args.processes:
            result = cluster_mode(args, client, url, sim, lists, tmp)
            return report(result, args.json, "plateflow pipeline benchmark, cluster")
        t = time.perf_counter()
        holder = fixed_holder(lists)
        build_s = time.perf_counter() - t
        settings = Settings.load(
            {}, data_dir=str(tmp / "data"), partitions=str(args.partitions), batch_size="200"
        )
        load_s = load_reads(client, sim, args.reads, args.partitions)
        tune_gc()
        before = stage_seconds()
        stored, flow_s = drain_in_process(url, settings, holder)
        stages = {k: v - before.get(k, 0.0) for k, v in stage_seconds().items()}
        client.flushdb()
        lat = latency_phase(url, settings, holder, sim, args.latency_rate, args.latency_seconds)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result: dict[str, Any] = {
            "reads": args.reads,
            "stored_reads": stored,
            "hotlist_entries": sum(len(h.entries) for h in lists),
            "mixed": args.mixed,
            "partitions": args.partitions,
            "load_reads_per_s": round(args.reads / load_s),
            "index_build_s": round(build_s, 2),
            "flow_s": round(flow_s, 2),
            "e2e_reads_per_s": round(stored / flow_s),
            "alert_latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat else None,
            "alert_latency_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat else None,
            "latency_alerts": len(lat),
            "latency_rate_reads_per_s": args.latency_rate,
            "peak_rss_mb": round(peak),
            "rss_before_mb": round(rss0),
            "stage_s": {k: round(v, 3) for k, v in sorted(stages.items())},
        }
    finally:
        client.close()
        if server is not None:
            server.stop()
    return report(result, args.json, "plateflow pipeline benchmark")


def drain_in_process(url: str, settings: Settings, holder: IndexHolder) -> tuple[int, float]:
    """Run the flow in this process until the streams are drained; the reads stored and the
    seconds it took."""
    import polars as pl
    from bytewax.testing import run_main

    from sinks import ReadStore

    config = FlowConfig.from_settings(settings)
    flow = build_flow(config, url, holder, FlowOptions(drain=True, flush_reads=500_000))
    t = time.perf_counter()
    run_main(flow)
    flow_s = time.perf_counter() - t
    stored = ReadStore(settings.data_dir).scan_reads().select(pl.len()).collect().item()
    return stored, flow_s


def cluster_mode(
    args: argparse.Namespace,
    client: redis.Redis,
    url: str,
    sim: Simulator,
    lists: list[Hotlist],
    tmp: Path,
) -> dict[str, Any]:
    """The same reads through clusters of each size in ``args.processes``, one after another."""
    import polars as pl

    from benchmarks.pipeline_cluster import run_cluster, write_hotlist_files
    from sinks import ReadStore

    files = write_hotlist_files(lists, tmp / "hotlists")
    rows = []
    # the in-process flow over the same reads first, as the reference a process is held to
    client.flushdb()
    holder = fixed_holder(lists)
    tune_gc()
    settings = Settings.load(
        {}, data_dir=str(tmp / "data-in-process"), partitions=str(args.partitions),
        batch_size="200",
    )  # fmt: skip
    load_reads(client, sim, args.reads, args.partitions)
    load_before = os.getloadavg()[0]
    stored, flow_s = drain_in_process(url, settings, holder)
    in_process = {
        "stored_reads": stored,
        "flow_s": round(flow_s, 2),
        "e2e_reads_per_s": round(stored / flow_s),
        "load_average_before": round(load_before, 1),
        "load_average_after": round(os.getloadavg()[0], 1),
    }
    console.print({"in_process": in_process})
    holder.stop()
    del holder
    for processes in args.processes:
        client.flushdb()
        data_dir = tmp / f"data-{processes}"
        load_s = load_reads(client, sim, args.reads, args.partitions)
        load_before = os.getloadavg()[0]
        timing = run_cluster(
            processes, url, data_dir, files, args.partitions, tmp / "work",
            workers_per_process=args.workers_per_process,
        )  # fmt: skip
        stored = ReadStore(data_dir).scan_reads().select(pl.len()).collect().item()
        rows.append({
            "processes": processes,
            "workers_per_process": args.workers_per_process,
            "stored_reads": stored,
            "flow_s": round(timing["flow_s"], 2),
            "e2e_reads_per_s": round(stored / timing["flow_s"]),
            "startup_s": round(timing["startup_s"], 1),
            "load_reads_per_s": round(args.reads / load_s),
            "load_average_before": round(load_before, 1),
            "load_average_after": round(os.getloadavg()[0], 1),
        })  # fmt: skip
        console.print(rows[-1])
    return {
        "reads": args.reads,
        "hotlist_entries": sum(len(h.entries) for h in lists),
        "mixed": args.mixed,
        "partitions": args.partitions,
        "cores": os.cpu_count(),
        "in_process": in_process,
        "cluster": rows,
    }


def report(result: dict[str, Any], json_path: Path | None, title: str) -> int:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key == "in_process":
            table.add_row("in-process flow", ", ".join(f"{k} {v:,}" for k, v in value.items()))
            continue
        if key == "cluster":
            for row in value:
                table.add_row(f"{row['processes']} process(es)", ", ".join(
                    f"{k} {v:,}" for k, v in row.items() if k != "processes"
                ))  # fmt: skip
            continue
        table.add_row(key, str(value))
    console.print(table)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
