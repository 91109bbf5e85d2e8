"""A fixed-rate HTTP load generator for the ingest endpoints (open loop, like wrk2).

wrk measures the most a server can do; an operator also needs to know how it answers at the rate
the cameras will actually send. This generator schedules request ``i`` at ``start + i / rate``
whatever the server does, and times each request from that *scheduled* moment, so a server that
stalls is charged for every request that waited behind the stall (the "coordinated omission"
wrk2 corrects; a closed-loop client that waits for each answer before sending the next one
would hide it).

HTTP/1.1 keep-alive on ``connections`` sockets (``asyncio`` streams, uvloop when installed);
responses must carry ``Content-Length`` (uvicorn's do). A request that fails (refused
connection, timeout, malformed answer) is counted under its error kind and its connection is
reopened. Run as ``python -m plateflow._loadgen`` to get a separate process (the benchmarks do,
so the generator never shares a core's GIL with what it measures); the token is taken from
``PLATEFLOW_INGEST_TOKEN``, never from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson

__all__ = ["Body", "LoadReport", "Target", "percentiles", "run_fixed_rate", "simulated_bodies"]

#: A request body and the read ids it carries (for alert latency), built at send time.
Body = tuple[bytes, list[str]]

_PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class Target:
    """Where to send: ``http(s)://host:port/path`` and the ingest token."""

    url: str
    token: str

    @property
    def parts(self) -> tuple[str, int, str, bool]:
        split = urlsplit(self.url)
        if split.scheme not in ("http", "https") or not split.hostname:
            msg = f"--ingest-url {self.url!r}: expected http(s)://host:port/path"
            raise ValueError(msg)
        tls = split.scheme == "https"
        port = split.port or (443 if tls else 80)
        path = split.path if split.path not in ("", "/") else "/v1/reads"
        return split.hostname, port, path, tls


def percentiles(values_ms: list[float]) -> dict[str, float]:
    """``p50 p90 p99 p99.9 max mean`` of latencies in ms (zeros when there are none)."""
    if not values_ms:
        return {f"p{p:g}": 0.0 for p in _PERCENTILES} | {"max": 0.0, "mean": 0.0}
    arr = np.asarray(values_ms)
    out = {f"p{p:g}": float(np.percentile(arr, p)) for p in _PERCENTILES}
    return out | {"max": float(arr.max()), "mean": float(arr.mean())}


