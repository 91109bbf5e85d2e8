"""The ingest core, without HTTP: validate a batch, write the good reads, route the bad ones.

Used by the HTTP endpoints (:mod:`api._routes_ingest`, asynchronously through
:func:`ingest_async`) and by ``plateflow ingest FILE`` (:func:`ingest_objects`), so a read is
treated the same whichever door it came through: both validate with :func:`prepare_batch` and
write the entries of :func:`sinks.read_entries` and :func:`sinks.dead_letter_fields`.

Delivery: at-least-once. Accepted reads are appended first, then rejections are dead-lettered
(one pipeline each in :func:`ingest_objects`; one shared pipeline, reads first, in
:func:`ingest_async`). If Redis fails part-way the caller gets the error and retries the whole
batch; the reads written by the first attempt are written again with the same ``read_id``
(derived deterministically when the camera sent none), and downstream alert ids and Parquet
file names are derived from ids, so a retry does not multiply alerts.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from api._ingest_writer import Command, StreamWriter
from api._metrics import (
    INGEST_BATCH_READS,
    MESSAGES_IGNORED,
    READS_ACCEPTED,
    READS_REJECTED,
    field_label,
)
from matchers.reads import ReadError, validate_read
from sinks import (
    DEADLETTER_MAXLEN,
    DEADLETTER_STREAM,
    READ_FIELD,
    append_reads,
    dead_letter,
    dead_letter_fields,
    read_entries,
)

log = logging.getLogger(__name__)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_READS_PER_REQUEST",
    "IngestResult",
    "PreparedBatch",
    "Rejection",
    "generate_ingest_token",
    "ingest_async",
    "ingest_objects",
    "prepare_batch",
    "refuse_async",
    "reject_raw",
]

#: Most reads one ingest request may carry; more is answered 413 (split the batch).
MAX_READS_PER_REQUEST = 10_000
#: Largest request body read (a Plate Recognizer multipart post carries a JPEG frame).
MAX_BODY_BYTES = 32 * 1024 * 1024

#: Reads per stream entry: 100 per entry is where XADD throughput levels off (ARCHITECTURE).
READS_PER_ENTRY = 100

Converter = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Rejection:
    """One rejected item: its position in the request (or file line) and why."""

    index: int
    reason: str
    field: str


@dataclass(frozen=True)
class IngestResult:
    """What an ingest call did: how many reads were written, which items were rejected."""

    accepted: int
    rejected: list[Rejection] = field(default_factory=list)
    ignored: int = 0
    #: The reads written (canonical), for :attr:`read_ids`.
    reads: Sequence[dict[str, Any]] = field(default=(), repr=False)

    @property
    def read_ids(self) -> list[str]:
        """The ``read_id`` of every read written, in order (computed when asked: the HTTP
        answer does not carry them)."""
        return [r["read_id"] for r in self.reads]

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of the ingest endpoints."""
        return {
            "accepted": self.accepted,
            "rejected": [{"index": r.index, "reason": r.reason} for r in self.rejected],
            "ignored": self.ignored,
        }


