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
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

import matchers
import records
from service._acts import Acts
from service._door import Actor, Door, Outcome
from service._errors import Forbidden, Invalid, NotFound
from service._pages import cursor_window, page_of_reads, rows_json, with_alerts
from service._query import READ_RESULT_SCHEMA
from service._search import ResultStream, SearchPage
from service._window import to_ms
from sinks import READS_SCHEMA, AlertBus, Pages, ReadStore

__all__ = [
    "MAX_PAST_DAYS",
    "PAST_SCHEMA",
    "PastRequest",
    "PastSearch",
    "advisories_for",
    "past_page",
    "past_stream",
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
        the ``days`` before ``now``. Raises :class:`~service.NotFound` when the list or
        the entry does not exist, :class:`~service.Invalid` for a bad value."""
        if not 1 <= days <= MAX_PAST_DAYS:
            raise Invalid(f"days is {days}; search 1-{MAX_PAST_DAYS} days back", "days")
        try:
            text = matchers.normalise_entry_plate(entry)
        except matchers.MatchersError as exc:
            raise Invalid(f"entry {entry!r}: {exc}", "plate") from exc
        wanted_state = state.strip().upper() if state and state.strip() else None
        try:
            hotlist = records.load_hotlist(engine, name)
        except records.NotFoundError as exc:
            raise NotFound(str(exc), "hotlist") from exc
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
            raise NotFound(msg, "plate")
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


def advisories_for(geofence_file: Path | None) -> Callable[[float | None, float | None], list[str]]:
    """The geofence advisories of ``geofence_file`` (427.3(h)), as the flow adds them."""
    if geofence_file is None:
        return lambda lat, lon: []
    return matchers.Geofences.from_json(geofence_file.read_bytes(), str(geofence_file)).advisories


@dataclass(frozen=True)
class PastRequest:
    """Past-read matching as asked: entry ``plate`` (as entered) of list ``hotlist``, the
    ``days`` back, the ``state`` when the plate is listed for several, and whether to publish
    the hits as historical alerts."""

    hotlist: str
    plate: str
    days: int = 30
    state: str | None = None
    publish: bool = False


def _prepare(
    door: Door, actor: Actor, asked: PastRequest, now: datetime | None = None
) -> PastSearch:
    """The past search, after the checks the act decides itself (each audited): the list
    exists for this actor (covert lists only for roles allowed), the entry is on it, and a
    role that raises historical alerts may enter entries."""
    act = Acts.PAST_READS
    if actor.covert.hotlist(door.engine, asked.hotlist) is None:
        raise door.deny(actor, act, NotFound(f"no hotlist {asked.hotlist!r}", "hotlist"))
    if asked.publish and not any(actor.can(p) for p in Acts.ENTRY_PERMISSIONS):
        msg = (
            f"user {actor.username!r} may not raise historical alerts (needs one of "
            f"{', '.join(Acts.ENTRY_PERMISSIONS)})"
        )
        raise door.deny(actor, act, Forbidden(msg))
    return door.checked(
        actor,
        act,
        lambda: PastSearch.prepare(
            door.engine,
            asked.hotlist,
            asked.plate,
            days=asked.days,
            state=asked.state,
            now=now,
            ocr_classes=door.config.ocr_classes,
        ),
    )


def _publish(door: Door, past: PastSearch, store: ReadStore) -> int:
    """Publish the historical alerts of every hit on the alert bus (covert ones on the covert
    channel), without the cooldown: a historical alert never turns a live hit of the same
    plate into a mere sighting. Returns how many."""
    if door.redis is None:
        raise AssertionError("publishing historical alerts needs the door's Redis client")
    advisories = advisories_for(door.config.geofence_file)
    now_ms = int(time.time() * 1000)
    bus = AlertBus(
        door.redis,
        log_maxlen=door.config.alerts_log_maxlen,
        cooldown_s=0,
        log_keep_s=door.config.alerts_log_keep_s,
    )
    published = 0
    for frame in past.pages(store, past.start, past.end):
        alerts = past.alerts(past.transform(frame), advisories, now_ms)
        if alerts:
            published += len(bus.publish(alerts))
    return published


def past_page(
    door: Door,
    actor: Actor,
    asked: PastRequest,
    *,
    page_size: int = 100,
    cursor: str | None = None,
) -> SearchPage:
    """One page of what the entry would have hit; with ``asked.publish`` (first page only)
    the hits are published as historical alerts."""
    publish = asked.publish and not cursor  # later pages of the same search: already done
    window = door.checked(actor, Acts.PAST_READS, lambda: cursor_window(cursor))
    past = _prepare(door, actor, replace(asked, publish=publish), window[1] if window else None)
    store, covert = door.store, actor.covert

    def run(access: Outcome) -> SearchPage:
        published = 0
        if publish:
            published = _publish(door, past, store)
            access.terms["alerts_published"] = published
        page = page_of_reads(
            lambda lo, hi, size: past.pages(store, lo, hi, size),
            past.start,
            past.end,
            past.terms(),
            page_size=page_size,
            cursor=cursor,
            transform=past.transform,
            schema=PAST_SCHEMA,
        )
        rows = rows_json(store, page.rows, covert=covert)
        access.result_count = len(rows)
        access.terms["total"] = page.total
        return SearchPage(past.terms(), rows, page.total, page.next_cursor, published)

    terms = {**past.terms(), "alert": publish, "cursor": bool(cursor)}
    return door.scan(actor, Acts.PAST_READS, run, terms)


def past_stream(
    door: Door,
    actor: Actor,
    asked: PastRequest,
    *,
    page_size: int = 1000,
    output: str = "terminal",
) -> ResultStream:
    """The whole result of past-read matching, counted (and, with ``asked.publish``,
    published) inside the audited transaction; the pages are read after it commits."""
    past = _prepare(door, actor, asked)
    publish = asked.publish
    store = door.store

    def frames() -> Iterator[pl.DataFrame]:
        for frame in past.pages(store, past.start, past.end, page_size):
            found = past.transform(frame)
            if found.height:
                yield found

    def run(access: Outcome) -> tuple[int, int]:
        published = _publish(door, past, store) if publish else 0
        if publish:
            access.terms["alerts_published"] = published
        total = sum(frame.height for frame in frames())
        access.result_count = total
        return total, published

    terms = {**past.terms(), "alert": publish, "output": output}
    total, published = door.scan(actor, Acts.PAST_READS, run, terms)
    pages = with_alerts(store, frames(), covert=actor.covert)
    return ResultStream(past.terms(), total, PAST_SCHEMA, pages, published)
