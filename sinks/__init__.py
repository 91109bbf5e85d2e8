"""Where data lands and lives: Redis streams and the alert bus, and the Parquet read store.

Public face of the package (ARCHITECTURE "Contracts": Redis keys and Storage):

* key constants and pure naming helpers (:func:`stream_key`, :func:`partition_for`,
  :func:`reads_path`, :func:`alerts_path`, :func:`retain_until`);
* :func:`append_reads` and :func:`dead_letter` (one pipeline per call);
* :class:`AlertBus` (cooldown, publish, capped log, replay);
* :class:`ReadStore` (idempotent Parquet writes, pruned lazy scans) and :class:`StreamProgress`
  (committed stream offsets that make the read sink exactly-once in effect).

May import polars, pyarrow, redis, orjson and :mod:`plateflow.errors`; never bytewax.
"""

from __future__ import annotations

from sinks._alerts import ALERT_FIELD, AlertBus, cooldown_key
from sinks._errors import SinksError
from sinks._layout import (
    ALERTS_CHANNEL,
    ALERTS_LOG,
    COVERT_CHANNEL,
    COVERT_LOG,
    DEADLETTER_STREAM,
    HOTLISTS_CHANGED,
    OFFSETS_KEY,
    PENDING_KEY,
    READ_FIELD,
    alerts_path,
    is_after,
    parse_stream_id,
    partition_for,
    reads_path,
    retain_until,
    stream_key,
)
from sinks._progress import StreamProgress
from sinks._schema import ALERTS_SCHEMA, READS_SCHEMA
from sinks._store import ReadStore, utc_day
from sinks._streams import DEADLETTER_MAXLEN, append_reads, dead_letter

__all__ = [
    "ALERTS_CHANNEL",
    "ALERTS_LOG",
    "ALERTS_SCHEMA",
    "ALERT_FIELD",
    "COVERT_CHANNEL",
    "COVERT_LOG",
    "DEADLETTER_MAXLEN",
    "DEADLETTER_STREAM",
    "HOTLISTS_CHANGED",
    "OFFSETS_KEY",
    "PENDING_KEY",
    "READS_SCHEMA",
    "READ_FIELD",
    "AlertBus",
    "ReadStore",
    "SinksError",
    "StreamProgress",
    "alerts_path",
    "append_reads",
    "cooldown_key",
    "dead_letter",
    "is_after",
    "parse_stream_id",
    "partition_for",
    "reads_path",
    "retain_until",
    "stream_key",
    "utc_day",
]
