"""Alerts as acts: the stored alert history and the recent alerts of the replay log (the live
stream is :mod:`service._stream`).

History is read from the Parquet alert store (:meth:`sinks.ReadStore.scan_alerts`), the recent
alerts from the capped Redis alert log (:meth:`sinks.AlertBus.replay`); covert alerts only
reach actors whom :class:`~service.Covert` allows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import polars as pl

import matchers
import records
from service._acts import Acts
from service._door import Actor, Door
from service._errors import Forbidden, Invalid
from service._window import utc_window
from sinks import AlertBus, SinksError, parse_stream_id

__all__ = ["ALERT_KINDS", "HISTORY_DEFAULT_DAYS", "alert_history", "alert_log"]

#: Alert history looks this far back when no start is given.
HISTORY_DEFAULT_DAYS = 7
ALERT_KINDS = ("exact", "ocr", "fuzzy", "partial")


def alert_history(
    door: Door,
    actor: Actor,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    plate: str | None = None,
    hotlist: str | None = None,
    kind: str | None = None,
    camera_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Stored alerts whose read time is in ``[start, end)`` (default: the last 7 days),
    newest first, filtered by plate, hotlist, match kind or camera."""
    act = Acts.ALERT_HISTORY
    begin, stop = door.checked(
        actor, act, lambda: utc_window(start, end, default_days=HISTORY_DEFAULT_DAYS)
    )
    if kind is not None and kind not in ALERT_KINDS:
        error = Invalid(f"kind {kind!r} is not one of {', '.join(ALERT_KINDS)}", "kind")
        raise door.deny(actor, act, error)
    covert = actor.covert

    def run(access: records.AuditedAccess) -> list[dict[str, Any]]:
        frame = door.store.scan_alerts(begin, stop)
        if plate:
            frame = frame.filter(pl.col("plate") == matchers.normalise_plate(plate))
        if hotlist:
            frame = frame.filter(pl.col("hotlist") == hotlist)
        if kind:
            frame = frame.filter(pl.col("kind") == kind)
        if camera_id:
            frame = frame.filter(pl.col("camera_id") == camera_id)
        found = covert.alerts(frame).sort("ts", descending=True).head(limit)
        alerts = [orjson.loads(text) for text in found.select("alert").collect()["alert"]]
        access.result_count = len(alerts)
        return alerts

    terms = {
        "start": begin.isoformat(),
        "end": stop.isoformat(),
        "plate": plate,
        "hotlist": hotlist,
        "kind": kind,
        "camera_id": camera_id,
        "covert_visible": covert.allowed,
    }
    return door.read(actor, act, run, terms)


def alert_log(
    door: Door, actor: Actor, *, after: str = "0-0", count: int = 100, covert: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """Alerts logged after stream id ``after``, oldest first, as ``(id, alert)``: what a
    console missed while disconnected. ``covert`` reads the covert log (roles allowed only)."""
    act = Acts.ALERT_LOG
    try:
        parse_stream_id(after)
    except SinksError as exc:
        msg = f"after {after!r} is not a stream id like 1764331200000-0"
        raise door.deny(actor, act, Invalid(msg, "after")) from exc
    refused = actor.covert.forbidden_log(actor.username) if covert else None
    if refused:
        raise door.deny(actor, act, Forbidden(refused))
    if door.redis is None:
        raise AssertionError("the alert log needs the door's Redis client")

    def run(access: records.AuditedAccess) -> list[tuple[str, dict[str, Any]]]:
        entries = AlertBus(door.redis).replay(after, count, covert=covert)
        access.result_count = len(entries)
        return list(entries)

    return door.read(actor, act, run, {"after": after, "count": count, "covert": covert})
