"""Decode, validate and match one stream batch; build the alerts (pure CPU, no I/O).

A payload that is not JSON, not an object or array of objects, or a read that fails validation
becomes a ``(raw, reason)`` reject for the dead-letter stream; nothing in a batch can crash the
worker. Matching goes through :class:`matchers.HotlistIndex` once per batch; alerts are built by
:func:`matchers.build_alert`, the same function past-read matching uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from dataflow import _metrics as m
from dataflow._batches import ProcessedBatch, ReadColumns, StreamBatch
from matchers import HotlistIndex, build_alert
from matchers.reads import ReadError, validate_row

MAX_READS_PER_ENTRY = 10_000


def decode_entries(batch: StreamBatch) -> tuple[list[Any], list[tuple[bytes, str]]]:
    """Stream entries -> raw read objects, and rejects for payloads that are not reads."""
    objs: list[Any] = []
    rejects: list[tuple[bytes, str]] = []
    for stream_id, payload in batch.entries:
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            rejects.append((payload, f"payload: not JSON ({exc}) in entry {stream_id}"))
            continue
        if isinstance(value, list):
            if len(value) > MAX_READS_PER_ENTRY:
                reason = f"payload: {len(value)} reads in one entry, at most {MAX_READS_PER_ENTRY}"
                rejects.append((payload, reason))
                continue
            objs.extend(value)
        else:
            objs.append(value)
    return objs, rejects


class BatchProcessor:
    """The ``process`` step: holds references to the live index and the geofences.

    :arg index: returns the index to use *now*; a hot reload swaps what it returns, so a batch
        is matched against one consistent index.
    :arg advisories_for: ``(lat, lon) -> [advisory text]`` for geofences (may return ``[]``).
    """

    def __init__(
        self,
        index: Callable[[], HotlistIndex],
        advisories_for: Callable[[float | None, float | None], list[str]],
        max_alerts_per_read: int,
    ) -> None:
        self._index = index
        self._advisories_for = advisories_for
        self._max = max_alerts_per_read

    def __call__(self, batch: StreamBatch) -> ProcessedBatch:
        out = ProcessedBatch(batch.partition, batch.first_id, batch.last_id, batch.polled_at)
        if not batch.entries:
            return out
        t0 = time.perf_counter()
        objs, out.rejects = decode_entries(batch)
        t1 = time.perf_counter()
        rows: list[tuple[Any, ...]] = []
        for obj in objs:
            try:
                rows.append(validate_row(obj))
            except ReadError as exc:
                out.rejects.append((orjson.dumps(obj), exc.reason))
                m.READS_REJECTED.labels(reason=exc.field.split("[")[0].split(".")[0]).inc()
        for _, reason in out.rejects:
            if reason.startswith("payload:"):
                m.READS_REJECTED.labels(reason="payload").inc()
        t2 = time.perf_counter()
        m.STAGE_SECONDS.labels(stage="decode").inc(t1 - t0)
        m.STAGE_SECONDS.labels(stage="validate").inc(t2 - t1)
        m.READS.inc(len(rows))
        m.BATCH_READS.observe(len(rows))
        if not rows:
            return out
        reads = out.reads = ReadColumns.of_rows(rows)
        index = self._index()
        started = time.perf_counter()
        matches = index.match_batch(
            reads["plate"],
            reads["state"],
            reads["ts"],
            [[c["plate"] for c in found] if found else () for found in reads["candidates"]],
            max_per_read=self._max,
        )
        out.match_s = time.perf_counter() - started
        m.MATCH_SECONDS.observe(out.match_s)
        m.STAGE_SECONDS.labels(stage="match").inc(out.match_s)
        now_ms = int(time.time() * 1000)
        for i, hits in enumerate(matches):
            if not hits:
                continue
            read = reads.read(i)
            advisories = self._advisories_for(read["lat"], read["lon"])
            out.alerts.extend(build_alert(read, hit, advisories, now_ms) for hit in hits)
        return out
