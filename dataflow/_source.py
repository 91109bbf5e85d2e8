"""The Redis Streams source: one Bytewax partition per stream ``plateflow:reads:{p}``.

Unit of parallelism: the stream partition. Bytewax gives each partition to exactly one worker,
and a camera's reads all land in one partition, so a camera's reads are processed in order.

Delivery: at-least-once, made effectively-once for stored reads. A partition starts after the
offset the read sink last *committed* (:class:`sinks.StreamProgress`: the newest stream id whose
reads are durably in Parquet and whose alerts are published), or after the Bytewax snapshot if
that is further on; its snapshot is that committed offset too, never the read position, because
reads polled but not yet flushed to Parquet must be read again after a crash. Entries between
the commit and a crash are therefore processed twice: their alerts are published again with the
same deterministic ids and their Parquet files are rewritten under the same names.

The source never blocks: ``XREAD`` without ``BLOCK``; when a stream is empty ``next_awake``
paces the next poll. When Redis is away (restarting) a poll returns nothing and the next one
waits a growing backoff (``plateflow_flow_retries_total{stage="source"}``); the read position
is kept, so nothing is skipped. In *drain* mode a partition ends once the deadline has passed
and a poll finds nothing new: tests, the demo and benchmarks use it.

Each partition built registers with the process's :class:`dataflow._lag.LagMonitor`, which
reports ``plateflow_flow_partition_lag_seconds`` and ``plateflow_flow_partitions_owned``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from dataflow import _metrics as m
from dataflow._batches import StreamBatch
from dataflow._lag import LagMonitor
from dataflow._retry import TRANSIENT, backoff
from sinks import StreamProgress, parse_stream_id, stream_key

log = logging.getLogger(__name__)


def later_id(a: str | None, b: str | None) -> str | None:
    """The later of two stream ids (``None`` counts as the very start)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if parse_stream_id(a) >= parse_stream_id(b) else b


@dataclass(frozen=True)
class RedisStreamSource(FixedPartitionedSource[StreamBatch, str | None]):
    """Configuration of the read streams source (opens nothing until a partition is built).

    :arg redis_url: the Redis holding the streams.
    :arg partitions: how many streams ``plateflow:reads:{0..partitions-1}``.
    :arg batch_size: most stream entries taken per poll (an entry may carry many reads).
    :arg poll_interval_s: pause after a poll that found nothing.
    :arg tick_s: when idle this long, emit an empty batch so sinks can flush on time.
    :arg drain_deadline: epoch seconds; once past it, a partition whose poll finds nothing
        new ends. ``None`` runs forever.
    """

    redis_url: str
    partitions: int
    batch_size: int = 500
    poll_interval_s: float = 0.02
    tick_s: float = 1.0
    drain_deadline: float | None = None

    @override
    def list_parts(self) -> list[str]:
        return [str(p) for p in range(self.partitions)]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: str | None) -> _StreamPartition:
        return _StreamPartition(self, int(for_part), resume_state)


class _StreamPartition(StatefulSourcePartition[StreamBatch, str | None]):
    def __init__(self, cfg: RedisStreamSource, partition: int, resume_state: str | None) -> None:
        self._cfg = cfg
        self._partition = partition
        self._key = stream_key(partition)
        self._client = redis.Redis.from_url(cfg.redis_url)
        self._client.ping()  # fail at build, with the URL in the traceback, not mid-stream
        self._progress = StreamProgress(self._client)
        self._committed = self._progress.committed(partition)
        self._last_id = later_id(self._committed, resume_state) or "0-0"
        self._next_awake: datetime | None = None
        self._last_emit = time.monotonic()
        self._failures = 0
        self._lag = LagMonitor.for_url(cfg.redis_url)
        self._lag.watch(partition)
        log.info("source partition %s starts after stream id %s", self._key, self._last_id)

    @override
    def next_batch(self) -> list[StreamBatch]:
        cfg = self._cfg
        try:
            # redis-py's stub types XREAD's reply as a union of every reply shape
            response: Any = self._client.xread({self._key: self._last_id}, count=cfg.batch_size)
        except TRANSIENT as exc:
            # Redis restarting: wait it out without blocking the worker (STYLE 3); the read
            # position is kept, so nothing is skipped when it is back
            self._failures += 1
            m.RETRIES.labels(stage="source").inc()
            if self._failures == 1 or self._failures % 10 == 0:
                log.warning("reading %s failed (%s); retrying", self._key, exc)
            delay = backoff(self._failures)
            self._next_awake = datetime.now(timezone.utc) + timedelta(seconds=delay)
            return []
        self._failures = 0
        now = time.monotonic()
        if response:
            raw_entries = response[0][1]
            entries: list[tuple[str, bytes]] = []
            for stream_id, fields in raw_entries:
                sid = stream_id.decode()
                payload = fields.get(b"data")
                if payload is None:  # an entry without our field: route it, don't lose it
                    payload = b"{}" if not fields else repr(fields).encode()
                entries.append((sid, payload))
            self._last_id = entries[-1][0]
            self._next_awake = None
            self._last_emit = now
            return [StreamBatch(self._partition, entries, time.time())]
        if cfg.drain_deadline is not None and time.time() >= cfg.drain_deadline:
            raise StopIteration
        self._next_awake = datetime.now(timezone.utc) + timedelta(seconds=cfg.poll_interval_s)
        if now - self._last_emit >= cfg.tick_s:
            self._last_emit = now
            return [StreamBatch(self._partition, [], time.time())]
        return []

    @override
    def next_awake(self) -> datetime | None:
        return self._next_awake

    @override
    def snapshot(self) -> str | None:
        # The committed offset, not the read position: see the module docstring. While Redis is
        # away the last one seen stands in (it is never ahead of the truth).
        try:
            self._committed = self._progress.committed(self._partition)
        except TRANSIENT as exc:
            log.warning("snapshot of %s used the last known offset (%s)", self._key, exc)
        return self._committed

    @override
    def close(self) -> None:
        self._lag.unwatch(self._partition)
        self._client.close()
