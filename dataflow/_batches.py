"""The items that travel through the flow: batches, never single reads.

Bytewax costs about 9 us per item, so one item carries every entry a source poll returned for
one stream partition (ARCHITECTURE "How data flows").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    reads: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[bytes, str]] = field(default_factory=list)
    match_s: float = 0.0
