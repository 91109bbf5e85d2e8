"""Past-read matching: what a hotlist entry, once entered, would have hit in the stored reads.

When a plate or a partial-plate pattern goes on a list, the reads of the last N days may already
hold the vehicle. :class:`PastSearch` takes the entry as it is recorded (its list's policy: OCR
look-alikes, differences, state rule, candidates) and runs it over the store in two steps:

1. a cheap probe over each file's distinct plates with the entry's text alone (no state, no
   time window), through :meth:`sinks.ReadStore.search_plates`;
2. the real decision on the rows found, through :class:`matchers.HotlistIndex` with each read's
   state, time and candidates, exactly as the live flow decides.

The entry's ``effective_from`` is ignored (the question is what it *would* have hit had it been
on the list); its expiry still applies. Found reads can be raised as alerts built like the
flow's own (:func:`matchers.build_alert`, deterministic ``alert_id``) and flagged
``historical: true``. They are published without the cooldown, so a historical alert never
turns a live hit of the same plate into a mere sighting.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy.engine import Engine

import matchers
import records
from api._store_query import READ_RESULT_SCHEMA, StoreQueryError, to_ms
from sinks import READS_SCHEMA, AlertBus, Pages, ReadStore

if TYPE_CHECKING:
    import redis

    from plateflow.settings import Settings

__all__ = [
    "MAX_PAST_DAYS",
    "PAST_SCHEMA",
    "PastSearch",
    "advisories_for",
    "list_visible",
    "publish_historical",
]

#: Past-read matching looks back at most this far (the store keeps a year by default).
MAX_PAST_DAYS = 3650
PAST_SCHEMA: dict[str, pl.DataType] = {
    **READ_RESULT_SCHEMA,
    "entry_id": pl.String(),
    "entry_plate": pl.String(),
    "state_mismatch": pl.Boolean(),
}
_NORMAL = re.compile(r"^[A-Z0-9]{1,10}$")
_READ_FIELDS = tuple(name for name in READS_SCHEMA if name != "partition")


class PastSearch:
    """One entry (or the entries of one plate in several states) of one list, ready to run
    over stored reads. Build with :meth:`prepare`."""

    def __init__(
        self, hotlist: matchers.Hotlist, days: int, start: datetime, end: datetime, ocr: Any
    ) -> None:
        self.hotlist = hotlist
        self.days = days
        self.start = start
        self.end = end
        windowless = [
            dataclasses.replace(entry, state=None, effective_from_ms=None, expires_at_ms=None)
            for entry in hotlist.entries
        ]
        probe_list = dataclasses.replace(hotlist, entries=tuple(windowless))
        self._probe = matchers.HotlistIndex.build([probe_list], ocr)
        self._index = matchers.HotlistIndex.build([hotlist], ocr)

    @classmethod
    def prepare(
        cls,
        engine: Engine,
        name: str,
        entry: str,
        *,
        days: int,
        state: str | None = None,
        now: datetime | None = None,
        ocr_classes: Sequence[str] = matchers.DEFAULT_OCR_CLASSES,
    ) -> PastSearch:
        """The live entry ``entry`` (plate or pattern, as entered) of list ``name``, to search
        the ``days`` before ``now``. Raises :class:`records.NotFoundError` when the list or
        the entry does not exist, :class:`StoreQueryError` for a bad value."""
        if not 1 <= days <= MAX_PAST_DAYS:
            raise StoreQueryError(f"days is {days}; search 1-{MAX_PAST_DAYS} days back", "days")
        try:
            text = matchers.normalise_entry_plate(entry)
        except matchers.MatchersError as exc:
            raise StoreQueryError(f"entry {entry!r}: {exc}", "plate") from exc
        wanted_state = state.strip().upper() if state and state.strip() else None
        hotlist = records.load_hotlist(engine, name)
        chosen = tuple(
            dataclasses.replace(e, effective_from_ms=None)
            for e in hotlist.entries
            if e.plate == text and (wanted_state is None or e.state == wanted_state)
        )
        if not chosen:
            where = f" for state {wanted_state}" if wanted_state else ""
            msg = (
                f"{text!r} is not on hotlist {name!r}{where}; add the entry first "
                f"(`plateflow hotlist add {name} ...` or POST /v1/hotlists/{name}/entries)"
            )
            raise records.NotFoundError(msg)
        end = to_ms((now or datetime.now(timezone.utc)).astimezone(timezone.utc))
        ocr = matchers.OcrClasses(ocr_classes)
        return cls(
            dataclasses.replace(hotlist, entries=chosen), days, end - timedelta(days=days), end, ocr
        )

    @property
    def covert(self) -> bool:
        return self.hotlist.policy.covert

    def terms(self) -> dict[str, Any]:
        """The query terms for the audit log."""
        first = self.hotlist.entries[0]
        return {
            "search": "past",
            "hotlist": self.hotlist.name,
            "entry": first.plate,
            "entry_ids": [e.entry_id for e in self.hotlist.entries],
            "states": sorted({e.state for e in self.hotlist.entries if e.state}),
            "days": self.days,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "policy": self.hotlist.policy.to_dict(),
        }

    def _probe_plates(self, plates: pl.Series) -> pl.Series:
        texts = [t for t in plates.drop_nulls().unique().to_list() if _NORMAL.match(t)]
        if not texts:
            return pl.Series([False] * plates.len(), dtype=pl.Boolean)
        hits = self._probe.match_batch(texts, [None] * len(texts), [0] * len(texts), None, 1)
        found = [text for text, hit in zip(texts, hits, strict=True) if hit]
        return plates.is_in(pl.Series(found, dtype=pl.String).implode()).fill_null(False)

    def pages(
        self, store: ReadStore, start: datetime, end: datetime, page_size: int = 1000
    ) -> Pages:
        """The stored reads the probe finds in ``[start, end)``, oldest first (a superset:
        pass each page through :meth:`transform`)."""
        return store.search_plates(
            self._probe_plates,
            max(start, self.start),
            min(end, self.end),
            description={"hotlist": self.hotlist.name, "entry": self.hotlist.entries[0].plate},
            candidates=self.hotlist.policy.candidates,
            page_size=page_size,
        )

    def _matches(self, frame: pl.DataFrame) -> list[list[matchers.Match]]:
        if frame.height == 0:
            return []
        candidates = [[c["plate"] for c in found or []] for found in frame["candidates"].to_list()]
        return self._index.match_batch(
            frame["plate"].to_list(),
            frame["state"].to_list(),
            frame["ts"].dt.epoch("ms").to_list(),
            candidates,
            max_per_read=len(self.hotlist.entries),
        )

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows of a store page that the entry really matches, with the best match of
        each: kind, differences, OCR substitutions, matched text, entry, state mismatch."""
        hits = self._matches(frame)
        keep = [bool(found) for found in hits]
        best = [found[0] for found in hits if found]
        if not best:
            return pl.DataFrame(schema=PAST_SCHEMA)
        kept = frame.filter(pl.Series(keep, dtype=pl.Boolean)).select(list(READS_SCHEMA))
        columns = {
            "matched_plate": [m.matched_text for m in best],
            "via_candidate": [m.via_candidate for m in best],
            "match_kind": [m.kind for m in best],
            "differences": [m.differences for m in best],
            "substitutions": [len(m.substitutions) for m in best],
            "entry_id": [m.entry.entry_id for m in best],
            "entry_plate": [m.entry.plate for m in best],
            "state_mismatch": [m.state_mismatch for m in best],
        }
        extra = pl.DataFrame(columns, schema={k: PAST_SCHEMA[k] for k in columns})
        return pl.concat([kept, extra], how="horizontal")

    def alerts(
        self,
        frame: pl.DataFrame,
        advisories: Callable[[float | None, float | None], list[str]],
        now_ms: int,
    ) -> list[dict[str, Any]]:
        """The alerts the reads of ``frame`` would have raised, as the flow builds them, each
        flagged ``historical: true`` with the search that found it."""
        found: list[dict[str, Any]] = []
        for row, hits in zip(frame.iter_rows(named=True), self._matches(frame), strict=True):
            if not hits:
                continue
            read = {name: row[name] for name in _READ_FIELDS}
            read["ts"] = int(row["ts"].timestamp() * 1000)
            read["candidates"] = [dict(c) for c in row["candidates"] or []]
            notes = advisories(row["lat"], row["lon"])
            for hit in hits:
                alert = matchers.build_alert(read, hit, notes, now_ms)
                alert["historical"] = True
                alert["historical_search"] = {"days": self.days, "start": self.start.isoformat()}
                found.append(alert)
        return found


def list_visible(engine: Engine, name: str, *, covert: bool) -> bool:
    """Whether hotlist ``name`` exists for a caller (covert lists only when ``covert``)."""
    found = next((h for h in records.list_hotlists(engine) if h.name == name), None)
    return found is not None and (covert or not found.covert)


def advisories_for(settings: Settings) -> Callable[[float | None, float | None], list[str]]:
    """The geofence advisories of ``settings.geofence_file`` (427.3(h)), as the flow adds."""
    if settings.geofence_file is None:
        return lambda lat, lon: []
    path = settings.geofence_file
    return matchers.Geofences.from_json(path.read_bytes(), str(path)).advisories


def publish_historical(
    client: redis.Redis, alerts: list[dict[str, Any]], log_maxlen: int
) -> list[dict[str, Any]]:
    """Publish historical alerts on the alert bus (covert ones on the covert channel), with
    no cooldown: see the module docstring. Returns them as published."""
    return AlertBus(client, log_maxlen=log_maxlen, cooldown_s=0).publish(alerts)
