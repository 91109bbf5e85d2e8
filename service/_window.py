"""The one time-window validator of every act that takes a ``start`` and an ``end``.

``[start, end)`` in UTC at the store's millisecond resolution. A naive time, an empty window
and a time the window cannot be built around (``end=0001-01-02`` leaves no room for a default
start before it) are :class:`~service.Invalid` naming the field, never a crash.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from service._errors import Invalid

__all__ = ["DEFAULT_WINDOW_DAYS", "to_ms", "utc_window"]

#: Plate history and partial search look this far back when no start is given.
DEFAULT_WINDOW_DAYS = 30


def to_ms(moment: datetime) -> datetime:
    """``moment`` cut to whole milliseconds, the store's resolution (cursors carry ms)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise Invalid(f"{name} has no UTC offset; append Z or +hh:mm", name)
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        msg = f"{name} {value.isoformat()} is out of range in UTC ({exc}); give a later time"
        raise Invalid(msg, name) from exc


def utc_window(
    start: datetime | None,
    end: datetime | None,
    *,
    default_days: float = DEFAULT_WINDOW_DAYS,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC: ``end`` defaults to now, ``start`` to ``default_days`` before
    ``end``. Raises :class:`~service.Invalid` (``field`` ``start`` or ``end``) for a naive
    time, a time out of range, or ``start`` not before ``end``."""
    begin = _utc("start", start) if start is not None else None
    stop = _utc("end", end) if end is not None else (now or datetime.now(timezone.utc))
    if begin is None:
        try:
            begin = stop - timedelta(days=default_days)
        except OverflowError as exc:
            msg = (
                f"end {stop.isoformat()} leaves no room for the default {default_days:g}-day "
                "window before it; give a later end, or a start"
            )
            raise Invalid(msg, "end") from exc
    if begin >= stop:
        raise Invalid("start must be before end", "start")
    return to_ms(begin), to_ms(stop)
