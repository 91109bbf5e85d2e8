"""The alert bus: cooldown, publish on Redis pub/sub, and a capped log for replay."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
import redis

from sinks._errors import SinksError
from sinks._layout import (
    ALERTS_CHANNEL,
    ALERTS_LOG,
    COOLDOWN_PREFIX,
    COVERT_CHANNEL,
    COVERT_LOG,
)
from sinks._metrics import ALERTS_PUBLISHED

__all__ = ["ALERT_FIELD", "AlertBus", "cooldown_key"]

log = logging.getLogger(__name__)

#: The field of an alert-log entry that holds the alert JSON.
ALERT_FIELD = b"alert"


def cooldown_key(entry_id: str, plate: str) -> str:
    """``plateflow:cooldown:{entry_id}:{plate}``: holds the id of the first alert of the pair."""
    return f"{COOLDOWN_PREFIX}{entry_id}:{plate}"


class AlertBus:
    """Publishes alerts to dispatch consoles: PUBLISH on ``plateflow:alerts`` (covert hotlists:
    ``plateflow:alerts:covert``) and XADD to the matching capped log for replay.

    Cooldown: the first alert of an (entry, read plate) pair claims a Redis key for
    ``cooldown_s`` seconds, so the rule holds across workers and restarts. A later alert of the
    pair with a *different* alert id within the cooldown is published as a sighting
    (``sighting_of`` = the first alert's id); the *same* alert id (a replay after a restart) is
    published again unchanged, so consoles de-duplicate on ``alert_id``. Delivery is
    at-least-once. Covert alerts never touch the general channel or log.
    """

    def __init__(
        self, client: redis.Redis, *, log_maxlen: int = 100_000, cooldown_s: float = 300.0
    ) -> None:
        if log_maxlen < 1:
            msg = (
                f"log_maxlen must be at least 1, got {log_maxlen}; see PLATEFLOW_ALERTS_LOG_MAXLEN"
            )
            raise SinksError(msg)
        if cooldown_s < 0:
            msg = f"cooldown_s must not be negative, got {cooldown_s}; see PLATEFLOW_COOLDOWN_S"
            raise SinksError(msg)
        self._client = client
        self._log_maxlen = log_maxlen
        self._cooldown_ms = int(cooldown_s * 1000)

    def publish(self, alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply the cooldown, then publish and log every alert; return them as published (new
        dicts, ``sighting_of`` set on each). Two pipelines per batch whatever its size.

        Redis 6.2 has no ``SET NX GET``, so the cooldown runs ``SET key id NX PX ms`` followed by
        ``GET key`` for every alert inside one MULTI: nothing can expire or change between the
        two, and two alerts of one pair in the same batch resolve in order (the first wins)."""
        if not alerts:
            return []
        published = [dict(alert) for alert in alerts]
        outcomes = self._apply_cooldown(published)
        pipe = self._client.pipeline(transaction=False)
        for alert in published:
            payload = orjson.dumps(alert)
            covert = bool(alert["hotlist"].get("covert", False))
            channel, stream = (
                (COVERT_CHANNEL, COVERT_LOG) if covert else (ALERTS_CHANNEL, ALERTS_LOG)
            )
            pipe.publish(channel, payload)
            pipe.xadd(stream, {ALERT_FIELD: payload}, maxlen=self._log_maxlen, approximate=True)
        pipe.execute()
        for alert, outcome in zip(published, outcomes, strict=True):
            covert = bool(alert["hotlist"].get("covert", False))
            ALERTS_PUBLISHED.labels(
                channel="covert" if covert else "general", outcome=outcome
            ).inc()
        return published

    def _apply_cooldown(self, alerts: list[dict[str, Any]]) -> list[str]:
        if self._cooldown_ms <= 0:
            for alert in alerts:
                alert.setdefault("sighting_of", None)
            return ["alert"] * len(alerts)
        pipe = self._client.pipeline(transaction=True)
        for alert in alerts:
            key = cooldown_key(str(alert["entry"]["entry_id"]), str(alert["read"]["plate"]))
            pipe.set(key, alert["alert_id"], nx=True, px=self._cooldown_ms)
            pipe.get(key)
        replies = pipe.execute()
        outcomes: list[str] = []
        for index, alert in enumerate(alerts):
            claimed, holder = replies[2 * index], replies[2 * index + 1]
            holder_id = holder.decode() if isinstance(holder, bytes) else holder
            if claimed or holder_id is None:
                alert["sighting_of"] = None
                outcomes.append("alert")
            elif holder_id == alert["alert_id"]:
                # A replay of the alert that owns the cooldown: publish it as it was.
                alert["sighting_of"] = None
                outcomes.append("replay")
            else:
                alert["sighting_of"] = holder_id
                outcomes.append("sighting")
        return outcomes

    def replay(
        self, after: str = "0-0", count: int = 1000, covert: bool = False
    ) -> list[tuple[str, dict[str, Any]]]:
        """Up to ``count`` logged alerts with a stream id strictly after ``after``, oldest first,
        as ``(stream id, alert)``. A console passes the last id it saw to catch up after a
        disconnect; ``covert=True`` reads the covert log instead (never both)."""
        stream = COVERT_LOG if covert else ALERTS_LOG
        entries = self._client.xrange(stream, min=f"({after}", max="+", count=count) or []
        out: list[tuple[str, dict[str, Any]]] = []
        for entry_id, fields in entries:
            if entry_id is None or fields is None:
                continue
            key = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            # A client built with decode_responses=True hands back str field names.
            payload = fields[ALERT_FIELD] if ALERT_FIELD in fields else fields["alert"]
            out.append((key, orjson.loads(payload)))
        return out
