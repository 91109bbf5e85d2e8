"""What the embedded Redis's AOF fsync mode costs the ingest: ``everysec`` against ``always``.

    python benchmarks/redis_fsync.py --seconds 5 --batch 100

For each mode a fresh embedded Redis (AOF in a temporary data dir, the ingest's own ACL user)
takes camera requests of ``--batch`` reads (``sinks.append_reads``: one pipeline per request,
as the HTTP ingest sends them) from ``--clients`` threads for ``--seconds``; the table shows
requests/s, reads/s and the p50/p99 latency of one request.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plateflow.embedded import EmbeddedRedis
from plateflow.simulator import Simulator
from sinks import append_reads


def measure(fsync: str, seconds: float, batch: int, clients: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-fsync-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", fsync=fsync)
        server.start()
        try:
            requests = Simulator(malformed_rate=0.0, seed=1).reads(batch * 50)
            chunks = [requests[i : i + batch] for i in range(0, len(requests), batch)]
            latencies: list[list[float]] = [[] for _ in range(clients)]
            deadline = time.monotonic() + seconds

            def client(index: int) -> None:
                conn = redis.Redis.from_url(server.url_for("ingest"))
                n = 0
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    append_reads(conn, chunks[n % len(chunks)], 4)
                    latencies[index].append(time.perf_counter() - started)
                    n += 1
                conn.close()

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
        finally:
            server.stop()
    flat = np.array([x for per in latencies for x in per])
    return {
        "requests_s": len(flat) / elapsed,
        "reads_s": len(flat) * batch / elapsed,
        "p50_ms": float(np.percentile(flat, 50) * 1000),
        "p99_ms": float(np.percentile(flat, 99) * 1000),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=100, help="reads per request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent ingest connections")
    args = parser.parse_args()
    table = Table(title=f"embedded Redis AOF: {args.batch} reads a request, {args.clients} clients")
    for column in ("appendfsync", "requests/s", "reads/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for fsync in ("everysec", "always"):
        r = measure(fsync, args.seconds, args.batch, args.clients)
        table.add_row(
            fsync, f"{r['requests_s']:,.0f}", f"{r['reads_s']:,.0f}", f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
        )  # fmt: skip
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
