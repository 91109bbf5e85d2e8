"""Where data lands and lives: Redis streams and the alert bus, and the Parquet read store.

Public face of the package (ARCHITECTURE "Contracts": Redis keys and Storage):

* key constants and pure naming helpers (:func:`stream_key`, :func:`partition_for`,
  :func:`reads_path`, :func:`alerts_path`, :func:`retain_until`);
* :func:`append_reads` and :func:`dead_letter` (one pipeline per call), and the entries they
  write as pure values (:func:`read_entries`, :func:`dead_letter_fields`) for callers with an
  asynchronous pipeline of their own (the HTTP ingest); :func:`ordinary_rows` /
  :func:`ordinary_reads` decode an entry (or an ingest body) of ordinary reads in one step;
* :func:`acl_file` and :func:`acl_setuser_args`: each service's Redis ACL user (``ACL_ROLES``);
* :class:`AlertBus` (cooldown, publish, capped log, replay) and :class:`StreamTail` (the
  asynchronous backfill-then-block reads of the alert logs and disposition events);
* :class:`ReadStore` (idempotent Parquet writes, pruned lazy scans) and :class:`StreamProgress`
  (committed stream offsets that make the read sink exactly-once in effect);
* on :class:`ReadStore`, stored-read work: compaction, plate history, partial-plate search and
  canvass (paged :class:`Pages`), retention purge and legal holds, evidence export;
* :func:`record_job_run` / :func:`job_metrics`: the periodic jobs' last outcome, as gauges;
  :func:`verify_evidence` checks an export.

Errors: :class:`SinksError` and its narrow classes :class:`SinksValueError` (a bad argument,
``field`` names it), :class:`SinksNotFoundError`, :class:`SinksConflictError` and
:class:`EvidenceError`.

May import matchers (for what a plate or a pattern matches), polars, pyarrow, redis, orjson,
msgspec and :mod:`plateflow.errors`; never bytewax.
"""

from __future__ import annotations

from sinks._acl import ACL_ROLES, KEY_PREFIX, AclRole, acl_file, acl_setuser_args, apply_acl
from sinks._alerts import ALERT_FIELD, AlertBus, cooldown_key
from sinks._canvass import CANVASS_SCHEMA
from sinks._compact import (
    COMPACTION_MANIFEST,
    PLATE_INDEX_SUFFIX,
    ROW_GROUP_ROWS,
    SORT_KEYS,
    plate_index_for,
)
from sinks._entries import ordinary_reads, ordinary_rows
from sinks._errors import (
    EvidenceError,
    SinksConflictError,
    SinksError,
    SinksNotFoundError,
    SinksValueError,
)
from sinks._evidence import (
    EVIDENCE_FORMAT,
    csv_safe,
    is_export_file_name,
    record_custody,
    verify_evidence,
)
from sinks._evidence import (
    SIGNATURE as EVIDENCE_SIGNATURE,
)
from sinks._files import open_private, private_dir
from sinks._holds import HOLDS_DIR, LegalHold
from sinks._jobs import JOBS_DIR, JobRun, job_metrics, job_runs, record_job_run
from sinks._layout import (
    ALERTS_CHANNEL,
    ALERTS_LOG,
    COVERT_CHANNEL,
    COVERT_DISPOSITION_EVENTS,
    COVERT_LOG,
    DEADLETTER_STREAM,
    DISPOSITION_EVENTS,
    HOTLISTS_CHANGED,
    OFFSETS_KEY,
    PENDING_KEY,
    READ_FIELD,
    READS_STREAM_PREFIX,
    alerts_path,
    is_after,
    parse_stream_id,
    partition_for,
    reads_path,
    retain_until,
    stream_key,
)
from sinks._pages import MATCH_COLUMNS, Pages
from sinks._progress import StreamProgress
from sinks._retention import PURGE_LOG, PurgeRecord
from sinks._schema import ALERTS_SCHEMA, READS_SCHEMA, columns_frame
from sinks._store import ReadStore, utc_day
from sinks._streams import (
    DEADLETTER_MAXLEN,
    append_reads,
    dead_letter,
    dead_letter_fields,
    read_entries,
    trim_dead_letters,
)
from sinks._tail import DISPOSITION_FIELD, StreamTail, TailEntry, TrimInfo

__all__ = [
    "ACL_ROLES",
    "ALERTS_CHANNEL",
    "ALERTS_LOG",
    "ALERTS_SCHEMA",
    "ALERT_FIELD",
    "CANVASS_SCHEMA",
    "COMPACTION_MANIFEST",
    "COVERT_CHANNEL",
    "COVERT_DISPOSITION_EVENTS",
    "COVERT_LOG",
    "DEADLETTER_MAXLEN",
    "DEADLETTER_STREAM",
    "DISPOSITION_EVENTS",
    "DISPOSITION_FIELD",
    "EVIDENCE_FORMAT",
    "EVIDENCE_SIGNATURE",
    "HOLDS_DIR",
    "HOTLISTS_CHANGED",
    "JOBS_DIR",
    "KEY_PREFIX",
    "MATCH_COLUMNS",
    "OFFSETS_KEY",
    "PENDING_KEY",
    "PLATE_INDEX_SUFFIX",
    "PURGE_LOG",
    "READS_SCHEMA",
    "READS_STREAM_PREFIX",
    "READ_FIELD",
    "ROW_GROUP_ROWS",
    "SORT_KEYS",
    "AclRole",
    "AlertBus",
    "EvidenceError",
    "JobRun",
    "LegalHold",
    "Pages",
    "PurgeRecord",
    "ReadStore",
    "SinksConflictError",
    "SinksError",
    "SinksNotFoundError",
    "SinksValueError",
    "StreamProgress",
    "StreamTail",
    "TailEntry",
    "TrimInfo",
    "acl_file",
    "acl_setuser_args",
    "alerts_path",
    "append_reads",
    "apply_acl",
    "columns_frame",
    "cooldown_key",
    "csv_safe",
    "dead_letter",
    "dead_letter_fields",
    "is_after",
    "is_export_file_name",
    "job_metrics",
    "job_runs",
    "open_private",
    "ordinary_reads",
    "ordinary_rows",
    "parse_stream_id",
    "partition_for",
    "plate_index_for",
    "private_dir",
    "read_entries",
    "reads_path",
    "record_custody",
    "record_job_run",
    "retain_until",
    "stream_key",
    "trim_dead_letters",
    "utc_day",
    "verify_evidence",
]
