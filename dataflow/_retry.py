"""Riding out a dependency that goes away: Redis restarting, the data volume full.

A flow process that crashed on every Redis restart would take the whole Timely cluster down with
it (all-or-nothing) and rebuild a million-entry index on the way back. Instead the sink and the
source retry the one step that failed, in place, with a capped backoff, and nothing after it runs
until it succeeds: the worker stops taking new reads, so no offset can be committed past reads
that are not yet written, and the flow catches up on its own once the dependency is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from dataflow import _metrics as m

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Failures worth waiting out. Redis's own (connection refused or reset, LOADING after a restart,
#: timeouts) and the file system's (no space left, read-only, a missing mount). A bug (a
#: TypeError, a ResponseError from a bad command) is not retried: it would never succeed.
TRANSIENT: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)

MAX_DELAY_S = 5.0


def backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, …): 0.1 s doubling up to 5 s."""
    return float(min(MAX_DELAY_S, 0.1 * 2 ** (attempt - 1)))


def retrying(
    stage: str,
    step: Callable[[], T],
    on_failure: Callable[[], None] | None = None,
) -> T:
    """Run ``step`` until it succeeds, waiting out :data:`TRANSIENT` failures.

    Each failure counts in ``plateflow_flow_retries_total{stage}`` and is logged (the first one
    and then every tenth, so an hour-long outage does not flood the log); ``on_failure`` cleans
    up before the next attempt (e.g. half-written temporary files on a full disk).
    """
    attempt = 0
    while True:
        try:
            result = step()
        except TRANSIENT as exc:
            attempt += 1
            m.RETRIES.labels(stage=stage).inc()
            m.STALLED.labels(stage=stage).set(1)
            if attempt == 1 or attempt % 10 == 0:
                log.warning(
                    "flow step %s failed (%s: %s); retry %d in %.1f s",
                    stage,
                    type(exc).__name__,
                    exc,
                    attempt,
                    backoff(attempt),
                )
            if on_failure is not None:
                try:
                    on_failure()
                except TRANSIENT:  # cleaning up may fail for the same reason; retry anyway
                    log.debug("clean-up after a failed %s step failed too", stage)
            time.sleep(backoff(attempt))
            continue
        if attempt:
            m.STALLED.labels(stage=stage).set(0)
            log.warning("flow step %s succeeded after %d retries", stage, attempt)
        return result