def _dump(obj: Any) -> bytes:
    """A decoded item back to JSON for the dead-letter stream (``repr`` if it is not JSON)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return repr(obj).encode()


@dataclass
class PreparedBatch:
    """A batch after validation, before any write: canonical reads and what to dead-letter."""

    good: list[dict[str, Any]]
    rejections: list[Rejection]
    dead: list[tuple[bytes, str]]
    size: int


def prepare_batch(
    objs: Sequence[Any],
    convert: Converter = validate_read,
    index_base: int = 0,
    token_id: str | None = None,
) -> PreparedBatch:
    """Validate and normalise every object (pure): see :func:`ingest_objects` for the arguments.

    ``token_id``, when given (the HTTP ingest: the id of the token that authenticated the
    request), is recorded on every read, replacing whatever the item said; without it a read
    keeps the ``token_id`` it carries (a file replayed by an operator)."""
    good: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    dead: list[tuple[bytes, str]] = []
    for i, obj in enumerate(objs):
        try:
            read = convert(obj)
        except ReadError as exc:
            rejections.append(Rejection(i + index_base, exc.reason, exc.field))
            dead.append((_dump(obj), exc.reason))
            continue
        if token_id is not None:
            read["token_id"] = token_id
        good.append(read)
    return PreparedBatch(good, rejections, dead, len(objs))


def _counted(batch: PreparedBatch, source: str, ignored: int) -> IngestResult:
    """Count a written batch in the metrics and build its result."""
    if batch.rejections:
        for rej in batch.rejections:
            READS_REJECTED.labels(source, field_label(rej.field)).inc()
        log.debug(
            "ingest %s: %d of %d items rejected (first: %s)",
            source,
            len(batch.rejections),
            batch.size,
            batch.rejections[0].reason,
        )
    READS_ACCEPTED.labels(source).inc(len(batch.good))
    INGEST_BATCH_READS.labels(source).observe(batch.size)
    if ignored:
        MESSAGES_IGNORED.labels(source).inc(ignored)
    return IngestResult(len(batch.good), batch.rejections, ignored, batch.good)


def ingest_objects(
    client: redis.Redis,
    objs: Sequence[Any],
    partitions: int,
    source: str,
    *,
    convert: Converter = validate_read,
    ignored: int = 0,
    index_base: int = 0,
) -> IngestResult:
    """Validate and normalise every object, append the good ones, dead-letter the bad ones.

    :arg client: a Redis client (the pipelines are opened on it).
    :arg objs: decoded items: canonical read objects, or vendor items with ``convert``.
    :arg partitions: the number of read streams (``settings.partitions``).
    :arg source: which door the items came through (``reads``, ``openalpr``,
        ``platerecognizer``, ``file``); the metric label and the dead-letter source.
    :arg convert: item -> canonical read, raising :class:`~matchers.reads.ReadError`
        (default :func:`~matchers.reads.validate_read`).
    :arg ignored: vendor messages without a read, only counted.
    :arg index_base: added to each rejection's index (the CLI passes the first line number).

    Raises :class:`redis.RedisError` if Redis fails; nothing is swallowed.
    """
    batch = prepare_batch(objs, convert, index_base)
    if batch.good:
        append_reads(client, batch.good, partitions, per_entry=READS_PER_ENTRY)
    if batch.dead:
        dead_letter(client, batch.dead, source)
    return _counted(batch, source, ignored)


def batch_commands(batch: PreparedBatch, partitions: int, source: str) -> list[Command]:
    """The ``XADD`` commands that store a prepared batch: its reads, then its dead letters."""
    commands: list[Command] = [
        (key, {READ_FIELD: payload}, None)
        for key, payload in read_entries(batch.good, partitions, READS_PER_ENTRY)
    ]
    if batch.dead:
        at = None
        for raw, reason in batch.dead:
            fields = dead_letter_fields(raw, reason, source, at)
            at = fields["at"]  # one timestamp per request, as dead_letter() stamps one per call
            commands.append((DEADLETTER_STREAM, fields, DEADLETTER_MAXLEN))
    return commands


async def ingest_async(
    writer: StreamWriter,
    batch: PreparedBatch,
    partitions: int,
    source: str,
    *,
    ignored: int = 0,
) -> IngestResult:
    """Write a prepared batch through the group-commit ``writer``; return once Redis stored it.

    The asynchronous twin of :func:`ingest_objects` for the HTTP endpoints (validation is the
    caller's, with :func:`prepare_batch`, so a large batch can be validated off the event loop).
    Raises :class:`redis.RedisError` or :class:`OSError` if Redis fails.
    """
    await writer.write(batch_commands(batch, partitions, source))
    return _counted(batch, source, ignored)


async def refuse_async(
    writer: StreamWriter,
    batch: PreparedBatch,
    foreign: set[str],
    token_id: str,
    source: str,
) -> None:
    """Dead-letter the reads of ``foreign`` cameras of a batch refused as a whole (403): the
    token ``token_id`` may not post for them. Nothing else of the batch is written (the sender
    fixes its token or camera id and sends the batch again). A Redis failure is logged, not
    raised: the refusal stands either way."""
    dead = [
        (orjson.dumps(read), f"camera_id: ingest token {token_id!r} may not post for camera "
         f"{read['camera_id']!r}")
        for read in batch.good
        if read["camera_id"] in foreign
    ]  # fmt: skip
    refused = PreparedBatch([], [], dead, len(batch.good))
    try:
        await writer.write(batch_commands(refused, 1, source))
    except (redis.RedisError, OSError) as exc:
        log.error("ingest %s: the refused reads could not be dead-lettered: %s", source, exc)
        return
    READS_REJECTED.labels(source, "camera_id").inc(len(dead))


def reject_raw(
    client: redis.Redis, items: Sequence[tuple[int, bytes | str, str, str]], source: str
) -> list[Rejection]:
    """Dead-letter items that never decoded (a file line that is not JSON).

    ``items`` holds ``(index, raw, field, reason)``; the reason is stored as given.
    """
    if not items:
        return []
    dead_letter(client, [(raw, reason) for _, raw, _, reason in items], source)
    out = []
    for index, _, fld, reason in items:
        READS_REJECTED.labels(source, field_label(fld)).inc()
        out.append(Rejection(index, reason, fld))
    return out


def generate_ingest_token() -> str:
    """A fresh random ingest token (32 URL-safe characters, 192 bits).

    For ``plateflow serve --generate-ingest-token`` and the demo; a deployment configures its
    own tokens with ``PLATEFLOW_INGEST_TOKENS``.
    """
    return secrets.token_urlsafe(24)
