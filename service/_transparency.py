"""The public transparency page's figures and records (policy 427.2.1(e)(g), 427.6).

Two acts of an administrator (``transparency:manage``), audited like every other:
:func:`publish_policy` posts a version of the ALPR policy and :func:`designate` names the ALPR
administrator or the custodian of records. :func:`transparency` computes what the public sees:
the policy and its history, the designees, the retention period and counts only: reads stored,
cameras reporting, hotlists by category, alerts, dispositions, searches, releases, legal holds,
purges and the last audits. It takes no actor: the figures are public by design, and private
by construction:

* every count comes from a grouped query or a file's row count, never from rows handed out,
  so no plate, read id, user name, case number or place can be in them;
* a count from 1 to ``min_cell - 1`` is published as ``{"fewer_than": min_cell}``; when a
  group's total is published and only one of its cells is hidden, the next smallest is hidden
  too, so the hidden one cannot be worked out by subtraction (zero is shown: it counts nobody);
* covert lists (427.6) are never named: they are counted as one "not shown" number of lists,
  and their alerts and dispositions are left out.

:class:`TransparencyCache` keeps one computed page and recomputes it at most once per
``refresh_s``, under a lock, so anonymous callers cannot drive the load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.parquet as pq

import records
from service._acts import Acts
from service._door import Actor, Door
from service._errors import NotFound, Unavailable
from service._transparency_html import render_transparency_html

log = logging.getLogger(__name__)

__all__ = [
    "SEARCH_KINDS",
    "TransparencyCache",
    "designate",
    "fewer_than",
    "policy_file",
    "publish_policy",
    "transparency",
]

Cell = int | dict[str, int]
#: The audit action of each search act, by the search kind the page names.
SEARCH_KINDS: Mapping[str, str] = {
    Acts.PLATE_HISTORY.action: "plate",
    Acts.PARTIAL_SEARCH.action: "partial",
    Acts.CANVASS.action: "canvass",
    Acts.PAST_READS.action: "past",
}
JUSTIFICATIONS = ("case", "event", "description")
MONTHS_SHOWN = 12
CAMERA_DAYS = 30
_EPOCH = date(1970, 1, 1)

#: What each figure counts, shown beside it on the page and carried in the JSON.
NOTES: Mapping[str, str] = {
    "reads": "plate reads held in the read store now, by the month they were read; reads "
    "past retention are purged, so older months are gone",
    "cameras": f"cameras that sent at least one stored read in the last {CAMERA_DAYS} days",
    "hotlists": "hotlists kept in the system's records, by category, with their live entries "
    "(lists loaded from files at start are not counted); lists kept confidential (427.6) are "
    "counted as one number, never named, and their entries are not shown",
    "alerts": "hotlist hits stored, by the month of the read; repeat sightings within the "
    "cooldown and hits on confidential lists are not counted",
    "dispositions": "hotlist hits a dispatcher decided: confirmed (the hit was real and "
    "acted on), rejected (a misread, the wrong state, a cleared entry...) or dismissed "
    "(not confirmed), each hit once, by the month of the decision (confidential lists left out)",
    "searches": "searches of stored reads by members (plate, partial plate, canvass, "
    "past-read matching), each counted once however many pages it returned, by month, by "
    "the justification given (case number, event number, description) and by kind; "
    "refused counts attempts the system turned down",
    "releases": "written requests from other agencies for ALPR data (427.7), since records "
    "began, and how they were decided",
    "holds": "legal holds open now: reads kept past retention as evidence for a case",
    "purges": "day partitions of reads deleted when their retention ended, and the reads in them",
    "audit": "the last quarterly audit report and the last check of the audit log's hash "
    "chain (427.5(c))",
    "min_cell": "a count from 1 to the minimum cell size less one is shown as 'fewer than' "
    "that size, so that no small group of people or events can be picked out",
}


# -- the acts -----------------------------------------------------------------------------------


def publish_policy(
    door: Door,
    actor: Actor,
    content: bytes,
    *,
    filename: str,
    effective_on: date,
    title: str | None = None,
) -> records.PolicyDocument:
    """Post the next version of the policy: Markdown (``.md``) or PDF (``.pdf``) bytes, taking
    effect on ``effective_on``."""

    def run() -> records.PolicyDocument:
        return records.publish_policy(
            door.engine,
            content,
            media_type=records.policy_media_type(filename),
            effective_on=effective_on,
            title=title,
            by=actor.username,
            client=actor.client,
        )

    terms = {"file": Path(filename).name, "effective_on": effective_on.isoformat()}
    return door.write(actor, Acts.TRANSPARENCY_PUBLISH, run, terms)


def designate(
    door: Door, actor: Actor, *, role: str, title: str, name: str, since: date
) -> records.Designee:
    """Name who holds ``role`` (``administrator`` or ``custodian``) since ``since``."""
    return door.write(
        actor,
        Acts.TRANSPARENCY_DESIGNATE,
        lambda: records.designate(
            door.engine,
            role=role,
            title=title,
            name=name,
            since=since,
            by=actor.username,
            client=actor.client,
        ),
        {"role": role, "since": since.isoformat()},
    )


def policy_file(door: Door, version: int) -> records.PolicyDocument:
    """A published version of the policy with its bytes (public, as posted: 427.2.1(g))."""
    try:
        return records.policy_document(door.engine, version)
    except records.NotFoundError as exc:
        raise NotFound(str(exc), "version") from exc


# -- small cells --------------------------------------------------------------------------------


def fewer_than(count: int, min_cell: int) -> Cell:
    """``count``, or ``{"fewer_than": min_cell}`` when it is from 1 to ``min_cell - 1``."""
    return {"fewer_than": min_cell} if 0 < count < min_cell else count


def cells(counts: Mapping[str, int], min_cell: int, *, total_shown: bool = True) -> dict[str, Cell]:
    """The cells of one group (their sum is published when ``total_shown``): small ones hidden,
    and with a published total never exactly one hidden (it would be the total minus the rest)."""
    hidden = {key for key, n in counts.items() if 0 < n < min_cell}
    if total_shown and len(hidden) == 1 and sum(counts.values()) >= min_cell:
        others = sorted((n, key) for key, n in counts.items() if n >= min_cell)
        if others:
            hidden.add(others[0][1])
    return {key: {"fewer_than": min_cell} if key in hidden else n for key, n in counts.items()}


# -- the figures --------------------------------------------------------------------------------


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _last_months(now: datetime, n: int) -> list[str]:
    year, month, out = now.year, now.month, []
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def _month_start(month: str) -> datetime:
    return datetime(int(month[:4]), int(month[5:]), 1, tzinfo=timezone.utc)


def _day_month(day: int) -> str:
    return _month(_EPOCH + timedelta(days=day))


def _series(counts: Counter[str], months: list[str], k: int) -> dict[str, Any]:
    total = sum(counts[m] for m in months)
    return {
        "total": fewer_than(total, k),
        "by_month": cells({m: counts[m] for m in months}, k),
    }


def _file_rows(path: Path) -> int:
    return int(pq.read_metadata(path).num_rows)


def _stored_reads(door: Door) -> Counter[str]:
    """Reads stored by month, from the files' own row counts (no data page is read)."""
    store, by_month = door.store, Counter[str]()
    for day, files in store.iter_files("reads"):
        for _attempt in range(3):  # a compaction may swap the files between listing and reading
            try:
                by_month[_month(day)] += sum(_file_rows(path) for path in files)
                break
            except FileNotFoundError:
                files = store.files("reads", day)
    return by_month


