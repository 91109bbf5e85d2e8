"""The items that travel through the flow: batches, never single reads.

Bytewax costs about 9 us per item, so one item carries every entry a source poll returned for
one stream partition (ARCHITECTURE "How data flows").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from matchers.reads import READ_FIELDS


@dataclass(frozen=True)
class StreamBatch:
    """What one poll of one stream partition returned.

    ``entries`` holds ``(stream_id, raw_payload)`` pairs in stream order. An empty batch is a
    *tick*: the source sends one when it has been idle for a while so the sink can flush its
    buffered reads on time even when no traffic arrives.
    """

    partition: int
    entries: list[tuple[str, bytes]]
    polled_at: float

    @property
    def first_id(self) -> str | None:
        return self.entries[0][0] if self.entries else None

    @property
    def last_id(self) -> str | None:
        return self.entries[-1][0] if self.entries else None


@dataclass(frozen=True)
class ReadColumns:
    """A batch's canonical reads as columns: each field of :data:`matchers.reads.READ_FIELDS`
    to a tuple of its values, one a read.

    The flow builds no dict per read: the rows :func:`matchers.reads.validate_row` returns are
    transposed once, matched by column and written to Parquet by column; a read becomes a dict
    only where an alert is built from it (measured: a dict per read, and a pass over the dicts
    per Parquet column, were a third of the flow's time).
    """

    columns: dict[str, tuple[Any, ...]]

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[Any, ...]]) -> ReadColumns:
        """The columns of rows in ``READ_FIELDS`` order."""
        if not rows:
            return cls({name: () for name in READ_FIELDS})
        return cls(dict(zip(READ_FIELDS, zip(*rows, strict=True), strict=True)))

    def __len__(self) -> int:
        return len(self.columns["ts"])

    def __getitem__(self, name: str) -> tuple[Any, ...]:
        return self.columns[name]

    def read(self, i: int) -> dict[str, Any]:
        """The ``i``-th read as the canonical read dict (``candidates`` a list again)."""
        read = {name: column[i] for name, column in self.columns.items()}
        read["candidates"] = list(read["candidates"])
        return read


@dataclass
class ProcessedBatch:
    """A stream batch after decoding, validation and matching.

    ``rejects`` are ``(raw payload, reason)`` for the dead-letter stream; ``alerts`` are alert
    dicts ready to publish (ARCHITECTURE "Alert"), before the cooldown decides which are
    sightings.
    """

    partition: int
    first_id: str | None
    last_id: str | None
    polled_at: float
    reads: ReadColumns = field(default_factory=lambda: ReadColumns.of_rows(()))
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[bytes, str]] = field(default_factory=list)
    match_s: float = 0.0
