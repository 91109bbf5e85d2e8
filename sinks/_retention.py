"""Retention (policy 427.4): purge of expired date partitions, and legal holds.

A date partition may be purged the day after its retain-until (its date plus the retention
period; the later of the sidecar's value and the current setting, so raising the retention
protects data already written). A partition with an active legal hold is never purged.

Purge is crash-safe: under the store lock the partition's sidecar is checked for holds, a
``_purge.json`` record is written into the directory and the directory is renamed to a
``date=YYYY-MM-DD.purging`` tombstone (scans ignore it from that instant); then the record is
appended to ``{data_dir}/_purges.jsonl`` and the tombstone deleted. A run interrupted anywhere
leaves either the whole partition or a tombstone, and the next run finishes the tombstone.

A legal hold ties a case number to reads: their rows are copied to
``{data_dir}/holds/case={case}/reads.parquet`` (with their alerts in ``alerts.parquet`` and the
hold record in ``hold.json``), and the hold is written into the sidecars of every date it
touches, so those partitions are kept too. The copy makes the evidence independent of later
compaction or purges; releasing a hold removes the copy and the sidecar marks (history stays).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import polars as pl
import pyarrow.parquet as pq

from sinks._errors import SinksError
from sinks._files import atomic_write_bytes, fsync_dir, locked, read_json
from sinks._layout import date_dir, retain_until
from sinks._schema import ALERTS_SCHEMA, READS_SCHEMA

if TYPE_CHECKING:
    from sinks._search import Pages
    from sinks._store import ReadStore

__all__ = [
    "HOLDS_DIR",
    "PURGE_LOG",
    "LegalHold",
    "PurgeRecord",
    "hold_dir",
    "list_holds",
    "load_hold",
    "place_hold",
    "purge",
    "release_hold",
]

log = logging.getLogger(__name__)

HOLDS_DIR = "holds"
PURGE_LOG = "_purges.jsonl"
LOCK_NAME = ".retention.lock"
_TOMBSTONE = ".purging"
_PURGE_RECORD = "_purge.json"
_KINDS = ("reads", "alerts")


@dataclass(frozen=True)
class PurgeRecord:
    """One date partition considered by :func:`purge`. ``action``: ``purged``,
    ``would_purge`` (dry run) or ``held`` (expired but under a legal hold: kept)."""

    purge_id: str
    kind: str
    day: date
    action: str
    rows: int
    files: int
    bytes: int
    retain_until: date
    holds: tuple[str, ...]
    at: datetime
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "purge_id": self.purge_id,
            "kind": self.kind,
            "date": self.day.isoformat(),
            "action": self.action,
            "rows": self.rows,
            "files": self.files,
            "bytes": self.bytes,
            "retain_until": self.retain_until.isoformat(),
            "holds": list(self.holds),
            "at": self.at.isoformat(),
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PurgeRecord:
        return cls(
            purge_id=data["purge_id"],
            kind=data["kind"],
            day=date.fromisoformat(data["date"]),
            action=data["action"],
            rows=int(data["rows"]),
            files=int(data["files"]),
            bytes=int(data["bytes"]),
            retain_until=date.fromisoformat(data["retain_until"]),
            holds=tuple(data.get("holds", ())),
            at=datetime.fromisoformat(data["at"]),
            by=data["by"],
        )


@dataclass(frozen=True)
class LegalHold:
    """A legal hold as recorded in ``holds/case=…/hold.json``."""

    case_number: str
    placements: tuple[dict[str, Any], ...]  # each: by, at, reason, query, reads
    reads: int
    alerts: int
    days: tuple[date, ...]
    released: dict[str, Any] | None

    @property
    def active(self) -> bool:
        return self.released is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_number": self.case_number,
            "placements": list(self.placements),
            "reads": self.reads,
            "alerts": self.alerts,
            "days": [day.isoformat() for day in self.days],
            "released": self.released,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LegalHold:
        return cls(
            case_number=data["case_number"],
            placements=tuple(data["placements"]),
            reads=int(data["reads"]),
            alerts=int(data["alerts"]),
            days=tuple(date.fromisoformat(day) for day in data["days"]),
            released=data.get("released"),
        )


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        msg = f"{name} has no time zone; pass an aware datetime (UTC)"
        raise SinksError(msg)
    return moment.astimezone(timezone.utc)


def _lock(store: ReadStore) -> Path:
    return store.data_dir / LOCK_NAME


def _write_sidecar(store: ReadStore, kind: str, day: date, content: dict[str, Any]) -> None:
    atomic_write_bytes(
        store.sidecar_path(kind, day),
        orjson.dumps(content, option=orjson.OPT_INDENT_2),
        fsync=store.fsync,
    )


# -- purge --------------------------------------------------------------------------------


def purge(
    store: ReadStore, now: datetime, dry_run: bool = False, by: str = "system"
) -> list[PurgeRecord]:
    """Delete every date partition (reads and alerts) whose retain-until is before ``now``'s
    UTC date and that carries no active legal hold; first finish any purge a crash left half
    done. Returns one record per partition purged, to purge (``dry_run``) or kept for a hold."""
    now = _utc(now, "now")
    records: list[PurgeRecord] = []
    if not dry_run:
        records.extend(finish_tombstones(store))
    for kind in _KINDS:
        for day in store.days(kind):
            record = _purge_one(store, kind, day, now, dry_run, by)
            if record is not None:
                records.append(record)
    return records


def _effective_until(store: ReadStore, sidecar: dict[str, Any], day: date) -> date:
    configured = retain_until(day, store.retention_days)
    recorded = date.fromisoformat(sidecar.get("retain_until", configured.isoformat()))
    return max(configured, recorded)


def _active_holds(store: ReadStore, day: date) -> tuple[str, ...]:
    cases: set[str] = set()
    for kind in _KINDS:
        for hold in store.sidecar(kind, day).get("legal_holds", []):
            cases.add(hold["case_number"])
    return tuple(sorted(cases))


def _purge_one(
    store: ReadStore, kind: str, day: date, now: datetime, dry_run: bool, by: str
) -> PurgeRecord | None:
    directory = date_dir(store.data_dir, kind, day)
    tombstone = directory.with_name(directory.name + _TOMBSTONE)
    with locked(_lock(store)):
        if not directory.is_dir():
            return None
        sidecar = store.sidecar(kind, day)
        until = _effective_until(store, sidecar, day)
        if now.date() <= until:
            return None
        files = [path for path in directory.iterdir() if path.suffix == ".parquet"]
        live = store.files(kind, day)
        rows = sum(pq.read_metadata(path).num_rows for path in live)
        size = sum(path.stat().st_size for path in files)
        holds = _active_holds(store, day)
        action = "held" if holds else ("would_purge" if dry_run else "purged")
        record = PurgeRecord(
            purge_id=uuid.uuid4().hex,
            kind=kind,
            day=day,
            action=action,
            rows=rows,
            files=len(live),
            bytes=size,
            retain_until=until,
            holds=holds,
            at=now,
            by=by,
        )
        if action != "purged":
            if holds:
                log.info("%s %s expired on %s but is held by %s: kept", kind, day, until, holds)
            return record
        atomic_write_bytes(directory / _PURGE_RECORD, orjson.dumps(record.to_dict()))
        if tombstone.exists():  # an older tombstone of the same date: finish it first
            shutil.rmtree(tombstone)
        os.rename(directory, tombstone)  # the partition disappears for readers here
        fsync_dir(directory.parent)
    _finish(store, tombstone)
    log.warning(
        "purged %s %s: %d rows in %d files (retained until %s) by %s",
        kind,
        day,
        rows,
        len(live),
        until,
        by,
    )
    return record


def finish_tombstones(store: ReadStore) -> list[PurgeRecord]:
    """Finish purges a crash interrupted (``.purging`` tombstones); returns their records."""
    finished: list[PurgeRecord] = []
    for kind in _KINDS:
        root = store.data_dir / kind
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and entry.name.endswith(_TOMBSTONE):
                record = _finish(store, entry)
                if record is not None:
                    finished.append(record)
                log.warning("finished the interrupted purge of %s", entry)
    return finished


def _finish(store: ReadStore, tombstone: Path) -> PurgeRecord | None:
    record_path = tombstone / _PURGE_RECORD
    record: PurgeRecord | None = None
    if record_path.exists():
        record = PurgeRecord.from_dict(read_json(record_path))
        if record.purge_id not in _logged_ids(store):
            line = orjson.dumps(record.to_dict()) + b"\n"
            with open(store.data_dir / PURGE_LOG, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
    shutil.rmtree(tombstone, ignore_errors=True)
    fsync_dir(tombstone.parent)
    return record


def _logged_ids(store: ReadStore) -> set[str]:
    path = store.data_dir / PURGE_LOG
    if not path.exists():
        return set()
    found: set[str] = set()
    for line in path.read_bytes().splitlines():
        if line.strip():
            try:
                found.add(orjson.loads(line)["purge_id"])
            except (ValueError, KeyError):
                continue  # a torn last line from a crash: its record is re-appended
    return found


def purge_log(store: ReadStore) -> list[PurgeRecord]:
    """Every purge recorded in ``_purges.jsonl``, oldest first."""
    path = store.data_dir / PURGE_LOG
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(PurgeRecord.from_dict(orjson.loads(line)))
        except (ValueError, KeyError):
            continue
    return records


# -- legal holds --------------------------------------------------------------------------


def hold_dir(store: ReadStore, case_number: str) -> Path:
    """``holds/case={case}``; the case number is percent-encoded to be a safe file name."""
    _check_case(case_number)
    return store.data_dir / HOLDS_DIR / f"case={quote(case_number, safe='')}"


def _check_case(case_number: str) -> None:
    if not case_number or not case_number.strip() or len(case_number) > 100:
        msg = f"case number {case_number!r} is empty or too long; give the case or event number"
        raise SinksError(msg)


def load_hold(store: ReadStore, case_number: str) -> LegalHold | None:
    """The hold of a case, or None if the case never had one."""
    path = hold_dir(store, case_number) / "hold.json"
    if not path.exists():
        return None
    return LegalHold.from_dict(read_json(path))


def list_holds(store: ReadStore, include_released: bool = False) -> list[LegalHold]:
    """Every hold (active only unless ``include_released``), by case number."""
    root = store.data_dir / HOLDS_DIR
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        path = entry / "hold.json"
        if entry.name.startswith("case=") and path.exists():
            hold = LegalHold.from_dict(read_json(path))
            if include_released or hold.active:
                found.append(hold)
    return found


def _held_frame(
    store: ReadStore,
    reads: Pages | pl.DataFrame | pl.LazyFrame | Sequence[str],
    start: datetime | None,
    end: datetime | None,
) -> tuple[pl.DataFrame, dict[str, Any] | None]:
    from sinks._search import Pages

    if isinstance(reads, Pages):
        if reads.query.get("search") == "canvass":
            # Groups, not rows: hold the reads behind them, looked up in the canvass window.
            window_start = datetime.fromisoformat(reads.query["start"])
            window_end = datetime.fromisoformat(reads.query["end"])
            return _held_frame(store, reads.read_ids(), window_start, window_end)[0], reads.query
        frame, query = reads.collect(), reads.query
    elif isinstance(reads, pl.LazyFrame):
        frame, query = reads.collect(), None
    elif isinstance(reads, pl.DataFrame):
        frame, query = reads, None
    else:
        ids = sorted(set(reads))
        frame = store.scan_reads(start, end).filter(pl.col("read_id").is_in(ids)).collect()
        missing = len(ids) - frame["read_id"].n_unique()
        if missing:
            msg = (
                f"{missing} of {len(ids)} read ids are not in the store between {start} and "
                f"{end}; check the ids or widen the range"
            )
            raise SinksError(msg)
        query = {"search": "read_ids", "read_ids": ids}
    absent = [name for name in READS_SCHEMA if name not in frame.columns]
    if absent:
        msg = f"the reads to hold lack columns {absent}; pass a search result or read ids"
        raise SinksError(msg)
    return frame.select(list(READS_SCHEMA)).cast(READS_SCHEMA), query  # type: ignore[arg-type]


def place_hold(
    store: ReadStore,
    case_number: str,
    reads: Pages | pl.DataFrame | pl.LazyFrame | Sequence[str],
    *,
    by: str,
    at: datetime,
    query: dict[str, Any] | None = None,
    reason: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
) -> LegalHold:
    """Put ``reads`` (a search result, a frame of reads, or read ids searched between
    ``start`` and ``end``) under the legal hold of ``case_number``. Placing again adds reads.
    Raises :class:`SinksError` when there is nothing to hold."""
    at = _utc(at, "at")
    earlier = load_hold(store, case_number)
    if earlier is not None and not earlier.active:
        msg = f"case {case_number}: the hold was released; use a new case or event number"
        raise SinksError(msg)
    frame, found_query = _held_frame(store, reads, start, end)
    if frame.height == 0:
        msg = f"case {case_number}: the query found no reads to hold"
        raise SinksError(msg)
    directory = hold_dir(store, case_number)
    added = frame.height
    with locked(_lock(store)):
        previous = load_hold(store, case_number)
        if previous is not None and not previous.active:
            msg = f"case {case_number}: the hold was released; use a new case or event number"
            raise SinksError(msg)
        reads_path = directory / "reads.parquet"
        if reads_path.exists():
            frame = pl.concat([pl.read_parquet(reads_path), frame])
        frame = frame.unique("read_id", keep="first", maintain_order=True).sort("ts", "read_id")
        day_counts = frame.group_by(pl.col("ts").dt.date().alias("day")).len().iter_rows()
        counts = {day: int(n) for day, n in day_counts}
        days = sorted({*counts, *(previous.days if previous else ())})
        # 1. mark the partitions first: from here no purge can remove them.
        for day in days:
            for kind in _KINDS:
                if not date_dir(store.data_dir, kind, day).is_dir():
                    continue
                sidecar = store.sidecar(kind, day)
                before = next(
                    (h for h in sidecar["legal_holds"] if h["case_number"] == case_number), None
                )
                holds = [h for h in sidecar["legal_holds"] if h["case_number"] != case_number]
                holds.append(
                    {
                        "case_number": case_number,
                        "by": before["by"] if before else by,
                        "at": before["at"] if before else at.isoformat(),
                        "reads": counts.get(day, 0) if kind == "reads" else None,
                    }
                )
                sidecar["legal_holds"] = holds
                _write_sidecar(store, kind, day, sidecar)
        # 2. copy the rows (and their alerts) into the hold.
        alerts = _alerts_of(store, frame["read_id"], days)
        _write_parquet(reads_path, frame, store.fsync)
        _write_parquet(directory / "alerts.parquet", alerts, store.fsync)
        # 3. the hold record.
        placement = {
            "by": by,
            "at": at.isoformat(),
            "reason": reason,
            "query": query or found_query,
            "reads": added,
        }
        hold = LegalHold(
            case_number=case_number,
            placements=(*(previous.placements if previous else ()), placement),
            reads=frame.height,
            alerts=alerts.height,
            days=tuple(days),
            released=None,
        )
        atomic_write_bytes(
            directory / "hold.json",
            orjson.dumps(hold.to_dict(), option=orjson.OPT_INDENT_2),
            fsync=store.fsync,
        )
    log.warning("legal hold on case %s: %d reads by %s", case_number, hold.reads, by)
    return hold


def _alerts_of(store: ReadStore, read_ids: pl.Series, days: Sequence[date]) -> pl.DataFrame:
    from sinks._store import scan_files

    files = [path for day in days for path in store.files("alerts", day)]
    existing = [p for p in files if p.exists()]
    return (
        scan_files(existing, ALERTS_SCHEMA)
        .filter(pl.col("read_id").is_in(read_ids.implode()))
        .sort("ts", "alert_id")
        .collect()
    )


def _write_parquet(path: Path, frame: pl.DataFrame, fsync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as handle:
        frame.write_parquet(handle, compression="zstd", statistics=True)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temp, path)


def release_hold(
    store: ReadStore, case_number: str, *, by: str, at: datetime, reason: str
) -> LegalHold:
    """Release the hold of ``case_number``: its partitions return to normal retention and the
    held copy is deleted; ``hold.json`` keeps the history (who released, when, why)."""
    at = _utc(at, "at")
    if not reason.strip():
        msg = f"case {case_number}: releasing a hold needs a reason (e.g. case closed, court order)"
        raise SinksError(msg)
    directory = hold_dir(store, case_number)
    with locked(_lock(store)):
        hold = load_hold(store, case_number)
        if hold is None or not hold.active:
            msg = f"case {case_number} has no active legal hold to release"
            raise SinksError(msg)
        released = {"by": by, "at": at.isoformat(), "reason": reason}
        for day in hold.days:
            for kind in _KINDS:
                if not date_dir(store.data_dir, kind, day).is_dir():
                    continue
                sidecar = store.sidecar(kind, day)
                kept = [h for h in sidecar["legal_holds"] if h["case_number"] != case_number]
                if len(kept) != len(sidecar["legal_holds"]):
                    sidecar["legal_holds"] = kept
                    sidecar.setdefault("released_holds", []).append(
                        {"case_number": case_number, **released}
                    )
                    _write_sidecar(store, kind, day, sidecar)
        result = LegalHold(
            case_number=hold.case_number,
            placements=hold.placements,
            reads=hold.reads,
            alerts=hold.alerts,
            days=hold.days,
            released=released,
        )
        atomic_write_bytes(
            directory / "hold.json",
            orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2),
            fsync=store.fsync,
        )
        for name in ("reads.parquet", "alerts.parquet"):
            (directory / name).unlink(missing_ok=True)
    log.warning("legal hold on case %s released by %s: %s", case_number, by, reason)
    return result