def _cameras(door: Door, now: datetime) -> int:
    frame = door.store.scan_reads(now - timedelta(days=CAMERA_DAYS), now)
    return int(frame.select(pl.col("camera_id").n_unique()).collect().item())


def _alerts(door: Door, start: datetime, covert_names: set[str]) -> Counter[str]:
    frame = (
        door.store.scan_alerts(start)
        .filter(
            ~pl.col("covert").fill_null(False)
            & pl.col("sighting_of").is_null()
            & ~pl.col("hotlist").is_in(sorted(covert_names))
        )
        .group_by(pl.col("ts").dt.strftime("%Y-%m").alias("month"))
        .len()
        .collect()
    )
    return Counter(dict(zip(frame["month"], frame["len"], strict=True)))


def _hotlists(door: Door, k: int) -> tuple[dict[str, Any], set[str]]:
    lists = records.list_hotlists(door.engine)
    covert = {h.name for h in lists if h.covert}
    by_category: dict[str, list[int]] = {}
    for h in lists:
        if not h.covert:
            counts = by_category.setdefault(h.category, [0, 0])
            counts[0] += 1
            counts[1] += h.entries
    rows = [
        {"category": category, "lists": fewer_than(n, k), "entries": fewer_than(entries, k)}
        for category, (n, entries) in sorted(by_category.items())
    ]
    return {"by_category": rows, "not_shown": {"lists": fewer_than(len(covert), k)}}, covert


