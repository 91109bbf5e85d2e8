"""Legal holds (policy 427.4: data that has become evidence is not purged).

A legal hold ties a case number to reads: their rows are copied to
``{data_dir}/holds/case={case}/reads.parquet`` (with their alerts in ``alerts.parquet`` and the
hold record in ``hold.json``), and the hold is noted in the sidecars of every date it touches.
The copy is the evidence, independent of later compaction or purges: a held day is purged
like any other when its retention ends (427.4), only the held rows live on. Releasing a hold
removes the copy and the sidecar marks (history stays).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import polars as pl

from sinks._errors import SinksConflictError, SinksNotFoundError, SinksValueError
from sinks._files import atomic_file, atomic_write_bytes, locked, read_json
from sinks._layout import date_dir
from sinks._retention import _KINDS, _lock, _write_sidecar
from sinks._scan import as_utc, scan_files
from sinks._schema import ALERTS_SCHEMA, READS_SCHEMA

if TYPE_CHECKING:
    from sinks._pages import Pages
    from sinks._store import ReadStore

__all__ = [
    "HOLDS_DIR",
    "LegalHold",
    "hold_dir",
    "list_holds",
    "load_hold",
    "place_hold",
    "release_hold",
]

log = logging.getLogger(__name__)

HOLDS_DIR = "holds"


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


# -- legal holds --------------------------------------------------------------------------


def hold_dir(store: ReadStore, case_number: str) -> Path:
    """``holds/case={case}``; the case number is percent-encoded to be a safe file name."""
    _check_case(case_number)
    return store.data_dir / HOLDS_DIR / f"case={quote(case_number, safe='')}"


def _check_case(case_number: str) -> None:
    if not case_number or not case_number.strip() or len(case_number) > 100:
        msg = f"case number {case_number!r} is empty or too long; give the case or event number"
        raise SinksValueError(msg, "case_number")


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
    from sinks._pages import Pages

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
            raise SinksNotFoundError(msg, "read_ids")
        query = {"search": "read_ids", "read_ids": ids}
    absent = [name for name in READS_SCHEMA if name not in frame.columns]
    if absent:
        msg = f"the reads to hold lack columns {absent}; pass a search result or read ids"
        raise SinksValueError(msg, "reads")
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
    Raises :class:`SinksNotFoundError` when there is nothing to hold and
    :class:`SinksConflictError` when the case's hold was released."""
    at = as_utc(at, "at")
    earlier = load_hold(store, case_number)
    if earlier is not None and not earlier.active:
        msg = f"case {case_number}: the hold was released; use a new case or event number"
        raise SinksConflictError(msg, "case_number")
    frame, found_query = _held_frame(store, reads, start, end)
    if frame.height == 0:
        msg = f"case {case_number}: the query found no reads to hold"
        raise SinksNotFoundError(msg, "case_number")
    directory = hold_dir(store, case_number)
    added = frame.height
    with locked(_lock(store)):
        previous = load_hold(store, case_number)
        if previous is not None and not previous.active:
            msg = f"case {case_number}: the hold was released; use a new case or event number"
            raise SinksConflictError(msg, "case_number")
        reads_path = directory / "reads.parquet"
        if reads_path.exists():
            frame = pl.concat([pl.read_parquet(reads_path), frame])
        frame = frame.unique("read_id", keep="first", maintain_order=True).sort("ts", "read_id")
        day_counts = frame.group_by(pl.col("ts").dt.date().alias("day")).len().iter_rows()
        counts = {day: int(n) for day, n in day_counts}
        days = sorted({*counts, *(previous.days if previous else ())})
        # 1. note the hold on the partitions (history; a purge names it in its record).
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
    files = [path for day in days for path in store.files("alerts", day)]
    existing = [p for p in files if p.exists()]
    return (
        scan_files(existing, ALERTS_SCHEMA)
        .filter(pl.col("read_id").is_in(read_ids.implode()))
        .sort("ts", "alert_id")
        .collect()
    )


def _write_parquet(path: Path, frame: pl.DataFrame, fsync: bool) -> None:
    with atomic_file(path, fsync=fsync) as handle:
        frame.write_parquet(handle, compression="zstd", statistics=True)


def release_hold(
    store: ReadStore, case_number: str, *, by: str, at: datetime, reason: str
) -> LegalHold:
    """Release the hold of ``case_number``: its partitions return to normal retention and the
    held copy is deleted; ``hold.json`` keeps the history (who released, when, why)."""
    at = as_utc(at, "at")
    if not reason.strip():
        msg = f"case {case_number}: releasing a hold needs a reason (e.g. case closed, court order)"
        raise SinksValueError(msg, "reason")
    directory = hold_dir(store, case_number)
    with locked(_lock(store)):
        hold = load_hold(store, case_number)
        if hold is None or not hold.active:
            msg = f"case {case_number} has no active legal hold to release"
            raise SinksConflictError(msg, "case_number")
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
