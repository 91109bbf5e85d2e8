"""One reader of the alert logs and disposition event streams per API process, fanning each entry
out to every open alert stream, so fifty consoles cost one blocking XREAD, not fifty.

A stream subscribes *before* it reads its backfill with XRANGE: every entry added after the
subscription reaches its queue (the reader's next XREAD starts after the last id it delivered,
which no later entry can precede), every entry added before it is in the backfill, and the
stream drops the overlap by comparing ids with the position it reached in each stream. A stream
whose queue fills up (a console slower than the alert rate) is dropped from the fan-out and
catches up from Redis by itself, from its own position: nothing is lost, only delayed. A Redis
error reaches every subscriber, which ends its response (the console reconnects with its
``Last-Event-ID``). The reader runs only while someone listens.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from service._frames import Shared
from sinks import (
    ALERTS_LOG,
    COVERT_DISPOSITION_EVENTS,
    COVERT_LOG,
    DISPOSITION_EVENTS,
    StreamTail,
)

__all__ = ["Fanout", "Subscriber", "fanout_of"]

log = logging.getLogger(__name__)

#: Every stream the reader follows; each subscriber receives the ones it names.
STREAMS = (ALERTS_LOG, COVERT_LOG, DISPOSITION_EVENTS, COVERT_DISPOSITION_EVENTS)
#: Entries a subscriber may have waiting before it is dropped and catches up by itself.
QUEUE_MAX = 10_000

_ORDER = attrgetter("order")


class Subscriber:
    """One open stream's waiting entries from the streams it reads, oldest first."""

    def __init__(self, streams: Iterable[str], maxsize: int) -> None:
        self.streams = frozenset(streams)
        self._maxsize = maxsize
        self._ready: list[Shared] = []
        self._wake = asyncio.Event()
        #: Set when the fan-out dropped this subscriber (queue full) or failed (the error).
        self.overflowed = False
        self.error: BaseException | None = None

    def offer(self, entries: list[Shared]) -> bool:
        """Queue ``entries``, or none of them and mark the subscriber overflowed (False) when
        they would pass its limit: it then catches up from Redis by itself."""
        if len(self._ready) + len(entries) > self._maxsize:
            self.overflowed = True
        else:
            self._ready.extend(entries)
        self._wake.set()
        return not self.overflowed

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self._wake.set()

    async def next_batch(self, timeout_s: float) -> list[Shared]:
        """Everything waiting, else what comes within ``timeout_s`` (``[]`` when nothing does,
        or at once when the subscriber overflowed or failed)."""
        if not self._ready and not self.overflowed and self.error is None:
            # the timeout only wakes the wait (a timer, not wait_for's task per wait); what
            # is ready then, possibly nothing, is the answer
            timer = asyncio.get_running_loop().call_later(max(timeout_s, 0.001), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
        ready, self._ready = self._ready, []
        self._wake.clear()
        return ready


class Fanout:
    """The reader of :data:`STREAMS` for one asynchronous Redis client."""

    def __init__(self, tail: StreamTail, block_ms: int, batch: int) -> None:
        self._tail = tail
        self._block_ms = block_ms
        self._batch = batch
        self._subs: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._pos: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def subscribe(self, streams: Iterable[str]) -> Subscriber:
        sub = Subscriber(streams, QUEUE_MAX)
        async with self._lock:
            if self._task is None or self._task.done():
                self._pos = {s: await self._tail.last_id(s) for s in STREAMS}
                self._task = asyncio.create_task(self._run(), name="alert-stream-fanout")
            # no await between the reader's liveness check and the add: the reader cannot
            # stop for want of subscribers in between
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    async def _run(self) -> None:
        try:
            while self._subs:
                # XREAD BLOCK returns as soon as one stream has entries: one round trip per
                # burst, and none while nothing happens
                entries = await self._tail.wait(dict(self._pos), self._block_ms, self._batch)
                for entry in entries:
                    self._pos[entry.stream] = entry.id
                if entries:
                    # wrapped and ordered once for every subscriber: each builds no frame
                    # another has built
                    self._hand(sorted(map(Shared, entries), key=_ORDER))
        except Exception as exc:
            log.warning("the alert stream reader failed (%s); open streams end", exc)
            for sub in list(self._subs):
                sub.fail(exc)
            self._subs.clear()

    def _hand(self, entries: list[Shared]) -> None:
        # subscribers read one of a few sets of streams: each set's share is picked out once
        shares: dict[frozenset[str], list[Shared]] = {}
        for sub in list(self._subs):
            share = shares.get(sub.streams)
            if share is None:
                share = shares[sub.streams] = [e for e in entries if e.stream in sub.streams]
            if share and not sub.offer(share):
                self._subs.discard(sub)


_FANOUTS: weakref.WeakKeyDictionary[Any, Fanout] = weakref.WeakKeyDictionary()


def fanout_of(client: Any, block_ms: int, batch: int) -> Fanout:
    """The fan-out of the asynchronous Redis ``client`` (one per client, made on first use)."""
    found = _FANOUTS.get(client)
    if found is None:
        found = Fanout(StreamTail(client), block_ms, batch)
        _FANOUTS[client] = found
    return found