@dataclass
class LoadReport:
    """What a fixed-rate run did. Latencies are ms from each request's scheduled time."""

    rate: float
    duration_s: float
    connections: int
    reads_per_request: int
    scheduled: int = 0
    completed: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted_reads: int = 0
    rejected_reads: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    timeline: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary (no raw latencies)."""
        return {
            "target_rate": self.rate,
            "duration_s": self.duration_s,
            "connections": self.connections,
            "reads_per_request": self.reads_per_request,
            "scheduled": self.scheduled,
            "completed": self.completed,
            "requests_per_s": self.completed / self.elapsed_s if self.elapsed_s else 0.0,
            "reads_accepted_per_s": self.accepted_reads / self.elapsed_s if self.elapsed_s else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "accepted_reads": self.accepted_reads,
            "rejected_reads": self.rejected_reads,
            "latency_ms": percentiles(self.latencies_ms),
            "elapsed_s": self.elapsed_s,
        }


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("an answer without Content-Length")
    return status, await reader.readexactly(length)


async def run_fixed_rate(
    target: Target,
    make_body: Callable[[int], Body],
    *,
    rate: float,
    duration_s: float,
    connections: int = 64,
    reads_per_request: int = 1,
    timeout_s: float = 10.0,
    on_sent: Callable[[list[str], float], None] | None = None,
    on_second: Callable[[LoadReport], None] | None = None,
) -> LoadReport:
    """Send ``rate`` requests/s for ``duration_s`` seconds and report what came back.

    ``make_body(i)`` builds request ``i`` when it is due; ``on_sent(read_ids, wall_time)`` is
    called as it goes out (the alert-latency consumer's clock); ``on_second(report)`` once a
    second while running (live displays). Requests still unanswered ``timeout_s`` after the
    last one was due are counted as ``timeout`` errors.
    """
    if rate <= 0 or duration_s <= 0 or connections < 1:
        raise ValueError("rate, duration and connections must be positive")
    host, port, path, tls = target.parts
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"X-Plateflow-Token: {target.token}\r\nContent-Length: %d\r\n\r\n"
    ).encode("latin-1")
    report = LoadReport(rate, duration_s, connections, reads_per_request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    context = ssl.create_default_context() if tls else None

    async def worker() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (item := await queue.get()) is not None:
            due, body = item
            try:
                if writer is None:
                    opened = asyncio.open_connection(host, port, ssl=context)
                    reader, writer = await asyncio.wait_for(opened, timeout_s)
                assert reader is not None and writer is not None
                writer.write(head % len(body) + body)
                status, payload = await asyncio.wait_for(_response(reader), timeout_s)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                kind = "timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
                report.errors[kind] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            report.completed += 1
            report.statuses[status] += 1
            report.latencies_ms.append((time.perf_counter() - due) * 1000.0)
            if status == 202:
                with contextlib.suppress(orjson.JSONDecodeError, TypeError, KeyError):
                    answer = orjson.loads(payload)
                    report.accepted_reads += int(answer["accepted"])
                    report.rejected_reads += len(answer["rejected"])
        if writer is not None:
            writer.close()

    async def ticker() -> None:
        while True:
            await asyncio.sleep(1.0)
            report.elapsed_s = time.perf_counter() - start
            report.timeline.append(
                {"t": report.elapsed_s, "completed": report.completed, "errors": sum(
                    report.errors.values()
                ), "accepted_reads": report.accepted_reads}
            )  # fmt: skip
            if on_second is not None:
                on_second(report)

    workers = [loop.create_task(worker()) for _ in range(connections)]
    total = max(1, int(rate * duration_s))
    # perf_counter, not loop.time(): uvloop's clock has a resolution of one millisecond.
    start = time.perf_counter()
    tick = loop.create_task(ticker())
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:  # never early: a latency is timed from the scheduled moment
            await asyncio.sleep(delay)
        body, ids = make_body(i)
        if on_sent is not None:
            on_sent(ids, time.time())
        queue.put_nowait((due, body))
        report.scheduled += 1
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=timeout_s + 1.0)
    for task in pending:
        task.cancel()
    lost = report.scheduled - report.completed - sum(report.errors.values())
    if lost > 0:
        report.errors["timeout"] += lost
    report.elapsed_s = time.perf_counter() - start
    tick.cancel()
    return report


def simulated_bodies(
    reads_per_request: int,
    *,
    prefix: str,
    hot_plates: list[tuple[str, str | None]] | None = None,
    hit_rate: float = 0.002,
    seed: int = 7,
) -> Callable[[int], Body]:
    """Bodies of simulated camera traffic (:class:`plateflow.simulator.Simulator`), stamped at
    send time, with read ids ``{prefix}{n}`` so this run's alerts can be told from others'."""
    from plateflow.simulator import Simulator

    sim = Simulator(hot_plates=hot_plates or (), hit_rate=hit_rate, seed=seed)
    counter = 0
    ahead: list[dict[str, Any]] = []

    def make(_: int) -> Body:
        nonlocal counter, ahead
        if len(ahead) < reads_per_request:
            # The simulator costs ~20 us a call whatever its size: draw reads in bulk, and
            # stamp them when they go out.
            ahead = sim.reads(max(256, reads_per_request))
        reads, ahead = ahead[:reads_per_request], ahead[reads_per_request:]
        now_ms = int(time.time() * 1000)
        ids = []
        for read in reads:
            counter += 1
            read["read_id"] = f"{prefix}{counter}"
            read["ts"] = now_ms
            ids.append(read["read_id"])
        payload = reads[0] if reads_per_request == 1 else reads
        return orjson.dumps(payload), ids

    return make


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    """``python -m plateflow._loadgen``: one fixed-rate run, its summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://host:port/v1/reads")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--reads-per-request", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    parser.add_argument("--latencies", action="store_true", help="include every latency")
    args = parser.parse_args(argv)
    token = os.environ.get("PLATEFLOW_INGEST_TOKEN", "")
    _install_uvloop()
    report = asyncio.run(
        run_fixed_rate(
            Target(args.url, token),
            simulated_bodies(args.reads_per_request, prefix=f"lg-{os.getpid()}-"),
            rate=args.rate,
            duration_s=args.duration,
            connections=args.connections,
            reads_per_request=args.reads_per_request,
        )
    )
    summary = report.summary()
    if args.latencies:
        summary["latencies_ms"] = report.latencies_ms
    text = orjson.dumps(summary, option=orjson.OPT_INDENT_2)
    if args.json:
        args.json.write_bytes(text)
    else:
        sys.stdout.write(text.decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
