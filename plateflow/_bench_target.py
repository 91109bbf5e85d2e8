"""Load-testing a running deployment: fixed-rate camera traffic in, what came out measured.

:func:`run_target` drives the ingest endpoint with :func:`plateflow._loadgen.run_fixed_rate`
(simulated camera traffic, read ids ``bench-{run}-{n}`` so this run's reads and alerts can be
told from everybody else's) and, when a Redis URL is given, watches the deployment from the
inside while it runs:

* **alert latency**: a stream consumer on ``plateflow:alerts:log`` (``XREAD BLOCK`` from the
  moment the run starts, never pub/sub, so no alert is missed) times every alert of this run's
  reads from the moment the read was sent to the alert-log entry's id (Redis's clock: run the
  tool on a host whose clock agrees with Redis's, or on the same host);
* **consumer lag**: once a second, how far each read stream's newest entry is ahead of the flow's
  committed offset (``plateflow:offsets``), in seconds of stream time;
* **dead letters** added during the run (``plateflow:deadletter``).

The answer is a :class:`TargetReport` (JSON-ready with :meth:`TargetReport.summary`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from plateflow._loadgen import LoadReport, Target, percentiles, run_fixed_rate, simulated_bodies
from sinks import ALERT_FIELD, ALERTS_LOG, DEADLETTER_STREAM, OFFSETS_KEY, stream_key

log = logging.getLogger(__name__)

__all__ = ["TargetReport", "Watcher", "run_target"]


def _id_ms(stream_id: bytes | str) -> int:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return int(text.split("-", 1)[0])


@dataclass
class Watcher:
    """The inside view while a run goes: alerts of this run's reads, lag and dead letters."""

    redis_url: str
    partitions: int
    prefix: str
    sent_ms: dict[str, float] = field(default_factory=dict)
    alert_latencies_ms: list[float] = field(default_factory=list)
    alerts_seen: int = 0
    lag_s: list[tuple[float, float]] = field(default_factory=list)
    deadletters_before: int = 0
    deadletters_after: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _start_id: str = "$"

    def sent(self, read_ids: list[str], wall: float) -> None:
        """The load generator's ``on_sent`` hook: when each read left."""
        ms = wall * 1000.0
        for read_id in read_ids:
            self.sent_ms[read_id] = ms

    def start(self) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            self.deadletters_before = int(client.xlen(DEADLETTER_STREAM))
            newest: Any = client.xrevrange(ALERTS_LOG, count=1)
            self._start_id = newest[0][0].decode() if newest else "0-0"
        finally:
            client.close()
        self._started = time.monotonic()
        for target in (self._alerts, self._lag):
            thread = threading.Thread(target=target, daemon=True, name=target.__name__)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            self.deadletters_after = int(client.xlen(DEADLETTER_STREAM))
        finally:
            client.close()

    def current_lag_s(self) -> float | None:
        return self.lag_s[-1][1] if self.lag_s else None

    def _alerts(self) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        after = self._start_id
        try:
            while not self._stop.is_set():
                answer: Any = client.xread({ALERTS_LOG: after}, count=1000, block=500)
                for _, entries in answer or ():
                    for entry_id, fields in entries:
                        after = entry_id.decode()
                        self._alert(entry_id, fields)
        except redis.RedisError as exc:
            self.errors.append(f"alert consumer: {exc}")
        finally:
            client.close()

    def _alert(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            alert = orjson.loads(fields[ALERT_FIELD])
            read_id = alert["read"]["read_id"]
        except (KeyError, TypeError, orjson.JSONDecodeError):
            return
        sent = self.sent_ms.get(read_id) if isinstance(read_id, str) else None
        if sent is None:
            return  # somebody else's read
        self.alerts_seen += 1
        self.alert_latencies_ms.append(_id_ms(entry_id) - sent)

    def _lag(self) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            while not self._stop.wait(1.0):
                committed: Any = client.hgetall(OFFSETS_KEY)
                worst = 0.0
                for p in range(self.partitions):
                    newest: Any = client.xrevrange(stream_key(p), count=1)
                    if not newest:
                        continue
                    done = committed.get(str(p).encode())
                    behind = _id_ms(newest[0][0]) - (_id_ms(done) if done else 0)
                    worst = max(worst, behind / 1000.0 if done else float("inf"))
                self.lag_s.append((time.monotonic() - self._started, worst))
        except redis.RedisError as exc:
            self.errors.append(f"lag sampler: {exc}")
        finally:
            client.close()


@dataclass
class TargetReport:
    """One load test of a deployment: the client's view and (with Redis) the inside view."""

    load: LoadReport
    watcher: Watcher | None
    url: str

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ingest_url": self.url, "ingest": self.load.summary()}
        out["ingest"]["timeline"] = self.load.timeline
        if self.watcher is None:
            out["inside"] = None
            return out
        w = self.watcher
        finite = [lag for _, lag in w.lag_s if lag != float("inf")]
        out["inside"] = {
            "alerts_of_this_run": w.alerts_seen,
            "alert_latency_ms": percentiles(w.alert_latencies_ms),
            "consumer_lag_s_max": max(finite) if finite else None,
            "consumer_lag_s_last": w.current_lag_s(),
            "consumer_lag_timeline": [{"t": t, "lag_s": lag} for t, lag in w.lag_s],
            "deadletters_added": w.deadletters_after - w.deadletters_before,
            "errors": w.errors,
        }
        return out


def run_target(
    url: str,
    token: str,
    *,
    rate: float,
    duration_s: float,
    reads_per_request: int = 1,
    connections: int = 64,
    redis_url: str | None = None,
    partitions: int = 4,
    hot_plates: list[tuple[str, str | None]] | None = None,
    hit_rate: float = 0.01,
    settle_s: float = 3.0,
    on_second: Callable[[LoadReport, Watcher | None], None] | None = None,
) -> TargetReport:
    """Load ``url`` at ``rate`` requests/s for ``duration_s`` and measure (see the module doc).

    ``settle_s`` after the last request, the watcher keeps collecting alerts and lag (the flow
    finishes what was sent). Raises ``ValueError`` for an unusable URL or rate.
    """
    prefix = f"bench-{os.getpid()}-{int(time.time())}-"
    watcher = Watcher(redis_url, partitions, prefix) if redis_url else None
    if watcher is not None:
        watcher.start()
    bodies = simulated_bodies(
        reads_per_request, prefix=prefix, hot_plates=hot_plates, hit_rate=hit_rate
    )

    def second(report: LoadReport) -> None:
        if on_second is not None:
            on_second(report, watcher)

    try:
        load = _run_loop(
            run_fixed_rate(
                Target(url, token),
                bodies,
                rate=rate,
                duration_s=duration_s,
                connections=connections,
                reads_per_request=reads_per_request,
                on_sent=watcher.sent if watcher else None,
                on_second=second,
            )
        )
        if watcher is not None:
            # The flow still has the last reads in hand: wait until it committed them all (lag
            # 0, then half a second for their alerts), at most settle_s.
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline and watcher.current_lag_s() != 0.0:
                time.sleep(0.25)
            time.sleep(max(0.0, min(0.5, deadline - time.monotonic())))
    finally:
        if watcher is not None:
            watcher.stop()
    return TargetReport(load, watcher, url)


def _run_loop(coro: Any) -> LoadReport:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(coro)  # type: ignore[no-any-return]
    return asyncio.run(coro)  # type: ignore[no-any-return]
