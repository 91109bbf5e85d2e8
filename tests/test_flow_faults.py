"""Faults: a worker killed mid-stream, then restarted, loses nothing and stores nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import redis

from plateflow.simulator import Simulator
from sinks import OFFSETS_KEY, append_reads

T0 = 1_795_867_200_000


def _run(redis_url: str, data_dir: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}
    env |= {
        "PLATEFLOW_REDIS_URL": redis_url,
        "PLATEFLOW_DATA_DIR": str(data_dir),
        "PLATEFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'records.db'}",
        "PLATEFLOW_PARTITIONS": "2",
        "PLATEFLOW_BATCH_SIZE": "20",
        # commits every 20,000 reads a partition, so the kill lands after the first of many
        "PLATEFLOW_FLUSH_READS": "20000",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "plateflow.cli", "run", "--drain"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_worker_killed_mid_stream_then_restarted_stores_every_read_once(
    redis_client: redis.Redis, redis_url: str, data_dir: Path, tmp_path: Path
) -> None:
    sim = Simulator(malformed_rate=0.0, seed=3)
    total = 0
    for start in range(0, 400_000, 50_000):
        reads = sim.reads(50_000, ts_ms=T0 + start)
        append_reads(redis_client, reads, 2, per_entry=100)
        total += len(reads)

    proc = _run(redis_url, data_dir, tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and not redis_client.hlen(OFFSETS_KEY):
        time.sleep(0.05)  # wait until the first batch is committed, then kill mid-stream
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the flow had finished before it could be killed"
    committed = {k: v for k, v in redis_client.hgetall(OFFSETS_KEY).items()}
    assert committed, "the flow committed nothing before it was killed"

    proc = _run(redis_url, data_dir, tmp_path)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err.decode()[-3000:]

    table = ds.dataset(data_dir / "reads", format="parquet", partitioning="hive").to_table(
        columns=["read_id"]
    )
    ids = table.column("read_id").to_pylist()
    assert len(ids) == total, f"{total - len(ids)} reads lost"
    assert len(set(ids)) == total, f"{len(ids) - len(set(ids))} reads stored twice"
    leftovers = [p for p in (data_dir / "reads").rglob("*") if p.name.startswith(".")]
    assert not [p for p in leftovers if p.suffix in (".tmp", ".parquet")]
