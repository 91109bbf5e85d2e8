"""The one sink of the flow: dead letters, alerts, then Parquet, then the committed offset.

One sink rather than three because the order matters for delivery: a stream offset is committed
only after everything before it is durable, that is after its dead letters and alerts are in
Redis and its reads and alerts are in Parquet. Two output steps could run in either order.

Unit of parallelism: the worker (a ``DynamicSink``). Items are never exchanged between workers,
so the worker holding stream partition *p* is the only writer of *p*'s files and offset.

Delivery: dead letters and alerts at-least-once, published as soon as their batch is processed
(alerts carry deterministic ids, so a console drops a repeat); reads and the alerts' Parquet
copy effectively-once: buffered per partition and flushed every ``flush_s`` seconds or
``flush_reads`` reads (at most one partition per call, the longest waiting, so that no call
stalls the worker for every partition's files) to files named by the partition and the
buffer's first stream id, with a write intent recorded first so a crash mid-flush is cleaned
up (:class:`sinks.StreamProgress`).

A step that fails because Redis is away or the data volume is full or failing is retried in
place (:func:`dataflow._retry.retrying`); nothing after it runs meanwhile, so an offset is never
committed past a read that is not yet in Parquet, and the worker takes no new reads until it is
written.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from dataflow import _metrics as m
from dataflow._batches import ProcessedBatch
from dataflow._retry import retrying
from sinks import (
    AlertBus,
    ReadStore,
    StreamProgress,
    columns_frame,
    dead_letter,
    is_after,
    stream_key,
    trim_dead_letters,
)

#: The ``hotlist`` label of every covert list's alerts (427.6: covert names stay covert).
COVERT_LABEL = "covert"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSink(DynamicSink[ProcessedBatch]):
    """Configuration of the flow's sink; each worker builds its own partition."""

    redis_url: str
    data_dir: Path
    retention_days: int = 365
    cooldown_s: float = 300.0
    alerts_log_maxlen: int = 100_000
    flush_s: float = 2.0
    flush_reads: int = 200_000
    stream_keep_s: int = 86_400
    alerts_log_keep_s: int = 7 * 86_400
    deadletter_keep_s: int = 7 * 86_400

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _BatchSinkPartition:
        return _BatchSinkPartition(self)


@dataclass
class _Buffer:
    """A partition's reads and alerts waiting for their flush. The reads wait as Parquet-ready
    frames, one a batch, made from the batch's columns as it arrives: a frame takes a fraction
    of the memory of the Python values, and the flush only concatenates them."""

    first_id: str | None = None
    last_id: str | None = None
    frames: list[pl.DataFrame] = field(default_factory=list)
    count: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)

    def reads(self) -> pl.DataFrame | None:
        """The buffered reads as one frame (None if there are none)."""
        if not self.frames:
            return None
        return self.frames[0] if len(self.frames) == 1 else pl.concat(self.frames)


