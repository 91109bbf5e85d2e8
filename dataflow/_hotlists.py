"""The live hotlist index of a process, and its hot reload.

All workers of a process share one :class:`IndexHolder` (an index over a million entries is
built once, not once per worker). A change to a list is announced on
``plateflow:hotlists:changed`` with the list's name; a listener thread rebuilds that one list
*beside* the current index (:meth:`matchers.HotlistIndex.with_hotlist`) and then swaps a single
reference, so matching never stops and a batch always sees one consistent index.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence

import redis

from dataflow import _metrics as m
from matchers import Hotlist as HotlistT
from matchers import HotlistIndex, OcrClasses
from sinks import HOTLISTS_CHANGED

log = logging.getLogger(__name__)

#: Seconds between attempts of a hotlist reload that failed.
RELOAD_RETRY_S = 2.0
_ALL = "\x00all"  # not a list name: names are printable


class IndexHolder:
    """Holds the current index; :meth:`reload` rebuilds one list and swaps atomically.

    :arg load_all: every live hotlist (files and database), at start.
    :arg load_one: the live version of one list by name, or ``None`` if it no longer exists.
    """

    def __init__(
        self,
        load_all: Callable[[], Sequence[HotlistT]],
        load_one: Callable[[str], HotlistT | None],
        ocr: OcrClasses,
    ) -> None:
        self._load_all = load_all
        self._load_one = load_one
        self._ocr = ocr
        self._lock = threading.Lock()  # serialises rebuilds; readers never take it
        started = time.perf_counter()
        self._index = HotlistIndex.build(load_all(), ocr)
        log.info(
            "hotlist index built: %d lists, %d entries in %.2f s",
            len(self._index.hotlists),
            len(self._index),
            time.perf_counter() - started,
        )
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._failures: dict[str, int] = {}  # reloads failing now, by name: attempts so far

    def current(self) -> HotlistIndex:
        return self._index

    def reload(self, name: str) -> None:
        """Rebuild list ``name`` from its source and swap it in (or drop it if gone)."""
        with self._lock:
            hotlist = self._load_one(name)
            old = self._index
            if hotlist is None:
                new = old.without_hotlist(name)
            else:
                new = old.with_hotlist(hotlist)
            self._index = new  # one reference assignment: atomic for readers
        gc.collect()
        gc.freeze()  # the new entries join the permanent generation (see flow.tune_gc)
        log.info("hotlist %r reloaded: %d entries in the index", name, len(new))

    def listen(self, redis_url: str) -> None:
        """Start a daemon thread that reloads lists announced on the change channel."""
        if self._listener is not None:
            return
        self._listener = threading.Thread(
            target=self._listen, args=(redis_url,), name="hotlist-reload", daemon=True
        )
        self._listener.start()

    def stop(self) -> None:
        """Stop the listener thread (waits up to a second for it)."""
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=1.0)

    def reload_all(self) -> None:
        """Rebuild the whole index from the sources and swap it in."""
        with self._lock:
            new = HotlistIndex.build(self._load_all(), self._ocr)
            self._index = new
        gc.collect()
        gc.freeze()
        log.info("hotlist index rebuilt: %d lists, %d entries", len(new.hotlists), len(new))

    def _listen(self, redis_url: str) -> None:
        reconnecting = False
        # Reloads that failed (the records database restarting, a list that does not load)
        # are retried until they work: a change announced once must not be lost to an outage.
        # _ALL stands for "rebuild everything" (changes missed while Redis was away).
        pending: set[str] = set()
        retry_at = 0.0
        while not self._stop.is_set():
            client = redis.Redis.from_url(redis_url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(HOTLISTS_CHANGED)
                if reconnecting:
                    # changes announced while we were away were missed: take everything again
                    pending = {_ALL}
                    retry_at = 0.0
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        data = message["data"]
                        pending.add(data.decode() if isinstance(data, bytes) else str(data))
                        retry_at = 0.0
                    if pending and time.monotonic() >= retry_at:
                        pending = self._apply(pending)
                        retry_at = time.monotonic() + RELOAD_RETRY_S
            except (redis.RedisError, OSError) as exc:
                if self._stop.is_set():
                    return
                log.warning("hotlist change listener lost Redis (%s); retrying in 1 s", exc)
                reconnecting = True
                time.sleep(1)
            finally:
                pubsub.close()
                client.close()

    def _apply(self, names: set[str]) -> set[str]:
        """Reload ``names`` (or everything, for :data:`_ALL`); return the ones that failed."""
        if _ALL in names:
            names = {_ALL}
        failed: set[str] = set()
        for name in sorted(names):
            what = "every hotlist" if name == _ALL else f"hotlist {name!r}"
            try:
                self.reload_all() if name == _ALL else self.reload(name)
            except Exception:  # a bad list or a database away: the old index stays live
                m.HOTLIST_RELOADS.labels(outcome="failed").inc()
                failed.add(name)
                attempts = self._failures[name] = self._failures.get(name, 0) + 1
                if attempts == 1:
                    log.exception("reload of %s failed; the old one stays live", what)
                elif attempts % 30 == 0:
                    log.warning("reload of %s still failing after %d attempts", what, attempts)
            else:
                m.HOTLIST_RELOADS.labels(outcome="ok").inc()
                if self._failures.pop(name, 0):
                    log.warning("reload of %s succeeded after an earlier failure", what)
        return failed
