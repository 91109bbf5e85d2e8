"""Pages of search results, their cursors, and the alerts shown beside the reads.

Paging never holds a whole result: :func:`page_of_reads` reads the store's pages until it has
one row more than asked and hands back an opaque cursor, the ``(ts, read_id)`` of the last row,
bound to the search's terms. The next call narrows the time window to start at that instant, so
a later page costs no more than the first. A canvass is grouped by plate, so its cursor is an
offset (:func:`page_of_canvass`).

Alerts raised by the reads of a page come from the alert store; covert-list alerts are left
out for callers without ``hotlists:view_covert`` (427.6), as :class:`~service.Covert` decides.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import polars as pl

import records
from service._covert import Covert
from service._errors import Invalid
from service._query import READ_RESULT_SCHEMA
from sinks import CANVASS_SCHEMA, Pages, ReadStore

__all__ = [
    "ResultPage",
    "alerts_by_read",
    "cursor_window",
    "decode_cursor",
    "encode_cursor",
    "page_of_canvass",
    "page_of_reads",
    "rows_json",
    "with_alerts",
]

_ONE_MS = timedelta(milliseconds=1)
_ALERT_COLUMNS = ("alert_id", "read_id", "hotlist", "category", "kind", "entry_id", "sighting_of")


# -- paging -------------------------------------------------------------------------------------


def _digest(terms: Mapping[str, Any]) -> str:
    return hashlib.sha256(records.canonical_json(dict(terms)).encode()).hexdigest()[:16]


def encode_cursor(terms: Mapping[str, Any], **position: Any) -> str:
    """An opaque cursor: the position after the last row, bound to these query terms."""
    body = orjson.dumps({"q": _digest(terms), **position})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def _open(cursor: str) -> dict[str, Any]:
    try:
        found = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise Invalid("cursor is not one this API returned", "cursor") from exc
    if not isinstance(found, dict):
        raise Invalid("cursor is not one this API returned", "cursor")
    return found


def cursor_window(cursor: str | None) -> tuple[datetime, datetime] | None:
    """The time window of the search a cursor continues (None without a cursor): a search
    whose end defaulted to "now" keeps its first page's window on every later page."""
    if not cursor:
        return None
    try:
        start_ms, end_ms = (int(ms) for ms in _open(cursor)["w"])
        start = datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc)
        end = datetime.fromtimestamp(end_ms / 1000, tz=timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        raise Invalid("cursor is not one this API returned", "cursor") from exc
    return start, end


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def decode_cursor(cursor: str, terms: Mapping[str, Any]) -> dict[str, Any]:
    """The position of a cursor made by :func:`encode_cursor` for the same terms."""
    found = _open(cursor)
    if found.get("q") != _digest(terms):
        msg = "cursor belongs to another search; repeat the search without a cursor"
        raise Invalid(msg, "cursor")
    return found


@dataclass(frozen=True)
class ResultPage:
    """One page of a result: its rows, the whole result's size when it was counted (first
    page only), and the cursor of the next page (None on the last)."""

    rows: pl.DataFrame
    total: int | None
    next_cursor: str | None


def _after(frame: pl.DataFrame, ts_ms: int, read_id: str, newest_first: bool) -> pl.DataFrame:
    at = pl.lit(ts_ms).cast(pl.Datetime("ms", "UTC"))
    if newest_first:
        keep = (pl.col("ts") < at) | ((pl.col("ts") == at) & (pl.col("read_id") < read_id))
    else:
        keep = (pl.col("ts") > at) | ((pl.col("ts") == at) & (pl.col("read_id") > read_id))
    return frame.filter(keep)


def page_of_reads(
    make: Callable[[datetime, datetime, int], Pages],
    start: datetime,
    end: datetime,
    terms: Mapping[str, Any],
    *,
    page_size: int,
    cursor: str | None = None,
    newest_first: bool = False,
    transform: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    schema: Mapping[str, pl.DataType] = READ_RESULT_SCHEMA,
) -> ResultPage:
    """One page of a read search: ``make(start, end, page_size)`` runs the search over a
    (narrowed) window; ``transform`` may drop rows or add columns to each store page. The
    first page (no cursor) also counts the whole result."""
    lo, hi = start, end
    position: tuple[int, str] | None = None
    if cursor:
        found = decode_cursor(cursor, terms)
        try:
            position = int(found["ts"]), str(found["id"])
            at = datetime.fromtimestamp(position[0] / 1000, tz=timezone.utc)
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            raise Invalid("cursor is not one this API returned", "cursor") from exc
        if newest_first:
            hi = min(hi, at + _ONE_MS)
        else:
            lo = max(lo, at)
    kept: list[pl.DataFrame] = []
    held = 0
    if lo < hi:
        for frame in make(lo, hi, page_size + 1):
            if position is not None:
                frame = _after(frame, *position, newest_first)
            if transform is not None:
                frame = transform(frame)
            if frame.height:
                kept.append(frame)
                held += frame.height
            if held > page_size:
                break
    rows = pl.concat(kept) if kept else pl.DataFrame(schema=dict(schema))
    more = rows.height > page_size
    rows = rows.head(page_size)
    next_cursor = None
    if more:
        last = rows.row(rows.height - 1, named=True)
        window = [_ms(start), _ms(end)]
        next_cursor = encode_cursor(terms, ts=_ms(last["ts"]), id=last["read_id"], w=window)
    total: int | None = None
    if position is None:
        if not more:
            total = rows.height
        elif transform is None:
            total = make(start, end, 10_000).count()
        else:
            total = sum(transform(frame).height for frame in make(start, end, 10_000))
    return ResultPage(rows, total, next_cursor)


def page_of_canvass(
    pages: Pages, terms: Mapping[str, Any], *, page_size: int, cursor: str | None = None
) -> ResultPage:
    """One page of a canvass (plates grouped, by first sighting); the whole result is counted
    on every call because the store groups the window anyway."""
    offset = 0
    if cursor:
        found = decode_cursor(cursor, terms).get("offset")
        if not isinstance(found, int) or found < 0:
            raise Invalid("cursor is not one this API returned", "cursor")
        offset = found
    total = 0
    chosen: list[pl.DataFrame] = []
    for frame in pages:
        first, last = total, total + frame.height
        lo, hi = max(offset, first), min(offset + page_size, last)
        if lo < hi:
            chosen.append(frame.slice(lo - first, hi - lo))
        total = last
    rows = pl.concat(chosen) if chosen else pl.DataFrame(schema=CANVASS_SCHEMA)
    more = offset + page_size < total
    next_cursor = encode_cursor(terms, offset=offset + page_size) if more else None
    return ResultPage(rows, total, next_cursor)


# -- alerts and output --------------------------------------------------------------------------


def alerts_by_read(
    store: ReadStore, read_ids: Iterable[str], start: datetime, end: datetime, *, covert: Covert
) -> dict[str, list[dict[str, Any]]]:
    """The stored alerts raised by ``read_ids`` (reads timed in ``[start, end)``), by read id,
    those of covert lists only when ``covert`` allows."""
    ids = sorted(set(read_ids))
    if not ids:
        return {}
    frame = covert.alerts(store.scan_alerts(start, end).filter(pl.col("read_id").is_in(ids)))
    found: dict[str, list[dict[str, Any]]] = {}
    for row in frame.sort("ts", "alert_id").select(_ALERT_COLUMNS).collect().iter_rows(named=True):
        found.setdefault(row["read_id"], []).append(
            {k: v for k, v in row.items() if k != "read_id"}
        )
    return found


def _alerts_of_rows(
    store: ReadStore, rows: pl.DataFrame, covert: Covert, grouped: bool
) -> list[list[dict[str, Any]]]:
    """The alerts of each row: of its read, or for a canvass row of all its reads."""
    if grouped:
        keys = rows["read_ids"].to_list()
        low, high = rows["first_seen"].min(), rows["last_seen"].max()
    else:
        keys = [[i] for i in rows["read_id"].to_list()]
        low, high = rows["ts"].min(), rows["ts"].max()
    assert isinstance(low, datetime) and isinstance(high, datetime)
    ids = [i for group in keys for i in group or ()]
    found = alerts_by_read(store, ids, low, high + _ONE_MS, covert=covert)
    return [[alert for key in group or () for alert in found.get(key, [])] for group in keys]


def with_alerts(
    store: ReadStore, frames: Iterable[pl.DataFrame], *, covert: Covert, grouped: bool = False
) -> Iterator[pl.DataFrame]:
    """Each non-empty page with an ``alerts`` column: the alerts its reads raised, as JSON
    text (for files and terminals)."""
    for frame in frames:
        if frame.height == 0:
            continue
        texts = [
            orjson.dumps(found).decode() for found in _alerts_of_rows(store, frame, covert, grouped)
        ]
        yield frame.with_columns(alerts=pl.Series(texts, dtype=pl.String))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, float):
        # float32 columns (confidence) widen to 0.8999999761...; 6 digits is what was sent
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value


def rows_json(
    store: ReadStore, rows: pl.DataFrame, *, covert: Covert, grouped: bool = False
) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts with ``alerts`` (each the alerts of the read, or for a
    canvass row those of all its reads), times as RFC 3339 UTC text."""
    if rows.height == 0:
        return []
    out = []
    found = _alerts_of_rows(store, rows, covert, grouped)
    for row, alerts in zip(rows.iter_rows(named=True), found, strict=True):
        item = {key: _json_value(value) for key, value in row.items()}
        item["alerts"] = alerts
        out.append(item)
    return out
