"""Reading the alert logs and the disposition event streams from an asynchronous client, for the
alert stream to consoles (ARCHITECTURE "Alert stream to consoles (SSE)").

The logs are read, never subscribed to: a backfill with XRANGE after a stream id, then XREAD
BLOCK after the last id delivered, so nothing published between the two is lost and nothing is
read twice. Every call is one round trip; the blocking read waits at most ``block_ms`` so the
caller notices a closed connection and sends its heartbeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aredis

from sinks._layout import parse_stream_id

__all__ = ["DISPOSITION_FIELD", "StreamTail", "TailEntry", "TrimInfo"]

#: The field of a disposition event-stream entry that holds the transition JSON.
DISPOSITION_FIELD = b"event"
_PAYLOAD_FIELDS = (b"alert", DISPOSITION_FIELD)


@dataclass(frozen=True)
class TailEntry:
    """One stream entry: the stream it came from, its id, and its JSON payload (bytes)."""

    stream: str
    id: str
    payload: bytes


@dataclass(frozen=True)
class TrimInfo:
    """What a stream still keeps: its first entry's id (None when empty or absent) and, on
    Redis 7, the newest id trimmed away (None when unknown, on Redis 6.2)."""

    first_id: str | None
    max_deleted_id: str | None

    def lost_after(self, cursor: str) -> bool:
        """Whether entries after ``cursor`` were trimmed before they could be read."""
        if self.max_deleted_id is not None:
            return parse_stream_id(cursor) < parse_stream_id(self.max_deleted_id)
        if self.first_id is None or cursor == "0-0":
            return False
        # Redis 6.2 does not say what it trimmed: a cursor older than the first entry kept is
        # an entry that is gone, and whatever followed it may be gone too.
        return parse_stream_id(cursor) < parse_stream_id(self.first_id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(stream: str, raw: Sequence[Any] | None) -> list[TailEntry]:
    """``[(id, {field: value})...]`` as redis-py returns them (bytes, or str when decoded)."""
    out: list[TailEntry] = []
    for entry_id, fields in raw or ():
        if entry_id is None or not fields:
            continue
        payload = next((fields[f] for f in _PAYLOAD_FIELDS if f in fields), None)
        if payload is None:  # a client built with decode_responses=True: str field names
            text = next((fields[f.decode()] for f in _PAYLOAD_FIELDS if f.decode() in fields), None)
            payload = text.encode() if isinstance(text, str) else text
        if payload is not None:
            out.append(TailEntry(stream, _text(entry_id), payload))
    return out


class StreamTail:
    """Asynchronous reads of named streams (the alert logs, the disposition event streams)
    through one ``redis.asyncio`` client; entries come back as :class:`TailEntry`, oldest first."""

    def __init__(self, client: aredis.Redis) -> None:
        self._client = client

    async def trim_info(self, stream: str) -> TrimInfo:
        try:
            info = await self._client.xinfo_stream(stream)
        except redis.ResponseError:  # no such key: nothing kept, nothing trimmed
            return TrimInfo(None, None)
        first = info.get("first-entry")
        deleted = info.get("max-deleted-entry-id")
        max_deleted = _text(deleted) if deleted is not None else None
        if max_deleted == "0-0":
            max_deleted = None
        return TrimInfo(_text(first[0]) if first else None, max_deleted)

    async def after(self, stream: str, after: str, count: int) -> list[TailEntry]:
        """Up to ``count`` entries with an id strictly after ``after``."""
        raw = await self._client.xrange(stream, min=f"({after}", max="+", count=count)
        return _entries(stream, raw)

    async def newest(self, stream: str, count: int) -> list[TailEntry]:
        """The newest ``count`` entries, oldest first."""
        raw = await self._client.xrevrange(stream, max="+", min="-", count=count)
        return list(reversed(_entries(stream, raw)))

    async def last_id(self, stream: str) -> str:
        """The id of the newest entry, "0-0" for an empty or absent stream."""
        raw = await self._client.xrevrange(stream, max="+", min="-", count=1)
        return _text(raw[0][0]) if raw else "0-0"

    async def wait(self, positions: dict[str, str], block_ms: int, count: int) -> list[TailEntry]:
        """Entries after each stream's position, waiting up to ``block_ms`` for the first."""
        raw: Any = await self._client.xread(positions, count=count, block=block_ms)  # type: ignore[arg-type]
        out: list[TailEntry] = []
        for stream, entries in raw or ():
            out.extend(_entries(_text(stream), entries))
        return out