def _searches(door: Door, months: list[str], k: int) -> dict[str, Any]:
    found = records.search_counts(
        door.engine, SEARCH_KINDS, int(_month_start(months[0]).timestamp() * 1000)
    )
    allowed = [s for s in found if s.outcome == "allowed"]
    by_month = Counter[str]()
    why, kinds = Counter[str](), Counter[str]()
    for s in allowed:
        by_month[_day_month(s.day)] += s.count
        why[s.justification] += s.count
        kinds[SEARCH_KINDS[s.action]] += s.count
    return {
        **_series(by_month, months, k),
        "by_justification": cells({j: why[j] for j in JUSTIFICATIONS}, k),
        "by_kind": cells({kind: kinds[kind] for kind in SEARCH_KINDS.values()}, k),
        "refused": fewer_than(sum(s.count for s in found if s.outcome == "refused"), k),
    }


def disposition_months(
    door: Door, start: datetime, covert_names: set[str]
) -> dict[tuple[str, str], int]:
    """Dispositions by (month, outcome): the page's one read of dispositions."""
    out: Counter[tuple[str, str]] = Counter()
    start_ms = int(start.timestamp() * 1000)
    for day, outcome, n in records.disposition_counts(
        door.engine, start_ms, hidden_hotlists=covert_names
    ):
        out[(_day_month(day), outcome)] += n
    return out


def _dispositions(door: Door, months: list[str], covert: set[str], k: int) -> dict[str, Any]:
    counts = disposition_months(door, _month_start(months[0]), covert)
    outcomes = sorted({outcome for _, outcome in counts})
    return {
        "outcomes": outcomes,
        "by_month": {m: {o: fewer_than(counts[(m, o)], k) for o in outcomes} for m in months},
    }


def _policy(door: Door, today: date) -> dict[str, Any]:
    versions = records.list_policies(door.engine)
    history: list[dict[str, Any]] = [
        {
            "version": p.version,
            "title": p.title,
            "media_type": p.media_type,
            "effective_on": p.effective_on.isoformat(),
            "published_on": records.iso_utc(p.published_at_ms)[:10],
            "sha256": p.sha256,
            "bytes": p.size,
            "url": f"/transparency/policy/{p.version}",
        }
        for p in versions
    ]
    in_force = [h for h, p in zip(history, versions, strict=True) if p.effective_on <= today]
    current = dict(in_force[-1]) if in_force else None
    if current is not None and current["media_type"] == "text/markdown":
        content = records.policy_document(door.engine, current["version"]).content or b""
        current["text"] = content.decode("utf-8")
    upcoming = [h for h, p in zip(history, versions, strict=True) if p.effective_on > today]
    return {"current": current, "upcoming": upcoming, "history": history}


def _designees(door: Door) -> dict[str, Any]:
    def shown(d: records.Designee) -> dict[str, str]:
        return {
            "role": d.role,
            "role_title": d.role_title,
            "title": d.title,
            "name": d.name,
            "since": d.since.isoformat(),
        }

    current = records.current_designees(door.engine)
    return {
        "current": {role: shown(d) if d else None for role, d in current.items()},
        "history": [shown(d) for d in records.list_designees(door.engine)],
    }


def _audits(door: Door) -> dict[str, Any]:
    report = records.last_audit_event(door.engine, Acts.AUDIT_REPORT.action)
    check = records.last_audit_event(door.engine, Acts.AUDIT_VERIFY.action)
    return {
        "last_report_on": records.iso_utc(report[0])[:10] if report else None,
        "last_report_chain_verified": report[1].get("chain_ok") if report else None,
        "last_verification_on": records.iso_utc(check[0])[:10] if check else None,
        "chain_verified": check[1].get("ok") if check else None,
    }


