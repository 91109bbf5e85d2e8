"""Evidence export (policy 427.4: evidence goes to portable media) and its verification.

``export_evidence`` writes a self-contained directory for one case::

    reads.parquet   reads.csv      the held reads (CSV: times in RFC 3339, candidates as JSON)
    alerts.parquet  alerts.csv     the alerts raised by those reads
    hold.json                      the legal hold: every placement with its query, who, when
    manifest.json                  case, who exported, when, purpose, the queries, counts, and
                                   the size and SHA-256 of every file above
    chain_of_custody.jsonl         one record per custody event, each hashing the previous
                                   one; the first (``exported``) holds the manifest's SHA-256

``verify_evidence`` recomputes everything: a changed, missing or extra byte anywhere (data,
manifest or custody chain) fails verification with the file named.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl
import pyarrow.parquet as pq

from plateflow.csvcells import FORMULA_STARTS
from sinks._errors import EvidenceError, SinksConflictError
from sinks._files import open_private, private_dir
from sinks._holds import hold_dir, load_hold
from sinks._schema import ALERTS_SCHEMA, READS_SCHEMA

if TYPE_CHECKING:
    from sinks._store import ReadStore

__all__ = [
    "EVIDENCE_FORMAT",
    "csv_safe",
    "export_evidence",
    "is_export_file_name",
    "record_custody",
    "verify_evidence",
]

log = logging.getLogger(__name__)

EVIDENCE_FORMAT = "plateflow-evidence/1"
MANIFEST = "manifest.json"
CUSTODY = "chain_of_custody.jsonl"
_DATA_FILES = ("reads.parquet", "reads.csv", "alerts.parquet", "alerts.csv", "hold.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_hash(record: Mapping[str, Any]) -> str:
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _write(path: Path, data: bytes) -> None:
    with open_private(path, "xb") as handle:  # never overwrite evidence
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell that starts like a spreadsheet formula prefixed with
    ``'`` (:func:`plateflow.csvcells.safe_cell`, for whole columns): apply it to every frame
    written as CSV."""
    starts = "".join(re.escape(c) for c in FORMULA_STARTS)
    pattern = f"^[{starts}]"
    columns = [
        pl.when(pl.col(name).str.contains(pattern))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    ]
    return frame.with_columns(columns) if columns else frame


def _csv(frame: pl.DataFrame) -> bytes:
    converted = frame.with_columns(
        [
            pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            for name, dtype in frame.schema.items()
            if isinstance(dtype, pl.Datetime)
        ]
    )
    if "candidates" in converted.columns:
        converted = converted.with_columns(
            candidates=pl.format(
                "[{}]",
                pl.col("candidates").list.eval(pl.element().struct.json_encode()).list.join(","),
            )
        )
    return csv_safe(converted).write_csv().encode()