class _BatchSinkPartition(StatelessSinkPartition[ProcessedBatch]):
    def __init__(self, cfg: BatchSink) -> None:
        self._cfg = cfg
        self._client = redis.Redis.from_url(cfg.redis_url)
        self._client.ping()
        self._bus = AlertBus(
            self._client,
            log_maxlen=cfg.alerts_log_maxlen,
            cooldown_s=cfg.cooldown_s,
            log_keep_s=cfg.alerts_log_keep_s,
        )
        self._store = ReadStore(cfg.data_dir, cfg.retention_days)
        self._progress = StreamProgress(self._client)
        self._buffers: dict[int, _Buffer] = {}
        self._recovered: set[int] = set()

    @override
    def write_batch(self, items: list[ProcessedBatch]) -> None:
        rejects = [r for item in items for r in item.rejects]
        if rejects:
            retrying("deadletter", lambda: dead_letter(self._client, rejects, source="flow"))
        alerts = [a for item in items for a in item.alerts]
        started = time.perf_counter()
        published = retrying("alerts", lambda: self._bus.publish(alerts)) if alerts else []
        m.STAGE_SECONDS.labels(stage="alerts").inc(time.perf_counter() - started)
        self._count_alerts(published)
        published_by_id = {a["alert_id"]: a for a in published}
        for item in items:
            if item.partition not in self._recovered:
                recover = functools.partial(self._progress.recover, item.partition)
                removed = retrying("recover", recover)
                if removed:
                    log.warning(
                        "removed %d half-written files of partition %d",
                        len(removed),
                        item.partition,
                    )
                self._recovered.add(item.partition)
            buf = self._buffers.setdefault(item.partition, _Buffer())
            if item.first_id is not None:
                if buf.first_id is None:
                    buf.first_id = item.first_id
                    buf.since = time.monotonic()
                buf.last_id = item.last_id
                if item.reads:
                    started = time.perf_counter()
                    buf.frames.append(columns_frame(item.reads.columns, item.partition))
                    buf.count += len(item.reads)
                    m.STAGE_SECONDS.labels(stage="parquet").inc(time.perf_counter() - started)
                # the copies as published: sightings carry sighting_of
                buf.alerts.extend(published_by_id.get(a["alert_id"], a) for a in item.alerts)
        # One partition a call, the longest waiting: flushing every due partition at once would
        # stall the worker for all their files together, and the alerts of the reads behind
        # them would wait that long (the p99 of alert latency); one a call spreads the work.
        now = time.monotonic()
        due = [
            (buf.since, partition)
            for partition, buf in self._buffers.items()
            if buf.first_id is not None
            and (buf.count >= self._cfg.flush_reads or now - buf.since >= self._cfg.flush_s)
        ]
        if due:
            partition = min(due)[1]
            self._flush(partition, self._buffers[partition])

    def _count_alerts(self, published: list[dict[str, Any]]) -> None:
        now = time.time()
        for alert in published:
            if alert.get("sighting_of"):
                m.SIGHTINGS.inc()
                continue
            # a covert list's name never leaves the covert channel, not even as a label
            hotlist = alert["hotlist"]
            name = COVERT_LABEL if hotlist.get("covert") else hotlist["name"]
            m.ALERTS.labels(hotlist=name, kind=alert["match"]["kind"]).inc()
            m.ALERT_LATENCY_SECONDS.observe(max(0.0, now - alert["read"]["ts"] / 1000))

    def _flush(self, partition: int, buf: _Buffer) -> None:
        assert buf.first_id is not None and buf.last_id is not None
        first = buf.first_id
        started = time.perf_counter()
        store = self._store
        reads = buf.reads()
        intent = (
            store.paths_for("reads", partition, first, reads["ts"]) if reads is not None else []
        )
        intent += store.paths_for("alerts", partition, first, [a["read"]["ts"] for a in buf.alerts])
        last = buf.last_id

        def write() -> None:
            if intent:
                self._progress.begin(partition, intent)
                if reads is not None:
                    store.write_reads(partition, first, reads)
                if buf.alerts:
                    store.write_alerts(partition, first, buf.alerts)
            # only after every file is in place: a failed write never commits its offset
            self._progress.commit(partition, last)

        def clean_up() -> None:
            # the files of the failed attempt go (a full disk needs their space back); the next
            # attempt writes them again under the same names
            if intent:
                self._progress.recover(partition)

        retrying("parquet", write, clean_up)
        retrying("trim", lambda: self._trim(partition, last))
        m.PARQUET_ROWS.inc(buf.count)
        m.STAGE_SECONDS.labels(stage="parquet").inc(time.perf_counter() - started)
        self._buffers[partition] = _Buffer()

    def _trim(self, partition: int, committed: str) -> None:
        """Bound the stream: drop entries that are both stored and older than ``stream_keep_s``
        (kept that long so an operator can still replay them)."""
        horizon_ms = int(time.time() * 1000) - self._cfg.stream_keep_s * 1000
        minid = committed if is_after(f"{horizon_ms}-0", committed) else f"{horizon_ms}-0"
        self._client.xtrim(stream_key(partition), minid=minid, approximate=False)
        # Dead letters go by age here (the ingest user may only append, capped by length).
        trim_dead_letters(self._client, self._cfg.deadletter_keep_s)

    @override
    def close(self) -> None:
        for partition, buf in list(self._buffers.items()):
            if buf.first_id is not None:
                self._flush(partition, buf)
        self._client.close()
