"""Subcommands of the live pipeline: ``run``, ``demo``, ``simulate``, ``subscribe``."""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import redis
from rich.console import Console

from plateflow._cli_parts import command
from plateflow._cli_session import add_why, os_identity
from plateflow.embedded import redis_url, redis_urls
from plateflow.settings import Settings

log = logging.getLogger(__name__)
out = Console()


def register(sub: Any) -> None:
    p = command(
        sub,
        "run",
        cmd_run,
        help="run the Bytewax flow against the configured Redis",
        description="Run the matching flow. Bytewax's scaling and recovery options pass through; "
        "set BYTEWAX_DATAFLOW_API_ENABLED=true to serve the flow's /metrics on port 3030.",
    )
    p.add_argument(
        "-w", "--workers-per-process", type=int, default=None,
        help="worker threads (default BYTEWAX_WORKERS_PER_PROCESS, else 1)",
    )  # fmt: skip
    p.add_argument(
        "-i", "--process-id", type=int, default=None,
        help="this process's id (default BYTEWAX_PROCESS_ID, else the ordinal of "
        "BYTEWAX_POD_NAME in BYTEWAX_STATEFULSET_NAME)",
    )  # fmt: skip
    p.add_argument(
        "-a", "--addresses", default=None,
        help='"host1:9999;host2:9999" (default BYTEWAX_ADDRESSES, BYTEWAX_HOSTFILE_PATH, '
        "else derived from the cluster_* settings)",
    )  # fmt: skip
    p.add_argument("-r", "--recovery-directory", type=Path, default=None)
    p.add_argument("--drain", action="store_true", help="stop once every stream is read to its end")

    p = command(
        sub,
        "demo",
        cmd_demo,
        help="live demo on embedded defaults: simulated cameras, hotlists, alerts, Parquet",
    )
    p.add_argument("--duration", type=float, default=30.0, help="seconds of traffic (default 30)")
    p.add_argument("--rate", type=float, default=2000.0, help="reads per second (default 2000)")
    p.add_argument("--cameras", type=int, default=40)
    p.add_argument("--quiet", action="store_true", help="no live alert feed, summary only")

    p = command(sub, "simulate", cmd_simulate, help="send simulated camera reads to Redis")
    p.add_argument("--rate", type=float, default=1000.0, help="reads/s; 0 = as fast as possible")
    p.add_argument("--duration", type=float, default=None, help="seconds (default: until --count)")
    p.add_argument("--count", type=int, default=None, help="stop after this many reads")
    p.add_argument("--cameras", type=int, default=40)
    p.add_argument("--hit-rate", type=float, default=0.002, help="share of reads of listed plates")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--jsonl", type=Path, default=None, help="write reads to this file, not Redis")

    p = command(
        sub,
        "subscribe",
        cmd_subscribe,
        help="print alerts as they come, from the API's alert stream (after `plateflow login`)",
        description="Follow GET /v1/alerts/stream on PLATEFLOW_API_URL as your session "
        "(`plateflow login`; alerts:receive): opening and closing are audited, a dropped "
        "connection resumes with Last-Event-ID, missing nothing.",
    )
    p.add_argument("--covert", action="store_true", help="also covert alerts (if you may)")
    p.add_argument("--replay", type=int, default=0, help="first print the last N logged alerts")
    p.add_argument("--count", type=int, default=None, help="stop after N alerts")
    p.add_argument("--json", action="store_true", help="one JSON alert per line")
    add_why(p)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from dataflow import FlowOptions, resolve_cluster, run_flow

    cluster = resolve_cluster(
        os.environ,
        process_id=args.process_id,
        addresses=[a for a in args.addresses.split(";") if a] if args.addresses else None,
        workers_per_process=args.workers_per_process,
        cluster_processes=settings.cluster_processes,
        cluster_service=settings.cluster_service,
        cluster_namespace=settings.cluster_namespace,
        cluster_port=settings.cluster_port,
    )
    if cluster.addresses:
        log.info("flow process %s of %d", cluster.process_id, cluster.processes)
    with redis_url(settings, "flow") as url:
        run_flow(
            settings,
            url,
            options=FlowOptions(
                drain=args.drain, flush_s=settings.flush_s, flush_reads=settings.flush_reads
            ),
            workers_per_process=cluster.workers_per_process,
            process_id=cluster.process_id,
            addresses=list(cluster.addresses) if cluster.addresses else None,
            recovery_directory=args.recovery_directory,
        )
    return 0


