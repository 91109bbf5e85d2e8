"""Stream offsets in Redis that make the Parquet read sink idempotent across restarts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import orjson
import redis

from sinks._files import temp_for
from sinks._layout import OFFSETS_KEY, PENDING_KEY, parse_stream_id, stream_key

__all__ = ["StreamProgress"]

log = logging.getLogger(__name__)


class StreamProgress:
    """Per partition: the last stream id whose reads are fully in Parquet, and the files a
    write in progress will produce.

    Protocol for one batch of partition ``p`` whose entries are ``first_id .. last_id``:

    1. drop every entry with id <= :meth:`committed` (already stored: :func:`sinks.is_after`);
    2. :meth:`begin` with the paths the batch will write (:meth:`sinks.ReadStore.paths_for`);
    3. write the files (:meth:`sinks.ReadStore.write_reads`);
    4. :meth:`commit` ``last_id``.

    A crash before 4 leaves an intent; at start-up :meth:`recover` deletes the files it names, so
    the replayed entries (all after the committed id) are written again exactly once, even when
    the replay cuts batches differently and the file names change. A crash after 4 replays only
    entries the flow then drops. Either way a replay neither duplicates rows nor loses any.
    Offsets live in hash ``plateflow:offsets`` (field = partition), intents in
    ``plateflow:offsets:pending`` (field = partition, value = JSON list of paths).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def committed(self, partition: int) -> str | None:
        """The last stream id of ``partition`` fully written, or None before the first commit."""
        value = self._client.hget(OFFSETS_KEY, str(partition))
        return _text(value)

    def committed_all(self) -> dict[int, str]:
        """Every partition's committed stream id."""
        found = self._client.hgetall(OFFSETS_KEY)
        return {int(_text(key) or "0"): _text(value) or "" for key, value in found.items()}

    def pending(self, partition: int) -> list[Path]:
        """The files named by an unfinished write of ``partition`` (empty when none)."""
        value = self._client.hget(PENDING_KEY, str(partition))
        if value is None:
            return []
        return [Path(path) for path in orjson.loads(value)]

    def pending_all(self) -> dict[int, list[Path]]:
        """Every partition's unfinished write (the compaction job skips these files)."""
        found = self._client.hgetall(PENDING_KEY)
        return {
            int(_text(key) or "0"): [Path(path) for path in orjson.loads(value)]
            for key, value in found.items()
        }

    def begin(self, partition: int, paths: Sequence[Path]) -> None:
        """Record that a write of ``partition`` is about to create ``paths``."""
        payload = orjson.dumps([str(path) for path in paths])
        self._client.hset(PENDING_KEY, str(partition), payload)

    def commit(self, partition: int, last_id: str) -> None:
        """Mark everything up to ``last_id`` as stored and clear the intent, in one MULTI so no
        observer sees one without the other."""
        parse_stream_id(last_id)  # refuse anything that is not a stream id
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(OFFSETS_KEY, str(partition), last_id)
        pipe.hdel(PENDING_KEY, str(partition))
        pipe.execute()

    def recover(self, partition: int) -> list[Path]:
        """Delete the files (and their temporaries) named by a leftover intent of ``partition``,
        clear the intent and return the files that existed. Call before consuming the
        partition; a no-op (``[]``) after a clean stop."""
        paths = self.pending(partition)
        removed: list[Path] = []
        for path in paths:
            temp_for(path).unlink(missing_ok=True)
            if path.exists():
                path.unlink()
                removed.append(path)
        self._client.hdel(PENDING_KEY, str(partition))
        if paths:
            log.warning(
                "partition %d: removed %d files of an unfinished write; its entries replay",
                partition,
                len(removed),
            )
        return removed

    def trim(self, partition: int) -> int:
        """Drop stream entries of ``partition`` older than its committed id (``XTRIM MINID``).
        Only safe when nothing else still needs those entries (e.g. alert matching caught up).
        Returns the number of entries removed."""
        last = self.committed(partition)
        if last is None:
            return 0
        return int(self._client.xtrim(stream_key(partition), minid=last, approximate=False))


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value
