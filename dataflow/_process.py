"""Decode and validate, then match one stream batch; build the alerts (pure CPU, no I/O).

A payload that is not JSON, not an object or array of objects, or a read that fails validation
becomes a ``(raw, reason)`` reject for the dead-letter stream; nothing in a batch can crash the
worker. Matching goes through :class:`matchers.HotlistIndex` once per batch; alerts are built by
:func:`matchers.build_alert`, the same function past-read matching uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from dataflow import _metrics as m
from dataflow._batches import ProcessedBatch, ReadColumns, StreamBatch
from matchers import HotlistIndex, build_alert
from matchers.reads import ReadError, validate_row
from sinks import ordinary_rows

MAX_READS_PER_ENTRY = 10_000


def read_rows(batch: StreamBatch) -> tuple[list[tuple[Any, ...]], list[tuple[bytes, str]]]:
    """Stream entries -> canonical read rows (:func:`matchers.reads.validate_row`'s form) and
    ``(raw, reason)`` rejects.

    An entry of ordinary reads (nearly all: the ingest writes canonical reads) is decoded and
    checked in one step (:func:`sinks.ordinary_rows`); any other is decoded with orjson and each
    read validated on its own, so a bad read is rejected with its reason and its entry's good
    reads are kept.
    """
    rows: list[tuple[Any, ...]] = []
    rejects: list[tuple[bytes, str]] = []
    for stream_id, payload in batch.entries:
        fast = ordinary_rows(payload)
        if fast is not None and len(fast) <= MAX_READS_PER_ENTRY:
            rows.extend(fast)
            continue
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            rejects.append((payload, f"payload: not JSON ({exc}) in entry {stream_id}"))
            continue
        if isinstance(value, list) and len(value) > MAX_READS_PER_ENTRY:
            reason = f"payload: {len(value)} reads in one entry, at most {MAX_READS_PER_ENTRY}"
            rejects.append((payload, reason))
            continue
        for obj in value if isinstance(value, list) else (value,):
            try:
                rows.append(validate_row(obj))
            except ReadError as exc:
                rejects.append((orjson.dumps(obj), exc.reason))
                m.READS_REJECTED.labels(reason=exc.field.split("[")[0].split(".")[0]).inc()
    return rows, rejects


def _alternates(column: Sequence[Sequence[dict[str, Any]]]) -> Sequence[Sequence[str]]:
    """Each read's alternate plates (almost always none: one shared empty tuple then)."""
    if not any(column):
        return [()] * len(column)
    return [[c["plate"] for c in found] if found else () for found in column]


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
        rows, out.rejects = read_rows(batch)
        for _, reason in out.rejects:
            if reason.startswith("payload:"):
                m.READS_REJECTED.labels(reason="payload").inc()
        m.STAGE_SECONDS.labels(stage="decode").inc(time.perf_counter() - t0)
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
            _alternates(reads["candidates"]),
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
