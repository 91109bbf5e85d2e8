"""Retention (policy 427.4): the purge of expired date partitions.

A date partition may be purged the day after its retain-until (its date plus the retention
period; the later of the sidecar's value and the current setting, so raising the retention
protects data already written). A legal hold does not keep a partition: the held rows (and
their alerts) were copied under ``holds/case=…/`` when the hold was placed, and that copy is the
evidence, so a purge removes the rest of the day and its record names the holds whose rows
live on in their copies (427.4: nothing kept past retention but the evidence).

Purge is crash-safe: under the store lock the partition's sidecar is checked for holds, a
``_purge.json`` record is written into the directory and the directory is renamed to a
``date=YYYY-MM-DD.purging`` tombstone (scans ignore it from that instant); then the record is
appended to ``{data_dir}/_purges.jsonl`` and the tombstone deleted. A run interrupted anywhere
leaves either the whole partition or a tombstone, and the next run finishes the tombstone.

Legal holds (:mod:`sinks._holds`) are read from the sidecars for the purge record only.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow.parquet as pq

from sinks._compact import PLATE_INDEX_SUFFIX
from sinks._files import atomic_write_bytes, fsync_dir, locked, open_private, read_json
from sinks._layout import date_dir, retain_until
from sinks._scan import as_utc

if TYPE_CHECKING:
    from sinks._store import ReadStore

__all__ = ["PURGE_LOG", "PurgeRecord", "finish_tombstones", "purge", "purge_log"]

log = logging.getLogger(__name__)

PURGE_LOG = "_purges.jsonl"
LOCK_NAME = ".retention.lock"
_TOMBSTONE = ".purging"
_PURGE_RECORD = "_purge.json"
#: Files whose bytes a purge reports: data files and the plate indexes beside them.
_DATA_SUFFIXES = (".parquet", PLATE_INDEX_SUFFIX)
_KINDS = ("reads", "alerts")


@dataclass(frozen=True)
class PurgeRecord:
    """One date partition considered by :func:`purge`. ``action``: ``purged`` or
    ``would_purge`` (dry run); ``holds``: the cases whose held copies keep rows of that day."""

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
    UTC date, held or not (a hold's rows live on in its copy); first finish any purge a crash
    left half done. Returns one record per partition purged or to purge (``dry_run``)."""
    now = as_utc(now, "now")
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
        files = [path for path in directory.iterdir() if path.suffix in _DATA_SUFFIXES]
        live = store.files(kind, day)
        rows = sum(pq.read_metadata(path).num_rows for path in live)
        size = sum(path.stat().st_size for path in files)
        holds = _active_holds(store, day)
        action = "would_purge" if dry_run else "purged"
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
            return record
        atomic_write_bytes(directory / _PURGE_RECORD, orjson.dumps(record.to_dict()))
        if tombstone.exists():  # an older tombstone of the same date: finish it first
            shutil.rmtree(tombstone)
        os.rename(directory, tombstone)  # the partition disappears for readers here
        fsync_dir(directory.parent)
    _finish(store, tombstone)
    log.warning(
        "purged %s %s: %d rows in %d files (retained until %s) by %s; held copies: %s",
        kind,
        day,
        rows,
        len(live),
        until,
        by,
        ", ".join(holds) or "none",
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
            with open_private(store.data_dir / PURGE_LOG, "ab") as handle:
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
