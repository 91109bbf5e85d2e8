"""Evidence as acts (427.4): export a case's held reads, verify an export, fetch its files,
add to its chain of custody.

An export writes a case's held reads with :meth:`sinks.ReadStore.export_evidence` into a
staging directory beside the target and renames it into place only once it is complete and
allowed, so a half-written or refused export never looks like evidence. The export id names
it in the audit log, the custody chain and, for a release, in :func:`records.fulfil_release`.

Covert-list alerts (427.6): the store's export copies every alert of the held reads. An export
by a role without ``hotlists:view_covert`` whose alerts include covert ones is refused, not
trimmed, because trimming would change what the legal hold preserved; so are fetching a file
of such an export and verifying it. Fetches and verifications record the exporter (from the
manifest) in their audit terms. Only plain file names the manifest lists are ever served.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

import records
from service._acts import Acts
from service._door import Act, Actor, Door
from service._errors import Conflict, Forbidden, Invalid, NotFound, from_sinks
from sinks import (
    SinksError,
    is_export_file_name,
    private_dir,
    record_custody,
    verify_evidence,
)

__all__ = [
    "EVIDENCE_DIR",
    "EvidenceCheck",
    "Export",
    "add_custody",
    "evidence_file",
    "export_dir",
    "export_evidence",
    "new_export_id",
    "run_export",
    "verify_export",
]

#: Exports made without a target directory go to ``{data_dir}/evidence/{export_id}``.
EVIDENCE_DIR = "evidence"
#: Written beside the listed files of every export.
FIXED_FILES = ("manifest.json", "chain_of_custody.jsonl")
_EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Export:
    """A finished export: its id, case, directory, manifest, and the names of its files."""

    export_id: str
    case_number: str
    directory: Path
    manifest: dict[str, Any]

    @property
    def files(self) -> list[str]:
        return [*(entry["name"] for entry in self.manifest["files"]), *FIXED_FILES]


@dataclass(frozen=True)
class EvidenceCheck:
    """The verification of an export: ``ok`` with the summary, or the problems found."""

    export_id: str | None
    ok: bool
    summary: dict[str, Any] | None
    problems: str | None


def new_export_id(case_number: str, at: datetime) -> str:
    """``{case}-{UTC time}-{8 hex}``: readable, unique, and a safe directory name."""
    case = _UNSAFE.sub("_", case_number).strip("._-")[:60] or "case"
    stamp = at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{case}-{stamp}-{uuid.uuid4().hex[:8]}"


def export_dir(data_dir: Path, export_id: str) -> Path:
    """Where export ``export_id`` is kept; refuses ids that are not plain names."""
    if not _EXPORT_ID.match(export_id) or ".." in export_id:
        raise NotFound(f"export id {export_id!r} is not one plateflow made", "export_id")
    return Path(data_dir) / EVIDENCE_DIR / export_id


def _covert_alerts(path: Path) -> int:
    if not path.exists():
        return 0
    table = pq.read_table(path, columns=["covert"])
    return int(sum(1 for flag in table.column("covert").to_pylist() if flag))


def run_export(
    door: Door,
    actor: Actor,
    access: records.AuditedAccess,
    case_number: str,
    *,
    out_dir: Path | None,
    purpose: str,
    release: Mapping[str, Any] | None = None,
    check: Callable[[Path], None] | None = None,
) -> Export:
    """The export itself, inside an audited act: the held reads of ``case_number`` to
    ``out_dir`` (new or empty; None: the evidence directory) under the actor's name and covert
    rights. ``check`` may refuse the staged export before it is put in place (a release
    checks what the request asked for). The audit record gets the export id and the count."""
    at = datetime.now(timezone.utc)
    export_id = new_export_id(case_number, at)
    access.terms["export_id"] = export_id
    out = Path(out_dir) if out_dir is not None else export_dir(door.config.data_dir, export_id)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} is not an empty directory; export to a new one", "out")
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.staging")
    if out_dir is None:
        private_dir(out.parent)  # {data_dir}/evidence: 0700 like the rest of the data
    else:
        out.parent.mkdir(parents=True, exist_ok=True)  # portable media: the operator's modes
    held = door.store.hold(case_number)
    if held is None or not held.active:
        msg = f"case {case_number} has no active legal hold; place a hold before exporting"
        raise Conflict(msg, "case_number")
    try:
        try:
            manifest = door.store.export_evidence(
                case_number, staging, actor.username, at=at, purpose=purpose, release=release
            )
        except SinksError as exc:  # the hold is checked above: a damaged hold copy is left
            raise from_sinks(exc, "case_number") from exc
        covert = _covert_alerts(staging / "alerts.parquet")
        if covert and not actor.covert.allowed:
            msg = (
                f"the held reads of case {case_number} raised {covert} covert-list alert(s); "
                "only a role with 'hotlists:view_covert' may export them (427.6)"
            )
            raise Forbidden(msg)
        if check is not None:
            check(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()  # empty, checked above
    os.rename(staging, out)
    record_custody(out, "registered", actor.username, at=at, note=f"export id {export_id}")
    if release is not None:
        note = (
            f"released under request {release.get('request_id')} to "
            f"{release.get('requesting_agency')} ({release.get('requester')}) for "
            f"{release.get('purpose')}"
        )
        record_custody(out, "released", actor.username, at=at, note=note)
    access.result_count = int(manifest["counts"]["reads"])
    return Export(export_id, case_number, out, manifest)


def export_evidence(
    door: Door,
    actor: Actor,
    case_number: str | None = None,
    *,
    purpose: str = "",
    out_dir: Path | None = None,
) -> Export:
    """Export the held reads of the case (``case_number``, else the justification's) with
    their alerts, the hold, a manifest with the SHA-256 of every file and a custody record.
    Raises :class:`~service.Conflict` without an active hold or for a used directory,
    :class:`~service.Forbidden` for covert alerts the actor may not see."""
    act = Acts.EVIDENCE_EXPORT
    case = (case_number or actor.why.case_number or "").strip()
    if not case:
        error = Invalid("give the case_number of the legal hold to export", "case")
        raise door.deny(actor, act, error)
    terms: dict[str, Any] = {"case": case}
    if out_dir is not None:
        terms["out"] = str(out_dir)

    def run(access: records.AuditedAccess) -> Export:
        return run_export(door, actor, access, case, out_dir=out_dir, purpose=purpose)

    return door.read(actor, act, run, terms)


def _seen_by(door: Door, actor: Actor, act: Act, directory: Path) -> dict[str, Any]:
    """Who exported ``directory`` (for the audit terms); a refusal, audited, when its alerts
    include covert ones the actor may not see (427.6): fetching or verifying an export shows
    what it holds as surely as exporting it."""
    exporter = None
    manifest = directory / "manifest.json"
    if manifest.is_file():
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            exporter = orjson.loads(manifest.read_bytes()).get("exported_by")
    if actor.covert.allowed:
        return {"exporter": exporter}
    try:
        covert = _covert_alerts(directory / "alerts.parquet")
    except (OSError, ValueError, KeyError) as exc:  # pyarrow's errors are ValueError/OSError
        msg = (
            f"export {directory.name}: its alerts cannot be read ({exc.__class__.__name__}), so "
            "whether it holds covert-list alerts is unknown; a role with "
            "'hotlists:view_covert' may verify it (427.6)"
        )
        raise door.deny(actor, act, Forbidden(msg)) from exc
    if covert:
        msg = (
            f"export {directory.name} holds {covert} covert-list alert(s); only a role with "
            "'hotlists:view_covert' may fetch or verify it (427.6)"
        )
        raise door.deny(actor, act, Forbidden(msg))
    return {"exporter": exporter}


def _existing(door: Door, actor: Actor, act: Act, export_id: str) -> Path:
    directory = door.checked(actor, act, lambda: export_dir(door.config.data_dir, export_id))
    if not directory.is_dir():
        raise door.deny(actor, act, NotFound(f"no evidence export {export_id!r}", "export_id"))
    return directory


def verify_export(
    door: Door, actor: Actor, export_id: str | None = None, *, directory: Path | None = None
) -> EvidenceCheck:
    """Every file of an export (by id, or a directory on portable media) against the
    manifest's size and SHA-256, no file missing or added, and the custody chain intact."""
    act = Acts.EVIDENCE_VERIFY
    if directory is None:
        assert export_id is not None, "give an export id or a directory"
        directory = _existing(door, actor, act, export_id)
    where = {"export_id": export_id} if export_id else {"directory": str(directory)}
    where |= _seen_by(door, actor, act, Path(directory))

    def run(access: records.AuditedAccess) -> EvidenceCheck:
        try:
            summary = verify_evidence(directory)
        except SinksError as exc:  # the verification's finding, not a failure of the act
            access.result_count = 0
            access.terms["ok"] = False
            return EvidenceCheck(export_id, False, None, str(exc))
        access.result_count = int(summary["files"])
        access.terms["ok"] = True
        return EvidenceCheck(export_id, True, summary, None)

    return door.read(actor, act, run, where)


def evidence_file(door: Door, actor: Actor, export_id: str, name: str) -> Path:
    """The path of file ``name`` of an export, recorded in its custody chain as
    ``downloaded`` (by the actor, from their client) before it is handed out."""
    act = Acts.EVIDENCE_DOWNLOAD
    directory = door.checked(actor, act, lambda: export_dir(door.config.data_dir, export_id))
    if not is_export_file_name(name):
        error = NotFound(f"{name!r} is not a file name of an export", "name")
        raise door.deny(actor, act, error)
    manifest = directory / "manifest.json"
    listed: set[str] = set()
    if manifest.exists():
        listed = {f["name"] for f in orjson.loads(manifest.read_bytes()).get("files", [])}
    if name not in listed and not (manifest.exists() and name in FIXED_FILES):
        error = NotFound(f"export {export_id!r} has no file {name!r}", "name")
        raise door.deny(actor, act, error)
    seen = _seen_by(door, actor, act, directory)

    def run(access: records.AuditedAccess) -> Path:
        note = f"{name} by {actor.client or 'unknown'}"
        record_custody(directory, "downloaded", actor.username, note=note)
        access.result_count = 1
        return directory / name

    return door.read(actor, act, run, {"export_id": export_id, "file": name, **seen})


def add_custody(
    door: Door, actor: Actor, directory: Path, *, action: str, note: str = ""
) -> dict[str, Any]:
    """Append a custody event (copied to media, booked...) to an export's chain."""
    act = Acts.EVIDENCE_CUSTODY
    if not action.strip():
        raise door.deny(actor, act, Invalid("a custody event needs an action", "action"))
    if not (Path(directory) / "manifest.json").is_file():
        error = NotFound(f"{directory} is not an evidence export (no manifest.json)", "directory")
        raise door.deny(actor, act, error)

    def run(access: records.AuditedAccess) -> dict[str, Any]:
        try:
            record = record_custody(directory, action, actor.username, note=note)
        except SinksError as exc:
            raise from_sinks(exc, "directory") from exc
        access.result_count = 1
        return record

    return door.read(actor, act, run, {"directory": str(directory), "action": action})
