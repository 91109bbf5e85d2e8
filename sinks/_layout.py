"""Names: Redis keys, stream partitions, Parquet paths and retention dates.

Pure functions only (no I/O), so every test and every other package can compute where a read
goes and how long it stays without touching Redis or the disk.
"""

from __future__ import annotations

import re
import zlib
from datetime import date, timedelta
from pathlib import Path

from sinks._errors import SinksError, SinksValueError

__all__ = [
    "ALERTS_CHANNEL",
    "ALERTS_LOG",
    "COOLDOWN_PREFIX",
    "COVERT_CHANNEL",
    "COVERT_DISPOSITION_EVENTS",
    "COVERT_LOG",
    "DEADLETTER_STREAM",
    "DISPOSITION_EVENTS",
    "HOTLISTS_CHANGED",
    "OFFSETS_KEY",
    "PENDING_KEY",
    "READS_STREAM_PREFIX",
    "READ_FIELD",
    "alerts_path",
    "date_dir",
    "is_after",
    "parse_stream_id",
    "partition_for",
    "reads_path",
    "retain_until",
    "safe_stream_id",
    "stream_key",
]

READS_STREAM_PREFIX = "plateflow:reads:"
DEADLETTER_STREAM = "plateflow:deadletter"
ALERTS_CHANNEL = "plateflow:alerts"
ALERTS_LOG = "plateflow:alerts:log"
COVERT_CHANNEL = "plateflow:alerts:covert"
COVERT_LOG = "plateflow:alerts:covert:log"
#: Streams of disposition transitions (field ``event``: the transition JSON), general and
#: covert, read by the consoles' alert stream after its snapshot of current states.
DISPOSITION_EVENTS = "plateflow:alerts:events"
COVERT_DISPOSITION_EVENTS = "plateflow:alerts:covert:events"
HOTLISTS_CHANGED = "plateflow:hotlists:changed"
COOLDOWN_PREFIX = "plateflow:cooldown:"
OFFSETS_KEY = "plateflow:offsets"
PENDING_KEY = "plateflow:offsets:pending"
#: The field of a read-stream entry that holds the JSON (one read, or an array of reads).
READ_FIELD = b"data"

_STREAM_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
_MAX_ID_PART = 2**64 - 1  # Redis keeps both parts of an id as unsigned 64-bit integers
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def stream_key(partition: int) -> str:
    """The Redis stream of read partition ``partition``: ``plateflow:reads:{p}``."""
    return f"{READS_STREAM_PREFIX}{partition}"


def partition_for(camera_id: str, partitions: int) -> int:
    """``crc32(camera_id) % partitions``: one camera always lands on one partition, so its reads
    stay in order. Stable across processes and Python versions (unlike ``hash``)."""
    if partitions < 1:
        msg = f"partitions must be at least 1, got {partitions}; set PLATEFLOW_PARTITIONS >= 1"
        raise SinksError(msg)
    return zlib.crc32(camera_id.encode("utf-8")) % partitions


def parse_stream_id(stream_id: str | bytes) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``, for ordering stream ids numerically.

    A bare ``"1700000000000"`` is ``(1700000000000, 0)``, as Redis reads it in XRANGE/XREAD.
    The one parser of stream ids in the project; raises :class:`SinksValueError` (``field``
    ``stream_id``) for anything Redis would refuse.
    """
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    found = _STREAM_ID.match(text)
    parts = (int(found.group(1)), int(found.group(2) or 0)) if found else None
    if parts is None or max(parts) > _MAX_ID_PART:
        msg = f"{text!r} is not a Redis stream id; expected '<milliseconds>-<sequence>'"
        raise SinksValueError(msg, "stream_id")
    return parts


def is_after(stream_id: str | bytes, committed: str | bytes | None) -> bool:
    """True when ``stream_id`` comes strictly after ``committed`` (``None``: nothing committed).

    The flow keeps an entry only when this holds, so a replay after a restart neither duplicates
    nor loses rows (see :class:`sinks.StreamProgress`)."""
    if committed is None:
        return True
    return parse_stream_id(stream_id) > parse_stream_id(committed)


def safe_stream_id(first_stream_id: str) -> str:
    """The stream id as it appears in a file name.

    A Redis stream id (digits, one dash) is used verbatim. Any other character (a caller-chosen
    batch name, say) becomes ``_``, so a name can never leave its directory or hide a file."""
    if not first_stream_id:
        msg = "first_stream_id is empty; pass the id of the first stream entry of the batch"
        raise SinksError(msg)
    return _UNSAFE.sub("_", first_stream_id)


def date_dir(data_dir: Path, kind: str, day: date) -> Path:
    """``{data_dir}/{kind}/date=YYYY-MM-DD``, the directory of one date partition."""
    return Path(data_dir) / kind / f"date={day.isoformat()}"


def reads_path(data_dir: Path, day: date, partition: int, first_stream_id: str) -> Path:
    """``{data_dir}/reads/date=YYYY-MM-DD/part-{p:03d}-{first_stream_id}.parquet``.

    The name depends only on the batch (its partition and first stream id) and the date, so a
    replayed batch rewrites the same file instead of adding a second copy."""
    name = f"part-{partition:03d}-{safe_stream_id(first_stream_id)}.parquet"
    return date_dir(data_dir, "reads", day) / name


def alerts_path(data_dir: Path, day: date, partition: int, first_stream_id: str) -> Path:
    """Like :func:`reads_path`, under ``alerts/`` (the date is the UTC date of the read)."""
    name = f"part-{partition:03d}-{safe_stream_id(first_stream_id)}.parquet"
    return date_dir(data_dir, "alerts", day) / name


def retain_until(day: date, retention_days: int) -> date:
    """The last day a date partition must be kept: its date plus the retention period. The
    partition becomes purgeable the day after."""
    if retention_days < 1:
        msg = f"retention_days must be at least 1, got {retention_days}"
        raise SinksError(msg)
    return day + timedelta(days=retention_days)