def transparency(door: Door, *, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the public page as JSON-ready data (see the module's rules)."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    k = door.config.transparency_min_cell
    months = _last_months(moment, MONTHS_SHOWN)
    hotlists, covert = _hotlists(door, k)
    stored = _stored_reads(door)
    releases = records.release_totals(door.engine)
    purges = records.purge_totals(door.engine)
    return {
        "generated_at": moment.isoformat(timespec="seconds"),
        "min_cell": k,
        "months": months,
        "policy": _policy(door, moment.date()),
        "designees": _designees(door),
        "retention_days": door.config.retention_days,
        "reads": {
            "total": fewer_than(sum(stored.values()), k),
            "by_month": cells({m: stored[m] for m in sorted(stored)}, k),
        },
        "cameras_reporting_30d": fewer_than(_cameras(door, moment), k),
        "hotlists": hotlists,
        "alerts": _series(_alerts(door, _month_start(months[0]), covert), months, k),
        "dispositions": _dispositions(door, months, covert, k),
        "searches": _searches(door, months, k),
        "releases": cells(
            {
                "requested": releases.requested,
                "approved": releases.approved,
                "denied": releases.denied,
                "fulfilled": releases.fulfilled,
            },
            k,
            total_shown=False,
        ),
        "legal_holds_open": fewer_than(len(door.store.holds()), k),
        "purges": {
            "partitions": fewer_than(purges.partitions, k),
            "reads": fewer_than(purges.reads, k),
            "last_on": records.iso_utc(purges.last_ms)[:10] if purges.last_ms else None,
        },
        "audit": _audits(door),
        "notes": dict(NOTES),
    }


# -- the cache ----------------------------------------------------------------------------------


class TransparencyCache:
    """One computed page, recomputed at most once per ``refresh_s`` seconds.

    The first caller after expiry recomputes under a lock while the others are answered with
    the page already held (only the very first callers, before any page exists, wait for it),
    so however many anonymous requests arrive, the figures are computed once per interval.
    A failed computation keeps the old page; with none yet it raises :class:`Unavailable`.
    """

    def __init__(
        self,
        door: Door,
        refresh_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.door = door
        self.refresh_s = refresh_s
        self.computations = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._page: dict[str, Any] | None = None
        self._at = 0.0
        self._failed_at: float | None = None
        self._documents: dict[int, records.PolicyDocument] = {}
        self._rendered: tuple[dict[str, Any], bytes, str] | None = None

    def _fresh(self) -> bool:
        if self._page is None:
            # after a failure with nothing to serve, wait a little before trying again
            failed = self._failed_at
            return failed is not None and self._clock() - failed < min(self.refresh_s, 30.0)
        return self._clock() - self._at < self.refresh_s

    def get(self) -> dict[str, Any]:
        page = self._page
        if self._fresh():
            if page is None:
                raise Unavailable("the transparency figures cannot be computed now; retry later")
            return page
        if not self._lock.acquire(blocking=page is None):
            return page  # type: ignore[return-value]  # someone is recomputing: serve the last
        try:
            if not self._fresh():
                self._compute()
        finally:
            self._lock.release()
        if self._page is None:
            raise Unavailable("the transparency figures cannot be computed now; retry later")
        return self._page

    def rendered(self) -> tuple[bytes, str]:
        """The page as JSON bytes and as HTML, rendered once per computation (rendering on
        every request would let a caller spend the server's time at will)."""
        page = self.get()
        held = self._rendered
        if held is None or held[0] is not page:
            held = (page, orjson.dumps(page), render_transparency_html(page))
            self._rendered = held
        return held[1], held[2]

    def policy(self, version: int) -> records.PolicyDocument:
        """A version listed on the page, with its bytes; read once, since a published version
        never changes (its row is append-only). Raises :class:`NotFound`."""
        found = self._documents.get(version)
        if found is not None:
            return found
        listed = {p["version"] for p in self.get()["policy"]["history"]}
        if version not in listed:
            raise NotFound(f"no policy version {version} is published", "version")
        with self._lock:
            found = self._documents.setdefault(version, policy_file(self.door, version))
        return found

    def _compute(self) -> None:
        try:
            page = transparency(self.door)
        except Exception:  # any failure (database, files) keeps the page already published
            log.exception("computing the transparency page failed")
            self._failed_at = self._clock()
            if self._page is not None:
                self._at = self._clock()  # retry after an interval, not on every request
            return
        self.computations += 1
        page["recomputed_every_s"] = self.refresh_s
        self._page, self._at = page, self._clock()
