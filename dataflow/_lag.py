"""Consumer lag per stream partition, measured beside the workers, not by them.

The lag of partition *p* is the age of its oldest stream entry that is not yet stored (after
the committed offset), by the Redis server's clock: 0 when the flow is caught up, growing
steadily when the flow falls behind or stalls. A thread measures it rather than the source,
because a stalled worker (its sink waiting for a full disk) is exactly when the source is not
called and the figure matters most. Each process reports the partitions its workers own, so a
partition's series comes from one process at a time.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import redis

from dataflow import _metrics as m
from sinks import OFFSETS_KEY, parse_stream_id, stream_key

log = logging.getLogger(__name__)

INTERVAL_S = 2.0


class LagMonitor:
    """One per Redis URL and process; :meth:`watch` / :meth:`unwatch` as partitions are built
    and closed. The thread runs while something is watched."""

    _monitors: ClassVar[dict[str, LagMonitor]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._partitions: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_url(cls, redis_url: str) -> LagMonitor:
        with cls._guard:
            monitor = cls._monitors.get(redis_url)
            if monitor is None:
                monitor = cls._monitors[redis_url] = cls(redis_url)
            return monitor

    def watch(self, partition: int) -> None:
        with self._lock:
            self._partitions.add(partition)
            m.PARTITIONS_OWNED.set(self._owned())
            if self._thread is None or not self._thread.is_alive():
                self._wake.clear()
                self._thread = threading.Thread(target=self._run, name="partition-lag", daemon=True)
                self._thread.start()

    def unwatch(self, partition: int) -> None:
        with self._lock:
            self._partitions.discard(partition)
            m.PARTITIONS_OWNED.set(self._owned())
            if not self._partitions:
                self._wake.set()
        try:  # a partition handed to another process is that process's to report
            m.PARTITION_LAG_SECONDS.remove(str(partition))
        except KeyError:
            pass  # never measured

    @staticmethod
    def _owned() -> int:
        return sum(len(monitor._partitions) for monitor in LagMonitor._monitors.values())

    def _run(self) -> None:
        client = redis.Redis.from_url(self._url, socket_timeout=5, socket_connect_timeout=5)
        try:
            while not self._wake.wait(INTERVAL_S):
                with self._lock:
                    partitions = sorted(self._partitions)
                if not partitions:
                    return
                try:
                    for partition, lag in measure(client, partitions).items():
                        m.PARTITION_LAG_SECONDS.labels(partition=str(partition)).set(lag)
                except (redis.RedisError, OSError) as exc:
                    log.debug("partition lag not measured: %s", exc)  # Redis away: keep last
        finally:
            client.close()


def measure(client: redis.Redis, partitions: list[int]) -> dict[int, float]:
    """Seconds since the oldest unstored entry of each partition was added (0 if none), in one
    pipeline: the committed offsets, the server's time, the first entry after each offset."""
    committed: Any = client.hmget(OFFSETS_KEY, [str(p) for p in partitions])
    pipe = client.pipeline(transaction=False)
    pipe.time()
    for partition, offset in zip(partitions, committed, strict=True):
        start = f"({offset.decode()}" if offset else "-"
        pipe.xrange(stream_key(partition), min=start, max="+", count=1)
    now_s, now_us = (replies := pipe.execute())[0]
    now_ms = now_s * 1000 + now_us // 1000
    out: dict[int, float] = {}
    for partition, first in zip(partitions, replies[1:], strict=True):
        if not first:
            out[partition] = 0.0
            continue
        added_ms, _ = parse_stream_id(first[0][0])
        out[partition] = max(0.0, (now_ms - added_ms) / 1000)
    return out
