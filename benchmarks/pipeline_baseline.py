"""Pipeline baseline: the naive stream consumer the flow is measured against.

    python benchmarks/pipeline_baseline.py --reads 200000 --json OUT

What a first version of an ALPR matcher usually is: the producer ``XADD``s one read per stream
entry, and one Python process loops ``XREAD`` (500 entries a call, every partition), decodes each
entry, validates it, matches it against the same 100,000-entry hotlist as
``benchmarks/pipeline.py`` (through the same :class:`matchers.HotlistIndex`, a read at a time)
and publishes each alert. No Parquet, no offsets, no cooldowns: it does less than the flow, so
its reads/s is an upper bound of the naive design. Redis is a private server of its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import write_json
from benchmarks._servers import private_redis
from benchmarks.pipeline import hotlists
from matchers import HotlistIndex, OcrClasses
from matchers.reads import ReadError, validate_read
from plateflow.simulator import Simulator
from sinks import ALERTS_CHANNEL, partition_for, stream_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    sim = Simulator(population_size=500_000, seed=5)
    lists = hotlists(False, sim)
    hot = [(e.plate, e.state) for h in lists for e in h.entries[:500]]
    sim = Simulator(population_size=500_000, seed=5, hot_plates=hot, hit_rate=0.001)
    index = HotlistIndex.build(lists, OcrClasses())
    with private_redis("none") as url:
        client = redis.Redis.from_url(url)
        started = time.perf_counter()
        for lo in range(0, args.reads, 10_000):
            pipe = client.pipeline(transaction=False)
            for read in sim.reads(min(10_000, args.reads - lo)):
                key = stream_key(partition_for(read["camera_id"], args.partitions))
                pipe.xadd(key, {"data": orjson.dumps(read)})  # one read per entry
            pipe.execute()
        load_s = time.perf_counter() - started
        cursors = {stream_key(p): "0-0" for p in range(args.partitions)}
        consumed = alerts = 0
        started = time.perf_counter()
        while consumed < args.reads:
            answer = client.xread(cursors, count=500)
            for key, entries in answer:
                for entry_id, fields in entries:
                    cursors[key.decode()] = entry_id.decode()
                    consumed += 1
                    try:
                        read = validate_read(orjson.loads(fields[b"data"]))
                    except ReadError:  # the flow dead-letters these; here they are skipped
                        continue
                    found = index.match_batch([read["plate"]], [read["state"]], [read["ts"]])
                    for match in found[0]:
                        client.publish(
                            ALERTS_CHANNEL,
                            orjson.dumps({"read": read["read_id"], "entry": match.entry.entry_id}),
                        )
                        alerts += 1
        consume_s = time.perf_counter() - started
        client.close()
    result: dict[str, Any] = {
        "reads": args.reads,
        "partitions": args.partitions,
        "load_reads_per_s": args.reads / load_s,
        "consume_reads_per_s": args.reads / consume_s,
        "alerts": alerts,
    }
    write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