def _hot_plates(settings: Settings) -> list[tuple[str, str | None]]:
    from dataflow import HotlistConfig, HotlistSources
    from plateflow._demo import plates_for

    sources = HotlistSources(HotlistConfig.from_settings(settings))
    return plates_for(sources.load_all(), random.Random(1))


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from plateflow.simulator import Simulator
    from sinks import append_reads

    if args.count is None and args.duration is None:
        args.count = 10_000
    sim = Simulator(
        n_cameras=args.cameras, hot_plates=_hot_plates(settings), hit_rate=args.hit_rate,
        seed=args.seed,
    )  # fmt: skip
    deadline = time.monotonic() + args.duration if args.duration else None
    sent = 0
    chunk = 100 if args.rate <= 0 else max(1, min(1000, int(args.rate // 20)))
    with redis_url(settings, "ingest") as url:
        client = None if args.jsonl else redis.Redis.from_url(url)
        sink = args.jsonl.open("wb") if args.jsonl else None
        try:
            for batch in sim.stream(args.rate, chunk=chunk):
                if args.count is not None:
                    batch = batch[: args.count - sent]
                if sink is not None:
                    sink.write(b"".join(orjson.dumps(r) + b"\n" for r in batch))
                elif client is not None:
                    append_reads(client, batch, settings.partitions)
                sent += len(batch)
                if (args.count is not None and sent >= args.count) or (
                    deadline is not None and time.monotonic() >= deadline
                ):
                    break
        finally:
            if sink is not None:
                sink.close()
            if client is not None:
                client.close()
    out.print(f"sent {sent:,} simulated reads")
    return 0


def cmd_subscribe(args: argparse.Namespace, settings: Settings) -> int:
    from plateflow._cli_session import LOGIN_FIRST, CliSessionError, read_token
    from plateflow._console import render_alert
    from plateflow._sse import StreamClient

    token = read_token(settings)
    if token is None:
        raise CliSessionError(LOGIN_FIRST)
    why = {k: getattr(args, k, None) for k in ("case_number", "event_number", "description")}
    params = {k: v for k, v in why.items() if v}
    params |= {"covert": "true" if args.covert else "false", "replay": str(args.replay)}
    client = StreamClient(
        settings.api_url, token, params, timeout_s=max(30.0, 4 * settings.sse_heartbeat_s)
    )
    shown = 0
    try:
        for event in client.events():
            if event.event == "alert":
                alert = orjson.loads(event.data)
                if args.json:
                    sys.stdout.write(event.data + "\n")
                    sys.stdout.flush()
                else:
                    out.print(render_alert(alert), highlight=False)
                shown += 1
                if args.count is not None and shown >= args.count:
                    return 0
            elif event.event == "gap":
                gap = orjson.loads(event.data)
                out.print(f"[yellow]alerts before {gap['oldest']} were trimmed from the log[/]")
            elif event.event == "end":
                out.print(f"stream ended: {orjson.loads(event.data)['reason']}")
                return 1
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from dataflow import FlowOptions, HotlistConfig, make_holder, run_flow
    from plateflow import _demo
    from plateflow._console import AlertFeed, print_alert
    from plateflow.simulator import Simulator

    sim = Simulator(n_cameras=args.cameras, seed=7)
    big = _demo.generate_large_list(
        settings.data_dir / "demo" / f"{_demo.GENERATED_LIST}.csv", 100_000, 2026, sim
    )
    files = tuple(settings.hotlist_files) or tuple(_demo.sample_hotlist_files())
    settings = settings.replace(
        hotlist_files=(*files, big),
        geofence_file=settings.geofence_file or _demo.samples_dir() / "geofences.geojson",
    )
    out.rule("plateflow demo")
    with redis_urls(settings) as urls:
        # One process, three services: each part connects as its own Redis user.
        where = urls.flow.rsplit("@", 1)[-1]
        out.print(f"Redis: {where}   data: {settings.data_dir.resolve()}")
        started = time.monotonic()
        holder = make_holder(HotlistConfig.from_settings(settings), urls.flow)
        lists = list(holder.current().hotlists.values())
        for h in lists:
            out.print(
                f"  hotlist [bold]{h.name}[/] ({h.category}, {len(h.entries):,} entries, "
                f"policy {h.policy.to_dict()})"
            )
        out.print(
            f"index built in {time.monotonic() - started:.1f} s; streaming for "
            f"{args.duration:.0f} s at {args.rate:,.0f} reads/s …"
        )
        sim_hot = _demo.plates_for(lists, random.Random(3))
        sim = Simulator(n_cameras=args.cameras, hot_plates=sim_hot, hit_rate=0.003, seed=11)
        feed = AlertFeed(urls.api, (lambda a: None) if args.quiet else print_alert(out)).start()
        started = time.monotonic()
        feeder = _demo.Feeder(urls.ingest, settings, sim, args.rate, args.duration).start()
        run_flow(
            settings,
            urls.flow,
            holder=holder,
            options=FlowOptions(
                drain=True,
                drain_after_s=args.duration + 0.5,
                flush_s=settings.flush_s,
                flush_reads=settings.flush_reads,
            ),
        )
        feeder.thread.join()
        time.sleep(0.3)  # let the last published alerts reach the feed
        feed.stop()
        _demo.summary(out, settings, urls.flow, started, feed, feeder.sent)
    if _demo.seed_transparency(settings, f"demo:{os_identity()}"):
        out.print("posted the sample ALPR policy and sample designees for the public page")
    out.print(
        "public transparency page: run `plateflow serve`, then open "
        f"http://{settings.api_host}:{settings.api_port}/transparency"
    )
    return 0
