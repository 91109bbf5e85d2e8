"""``plateflow bench target``: load-test a running deployment's camera ingest.

The benchmark suite itself (matching, pipeline, ingest, storage, console, each beside its
baselines) is ``python -m benchmarks`` in a source checkout; this command is what an operator
points at a deployment. The ingest token comes from ``PLATEFLOW_INGEST_TOKEN`` or
``--token-file`` (never a flag value); the Redis URL, for the inside view (alert latency,
consumer lag, dead letters), is the usual ``PLATEFLOW_REDIS_URL``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from plateflow._cli_parts import command, command_group
from plateflow._loadgen import LoadReport, percentiles
from plateflow.settings import Settings

log = logging.getLogger(__name__)
out = Console()

#: Most a single run may send, so a typo in --rate cannot flood a deployment for an hour.
MAX_DURATION_S = 3600.0
MAX_RATE = 100_000.0


def register(sub: Any) -> None:
    kinds = command_group(
        sub,
        "bench",
        help="load-test a running deployment (the full suite: python -m benchmarks)",
        description="Benchmarks an operator runs against a deployment.",
        metavar="KIND",
    )
    p = command(
        kinds,
        "target",
        cmd_target,
        help="drive a running ingest at a fixed rate with simulated camera traffic",
        description="Send simulated camera reads to INGEST_URL at RATE requests/s for DURATION "
        "seconds (open loop: each request timed from its scheduled moment) and report sustained "
        "throughput, accepted and rejected reads, ingest latency percentiles and errors, live "
        "and in --json/--html. With PLATEFLOW_REDIS_URL set it also watches the deployment: "
        "alert latency of this run's reads (a consumer on the alert log), consumer lag of the "
        "flow, dead letters. Token: PLATEFLOW_INGEST_TOKEN or --token-file.",
    )
    p.add_argument("--ingest-url", required=True, help="http(s)://host:port[/v1/reads]")
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--duration", type=float, required=True, help="seconds of traffic")
    p.add_argument("--reads-per-request", type=int, default=1, help="reads per request body")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    p.add_argument("--token-file", type=Path, default=None, help="file holding the ingest token")
    p.add_argument(
        "--hotlist",
        type=Path,
        action="append",
        default=None,
        help="hotlist CSV whose plates the traffic includes (default: PLATEFLOW_HOTLIST_FILES)",
    )
    p.add_argument("--hit-rate", type=float, default=0.01, help="share of reads of listed plates")
    p.add_argument("--settle", type=float, default=5.0, help="seconds to wait for the flow after")
    p.add_argument("--json", type=Path, default=None, help="write the report's JSON here")
    p.add_argument("--html", type=Path, default=None, help="write the HTML report here")


def _token(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.token_file is not None:
        if not args.token_file.is_file():
            return None
        return args.token_file.read_text().strip() or None
    # The configured tokens are hashes (PLATEFLOW_INGEST_TOKENS_FILE): never a token to send.
    return os.environ.get("PLATEFLOW_INGEST_TOKEN") or None


def _hot_plates(files: list[Path]) -> list[tuple[str, str | None]]:
    import records
    from plateflow._demo import plates_for

    return plates_for([records.load_hotlist_file(path) for path in files], random.Random(14))


def _live_table(report: LoadReport, watcher: Any) -> Table:
    table = Table(title=f"bench target: {report.rate:g} req/s for {report.duration_s:g} s")
    table.add_column("figure")
    table.add_column("value", justify="right")
    elapsed = max(report.elapsed_s, 1e-9)
    lat = percentiles(report.latencies_ms[-20_000:])
    rows = [
        ("elapsed s", f"{report.elapsed_s:.0f}"),
        ("requests sent / answered", f"{report.scheduled:,} / {report.completed:,}"),
        ("requests/s answered", f"{report.completed / elapsed:,.0f}"),
        ("reads accepted / rejected", f"{report.accepted_reads:,} / {report.rejected_reads:,}"),
        ("ingest latency p50 / p99 ms", f"{lat['p50']:.1f} / {lat['p99']:.1f}"),
        ("errors", ", ".join(f"{k} {v}" for k, v in report.errors.items()) or "none"),
    ]
    if watcher is not None:
        alert = percentiles(watcher.alert_latencies_ms)
        lag = watcher.current_lag_s()
        rows += [
            ("alerts of this run", f"{watcher.alerts_seen:,}"),
            ("alert latency p50 / p99 ms", f"{alert['p50']:.0f} / {alert['p99']:.0f}"),
            ("consumer lag s", "-" if lag is None else f"{lag:.2f}"),
        ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def cmd_target(args: argparse.Namespace, settings: Settings) -> int:
    from plateflow._bench_report import write_target_html
    from plateflow._bench_target import run_target

    if not (0 < args.rate <= MAX_RATE) or not (0 < args.duration <= MAX_DURATION_S):
        out.print(
            f"[bold red]error:[/] --rate must be in (0, {MAX_RATE:,.0f}] and --duration in "
            f"(0, {MAX_DURATION_S:,.0f}] seconds"
        )
        return 2
    if args.reads_per_request < 1 or args.connections < 1:
        out.print("[bold red]error:[/] --reads-per-request and --connections must be at least 1")
        return 2
    token = _token(args, settings)
    if token is None:
        where = f"the file {args.token_file}" if args.token_file else "PLATEFLOW_INGEST_TOKEN"
        out.print(
            f"[bold red]error:[/] no ingest token: {where} is missing or empty; set "
            "PLATEFLOW_INGEST_TOKEN or pass --token-file FILE (never the token itself)"
        )
        return 2
    hotlists = args.hotlist or list(settings.hotlist_files)
    hot = _hot_plates(hotlists) if hotlists else []
    if settings.redis_url is None:
        out.print("no PLATEFLOW_REDIS_URL: measuring the ingest only (no alert latency or lag)")
    with Live(console=out, refresh_per_second=2) as live:
        try:
            report = run_target(
                args.ingest_url,
                token,
                rate=args.rate,
                duration_s=args.duration,
                reads_per_request=args.reads_per_request,
                connections=args.connections,
                redis_url=settings.redis_url,
                partitions=settings.partitions,
                hot_plates=hot,
                hit_rate=args.hit_rate if hot else 0.0,
                settle_s=args.settle,
                on_second=lambda load, watcher: live.update(_live_table(load, watcher)),
            )
        except ValueError as exc:
            out.print(f"[bold red]error:[/] {exc}")
            return 2
        live.update(_live_table(report.load, report.watcher))
    out.print()
    summary = report.summary()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        out.print(f"wrote {args.json}")
    if args.html:
        write_target_html(summary, report, args.html)
        out.print(f"wrote {args.html}")
    failed = sum(report.load.errors.values()) + sum(
        n for status, n in report.load.statuses.items() if status >= 500
    )
    return 1 if failed else 0