def export_evidence(
    store: ReadStore,
    case_number: str,
    out_dir: Path,
    by: str,
    *,
    at: datetime | None = None,
    purpose: str = "",
    release: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the held reads of ``case_number`` to ``out_dir`` (new or empty) and return the
    manifest. ``release``: the approved release request it fulfils (agency, requester,
    purpose, approver), copied into the manifest. Raises :class:`SinksConflictError` when the
    case has no active hold or ``out_dir`` holds files."""
    moment = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    hold = load_hold(store, case_number)
    if hold is None or not hold.active:
        msg = f"case {case_number} has no active legal hold; place a hold before exporting"
        raise SinksConflictError(msg, "case_number")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        msg = f"evidence directory {out} is not empty; export to a new directory"
        raise SinksConflictError(msg, "out")
    private_dir(out)
    source = hold_dir(store, case_number)
    reads = pl.read_parquet(source / "reads.parquet").cast(READS_SCHEMA)  # type: ignore[arg-type]
    alerts_file = source / "alerts.parquet"
    alerts = (
        pl.read_parquet(alerts_file).cast(ALERTS_SCHEMA)  # type: ignore[arg-type]
        if alerts_file.exists()
        else pl.DataFrame(schema=ALERTS_SCHEMA)
    )
    for name, frame in (("reads", reads), ("alerts", alerts)):
        with open_private(out / f"{name}.parquet", "xb") as handle:
            frame.write_parquet(handle, compression="zstd", statistics=True)
            handle.flush()
            os.fsync(handle.fileno())
        _write(out / f"{name}.csv", _csv(frame))
    _write(out / "hold.json", orjson.dumps(hold.to_dict(), option=orjson.OPT_INDENT_2))
    files = []
    for name in _DATA_FILES:
        path = out / name
        entry: dict[str, Any] = {
            "name": name,
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
        }
        if name.endswith(".parquet"):
            entry["rows"] = pq.read_metadata(path).num_rows
        files.append(entry)
    manifest = {
        "format": EVIDENCE_FORMAT,
        "case_number": case_number,
        "exported_by": by,
        "exported_at": moment.isoformat(),
        "purpose": purpose,
        "release": dict(release) if release is not None else None,
        "queries": [placement.get("query") for placement in hold.placements],
        "hold": {"placements": list(hold.placements), "days": [d.isoformat() for d in hold.days]},
        "counts": {"reads": reads.height, "alerts": alerts.height},
        "files": files,
        "hash_algorithm": "sha256",
    }
    _write(out / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    record_custody(
        out,
        "exported",
        by,
        at=moment,
        note=f"exported {reads.height} reads and {alerts.height} alerts of case {case_number}",
    )
    log.warning("evidence of case %s exported to %s by %s", case_number, out, by)
    return manifest


def record_custody(
    evidence_dir: Path, action: str, by: str, *, at: datetime | None = None, note: str = ""
) -> dict[str, Any]:
    """Append a custody event (``exported``, ``copied to media``, ``booked``, ``transferred``
    ...) to the chain; each record carries the SHA-256 of the previous one and of the
    manifest. Returns the record."""
    directory = Path(evidence_dir)
    manifest_hash = _sha256(directory / MANIFEST)
    chain_path = directory / CUSTODY
    previous = _read_chain(chain_path) if chain_path.exists() else []
    record: dict[str, Any] = {
        "seq": len(previous) + 1,
        "action": action,
        "by": by,
        "at": (at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(),
        "note": note,
        "manifest_sha256": manifest_hash,
        "prev": previous[-1]["hash"] if previous else None,
    }
    record["hash"] = _record_hash(record)
    with open_private(chain_path, "ab") as handle:
        handle.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return record


def _read_chain(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        msg = f"{path.name} does not end with a newline: the custody chain was altered"
        raise EvidenceError(msg)
    records = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            msg = f"{path.name} line {number} is not valid JSON: the custody chain was altered"
            raise EvidenceError(msg) from error
        # Records are written canonically; any other byte (even whitespace) is a change.
        if (
            not isinstance(record, dict)
            or orjson.dumps(record, option=orjson.OPT_SORT_KEYS) != line
        ):
            msg = f"{path.name} line {number} is not as written: the custody chain was altered"
            raise EvidenceError(msg)
        records.append(record)
    return records


def is_export_file_name(name: str) -> bool:
    """Whether ``name`` is a plain file name inside an export (no separator, no ``..``, not
    hidden, not empty): the only names a manifest may list and a download may serve."""
    return (
        bool(name)
        and name not in (".", "..")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and Path(name).name == name
    )


def verify_evidence(evidence_dir: Path) -> dict[str, Any]:
    """Check an evidence directory: every file's size and SHA-256 against the manifest, no
    missing or extra file, the custody chain intact and bound to this manifest, and row counts
    read back with pyarrow. Returns a summary; raises :class:`EvidenceError` naming every
    problem found."""
    directory = Path(evidence_dir)
    problems: list[str] = []
    manifest_path = directory / MANIFEST
    chain_path = directory / CUSTODY
    if not manifest_path.exists() or not chain_path.exists():
        msg = f"{directory} is not an evidence export: {MANIFEST} or {CUSTODY} is missing"
        raise EvidenceError(msg)
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
    except orjson.JSONDecodeError as error:
        msg = f"{directory / MANIFEST} is not valid JSON: the manifest was altered"
        raise EvidenceError(msg) from error
    listed = {str(entry.get("name")): entry for entry in manifest.get("files", [])}
    outside = sorted(name for name in listed if not is_export_file_name(name))
    if outside:
        # Never opened: a name with a separator or ``..`` points outside the export.
        msg = (
            f"evidence {directory} failed verification: the manifest names files outside the "
            f"export directory ({', '.join(map(repr, outside[:5]))}): the manifest was altered"
        )
        raise EvidenceError(msg)
    present = {path.name for path in directory.iterdir()} - {MANIFEST, CUSTODY}
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: not in the manifest (added after export)")
    for name, entry in sorted(listed.items()):
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
            continue
        if path.stat().st_size != entry["bytes"]:
            problems.append(f"{name}: {path.stat().st_size} bytes, manifest says {entry['bytes']}")
        if _sha256(path) != entry["sha256"]:
            problems.append(f"{name}: SHA-256 differs from the manifest (file altered)")
        elif "rows" in entry and pq.read_metadata(path).num_rows != entry["rows"]:
            problems.append(f"{name}: row count differs from the manifest")
    manifest_hash = _sha256(manifest_path)
    chain: list[dict[str, Any]] = []
    try:
        chain = _read_chain(chain_path)
    except EvidenceError as error:
        problems.append(str(error))
    previous_hash: str | None = None
    for index, record in enumerate(chain, start=1):
        if record.get("seq") != index:
            problems.append(f"{CUSTODY} record {index}: sequence number {record.get('seq')}")
        if record.get("prev") != previous_hash:
            problems.append(f"{CUSTODY} record {index}: does not follow the previous record")
        if _record_hash(record) != record.get("hash"):
            problems.append(f"{CUSTODY} record {index}: hash mismatch (record altered)")
        if record.get("manifest_sha256") != manifest_hash:
            problems.append(
                f"{CUSTODY} record {index}: manifest SHA-256 mismatch (manifest altered)"
            )
        previous_hash = record.get("hash")
    if not chain:
        problems.append(f"{CUSTODY}: no custody record")
    elif chain[0].get("action") != "exported":
        problems.append(f"{CUSTODY}: the first record is not the export")
    if problems:
        msg = f"evidence {directory} failed verification: " + "; ".join(problems)
        raise EvidenceError(msg)
    return {
        "case_number": manifest["case_number"],
        "files": len(listed),
        "reads": manifest["counts"]["reads"],
        "alerts": manifest["counts"]["alerts"],
        "custody_records": len(chain),
        "manifest_sha256": manifest_hash,
    }
