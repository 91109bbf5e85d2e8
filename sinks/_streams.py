"""Writing to the read streams and the dead-letter stream (one pipeline per call)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
import redis

from sinks._errors import SinksError
from sinks._layout import DEADLETTER_STREAM, READ_FIELD, partition_for, stream_key
from sinks._metrics import DEAD_LETTERS, READS_APPENDED

__all__ = [
    "DEADLETTER_MAXLEN",
    "append_reads",
    "dead_letter",
    "dead_letter_fields",
    "read_entries",
    "trim_dead_letters",
]

log = logging.getLogger(__name__)

#: Approximate cap of the dead-letter stream (``XADD MAXLEN ~``).
DEADLETTER_MAXLEN = 1_000_000


def append_reads(
    client: redis.Redis,
    reads: Sequence[Mapping[str, Any]],
    partitions: int,
    per_entry: int = 100,
) -> int:
    """XADD canonical reads to ``plateflow:reads:{p}`` and return the number of entries written.

    Reads are grouped by partition (:func:`sinks.partition_for` of ``camera_id``), keeping their
    order within a partition. An entry's ``data`` field holds one read as a JSON object when the
    group has a single read, else a JSON array of up to ``per_entry`` reads (arrays cost about a
    tenth of single entries at both ends of the stream). All entries go in one pipeline without
    MULTI: a failure part-way may leave some entries written, so callers retry the whole call and
    rely on read ids being stable (at-least-once).
    """
    entries = read_entries(reads, partitions, per_entry)
    if not entries:
        return 0
    pipe = client.pipeline(transaction=False)
    for key, payload in entries:
        pipe.xadd(key, {READ_FIELD: payload})
    pipe.execute()
    READS_APPENDED.inc(len(reads))
    return len(entries)


def read_entries(
    reads: Sequence[Mapping[str, Any]], partitions: int, per_entry: int = 100
) -> list[tuple[str, bytes]]:
    """The ``(stream key, data)`` entries :func:`append_reads` writes, without writing them.

    Pure, so a caller with its own (asynchronous) pipeline writes exactly the same entries:
    reads grouped by partition in their order, one JSON object for a lone read, else arrays
    of up to ``per_entry`` reads, each stored in the entry field :data:`READ_FIELD`.
    """
    if per_entry < 1:
        msg = f"per_entry must be at least 1, got {per_entry}"
        raise SinksError(msg)
    groups: dict[int, list[Mapping[str, Any]]] = {}
    # A batch comes from a handful of cameras: one crc32 per camera, not per read.
    partition_of: dict[str, int] = {}
    for read in reads:
        camera = read["camera_id"]
        partition = partition_of.get(camera)
        if partition is None:
            partition = partition_of[camera] = partition_for(camera, partitions)
        groups.setdefault(partition, []).append(read)
    entries: list[tuple[str, bytes]] = []
    for partition, group in groups.items():
        key = stream_key(partition)
        for start in range(0, len(group), per_entry):
            chunk = group[start : start + per_entry]
            try:  # dicts, as validation makes them: serialised without a copy
                payload = orjson.dumps(chunk[0] if len(chunk) == 1 else chunk)
            except TypeError:  # another Mapping: copied once
                plain = [_plain(read) for read in chunk]
                payload = orjson.dumps(plain[0] if len(plain) == 1 else plain)
            entries.append((key, payload))
    return entries


def dead_letter(client: redis.Redis, items: Sequence[tuple[bytes | str, str]], source: str) -> None:
    """XADD each ``(raw payload, reason)`` to ``plateflow:deadletter`` with fields ``raw``,
    ``reason``, ``source`` (who rejected it: ``ingest``, ``flow``...) and ``at`` (RFC 3339 UTC),
    in one pipeline. The stream is capped near :data:`DEADLETTER_MAXLEN` entries (oldest go)."""
    if not items:
        return
    pipe = client.pipeline(transaction=False)
    for raw, reason in items:
        fields = dead_letter_fields(raw, reason, source)
        pipe.xadd(DEADLETTER_STREAM, fields, maxlen=DEADLETTER_MAXLEN, approximate=True)
    pipe.execute()
    DEAD_LETTERS.labels(source=source).inc(len(items))
    log.debug("dead-lettered %d payloads from %s", len(items), source)


def trim_dead_letters(client: redis.Redis, keep_s: float) -> int:
    """Drop dead letters older than ``keep_s`` seconds (XTRIM MINID; 0 keeps any age): the
    stream is bounded by age as well as by length (:data:`DEADLETTER_MAXLEN`, on every XADD).
    The flow runs it after each flush; the ingest user may only append. Returns the entries
    removed."""
    if keep_s <= 0:
        return 0
    horizon_ms = int(time.time() * 1000) - int(keep_s * 1000)
    minid = f"{max(horizon_ms, 0)}-0"
    return int(client.xtrim(DEADLETTER_STREAM, minid=minid, approximate=False))


def dead_letter_fields(
    raw: bytes | str, reason: str, source: str, at: str | None = None
) -> dict[Any, Any]:
    """The fields of one :data:`DEADLETTER_STREAM` entry (``at`` defaults to now, RFC 3339).

    Pure, for callers that write dead letters in their own pipeline: add the entry with
    ``maxlen=DEADLETTER_MAXLEN, approximate=True`` as :func:`dead_letter` does.
    """
    if at is None:
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"raw": raw, "reason": reason, "source": source, "at": at}


def _plain(read: Mapping[str, Any]) -> Any:
    # orjson serialises dict subclasses natively; any other Mapping is copied once.
    return read if isinstance(read, dict) else dict(read)
