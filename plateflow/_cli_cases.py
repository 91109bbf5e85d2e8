"""``plateflow retention|hold|evidence``: purge, legal holds and evidence (policy 427.4, 427.7).

``retention purge`` deletes every expired date partition without a legal hold (the store's
purge is crash-safe) and records each purge in records (partition, rows, when, who); a run that
was interrupted after the store purged but before records heard of it is reconciled on the next
run from the store's own purge log, so no purge goes unrecorded. A purge is an operator's
(a scheduler's) act on no person's data, recorded with the OS identity. Holds and exports are
audited acts of the logged-in user (``plateflow login``) with the case number (``--case``).
"""

from __future__ import annotations

import argparse
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

import records
import service
from plateflow._cli_parts import command, command_group
from plateflow._cli_session import act_as, add_why, door_of, logged_in, os_identity
from plateflow._cli_store import add_place, add_query_flags, add_window, spec_from_args
from plateflow.embedded import redis_client
from plateflow.settings import POLICY_MIN_RETENTION_DAYS, Settings
from service import MATCH_MODES, Acts
from sinks import ReadStore, StreamProgress, retain_until

log = logging.getLogger(__name__)
out = Console()

_PURGE_NOTE = "purge_id="


def register(sub: Any) -> None:
    cmds = command_group(sub, "retention", help="purge expired reads, show retention (427.4)")
    p = command(
        cmds,
        "purge",
        cmd_purge,
        help="delete expired date partitions that hold no legal hold",
        description="Delete every reads and alerts partition past its retain-until date that "
        "carries no legal hold, and record each purge (partition, rows, when, who).",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be purged")
    p = command(
        cmds,
        "compact",
        cmd_compact,
        help="merge closed days into one file each, sorted by plate (run daily)",
        description="Merge every closed date partition's batch files into one file sorted by "
        "plate then time, with small row groups, so searches over a year skip most of the data. "
        "Safe to interrupt; files the flow is still writing are left alone.",
    )
    p.add_argument("--min-age-days", type=int, default=1, help="only days at least this old")
    p = command(cmds, "status", cmd_status, help="partitions, retain-until, holds")
    p.add_argument("--kind", choices=("reads", "alerts"), default="reads")

    cmds = command_group(sub, "hold", help="legal holds on stored reads (427.4)")
    p = command(
        cmds,
        "place",
        cmd_hold_place,
        help="hold the result of a search for a case",
        description="Give one query: --plate, --pattern, a place (--lat/--lon/--radius-m or "
        "--polygon) or --read-id (repeatable), with a time window.",
    )
    p.add_argument("--case", required=True, help="the case number the hold is for")
    p.add_argument("--reason", required=True, help="why the reads are evidence")
    p.add_argument("--plate", default=None)
    p.add_argument("--match", choices=MATCH_MODES, default="exact")
    p.add_argument("--pattern", default=None)
    p.add_argument("--ocr-equivalents", type=int, default=0)
    p.add_argument("--candidates", action="store_true")
    add_place(p)
    p.add_argument("--read-id", dest="read_ids", action="append", default=None)
    add_window(p)
    add_query_flags(p)
    add_why(p, case_flag=False)
    p = command(cmds, "release", cmd_hold_release, help="release a case's hold")
    p.add_argument("--case", required=True)
    p.add_argument("--reason", required=True, help="case closed, court order...")
    add_why(p, case_flag=False)
    p = command(cmds, "list", cmd_hold_list, help="legal holds (an audited inquiry)")
    p.add_argument("--all", action="store_true", help="also released holds")
    add_why(p)

    cmds = command_group(sub, "evidence", help="evidence export to portable media (427.4)")
    p = command(
        cmds,
        "export",
        cmd_export,
        help="write a case's held reads, alerts, manifest and custody record",
        description="With --release ID, fulfils that approved release request (427.7): exactly "
        "the request's case is exported (another --case is refused), the release goes into "
        "the manifest and the custody chain, and the export is linked to it.",
    )
    p.add_argument(
        "--case", default=None, help="the held case (with --release: must be the request's)"
    )
    p.add_argument("--out", type=Path, required=True, help="a new or empty directory")
    p.add_argument("--purpose", default="", help="why the evidence is exported")
    p.add_argument("--release", type=int, default=None, help="an approved release request id")
    p.add_argument("--note", default="", help="with --release: kept with the fulfilment")
    add_why(p, case_flag=False)
    p = command(cmds, "verify", cmd_verify, help="check an export: hashes and custody")
    p.add_argument("directory", type=Path)
    add_why(p)
    p = command(cmds, "custody", cmd_custody, help="add a custody event to an export")
    p.add_argument("directory", type=Path)
    p.add_argument("--action", required=True, help="e.g. 'copied to media', 'booked'")
    p.add_argument("--note", default="")
    add_why(p)


# -- retention ----------------------------------------------------------------------------------


def record_purges(engine: Any, store: ReadStore, settings: Settings) -> int:
    """Record in records every purge of the store's log not recorded yet; returns how many."""
    known = {
        p.note.split(_PURGE_NOTE, 1)[1].split()[0]
        for p in records.list_purges(engine)
        if _PURGE_NOTE in p.note
    }
    added = 0
    for purge in store.purge_log():
        if purge.purge_id in known:
            continue
        note = (
            f"{_PURGE_NOTE}{purge.purge_id} files={purge.files} bytes={purge.bytes} "
            f"retain_until={purge.retain_until} retention_days={settings.retention_days}"
        )
        if settings.retention_days < POLICY_MIN_RETENTION_DAYS:
            note += " retention_override=true"
        records.record_purge(
            engine, f"{purge.kind}/date={purge.day}", purge.rows, purge.by, purge.at, note=note
        )
        added += 1
    return added


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    store = ReadStore(settings.data_dir, settings.retention_days)
    engine = door_of(settings).engine
    by = os_identity()
    if settings.retention_days < POLICY_MIN_RETENTION_DAYS:
        log.warning(
            "retention override in force: purging reads older than %d days, below the policy "
            "minimum of %d (427.4); purge run by %s",
            settings.retention_days,
            POLICY_MIN_RETENTION_DAYS,
            by,
        )
    if not args.dry_run:
        record_purges(engine, store, settings)  # an earlier run's purges, if it was cut short
    found = store.purge(datetime.now(timezone.utc), dry_run=args.dry_run, by=by)
    table = Table("partition", "action", "rows", "files", "retain until", "holds")
    for r in found:
        table.add_row(
            f"{r.kind}/date={r.day}",
            r.action,
            f"{r.rows:,}",
            str(r.files),
            str(r.retain_until),
            str(len(r.holds)),
        )
    out.print(table)
    recorded = 0 if args.dry_run else record_purges(engine, store, settings)
    purged = [r for r in found if r.action in ("purged", "would_purge")]
    held = [r for r in found if r.holds]
    verb = "would purge" if args.dry_run else "purged"
    out.print(
        f"{verb} {len(purged)} partition(s), {sum(r.rows for r in purged):,} rows; "
        f"{len(held)} of them under legal hold (the held rows stay in the holds' copies); "
        f"{recorded} purge(s) recorded"
    )
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    store = ReadStore(settings.data_dir, settings.retention_days)
    today = datetime.now(timezone.utc).date()
    table = Table("date", "files", "rows", "retain until", "status", "holds")
    total = expired = 0
    for day in store.days(args.kind):
        files = store.files(args.kind, day)
        rows = sum(pq.read_metadata(path).num_rows for path in files)
        sidecar = store.sidecar(args.kind, day)
        until = max(
            retain_until(day, store.retention_days),
            datetime.fromisoformat(sidecar["retain_until"]).date(),
        )
        holds = len(sidecar.get("legal_holds", []))
        status = "held" if holds and today > until else ("expired" if today > until else "kept")
        expired += status == "expired"
        total += rows
        table.add_row(str(day), str(len(files)), f"{rows:,}", str(until), status, str(holds))
    out.print(table)
    override = " (override)" if settings.retention_days < POLICY_MIN_RETENTION_DAYS else ""
    out.print(
        f"{args.kind}: {total:,} rows; retention {settings.retention_days} days{override}; "
        f"{expired} partition(s) due for purge; {len(store.holds())} active legal hold(s); "
        f"{len(store.purge_log())} purge(s) done"
    )
    return 0


def cmd_compact(args: argparse.Namespace, settings: Settings) -> int:
    store = ReadStore(settings.data_dir, settings.retention_days)
    with redis_client(settings, "api") as client:
        written = store.compact_closed(
            datetime.now(timezone.utc), StreamProgress(client), args.min_age_days
        )
    for path in written:
        out.print(f"compacted {path.parent.name}/{path.name}")
    out.print(f"{len(written)} partition(s) compacted")
    return 0


# -- holds --------------------------------------------------------------------------------------


def _hold_spec(args: argparse.Namespace) -> service.SearchSpec | None:
    given = [args.plate, args.pattern, args.lat if args.lat is not None else args.polygon]
    chosen = sum(x is not None for x in given) + (1 if args.read_ids else 0)
    if chosen != 1:
        msg = "give exactly one query: --plate, --pattern, a place, or --read-id"
        raise service.Invalid(msg, "plate")
    if args.read_ids:
        return None
    args.kind = "plate" if args.plate else ("partial" if args.pattern else "canvass")
    return spec_from_args(args)


def cmd_hold_place(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.HOLD_PLACE, case_number=args.case)
    hold = service.place_hold(
        door,
        actor,
        reason=args.reason,
        build=lambda: _hold_spec(args),
        read_ids=args.read_ids,
        case_number=args.case,
    )
    out.print(
        f"case {hold.case_number}: {hold.reads:,} reads and {hold.alerts:,} alerts held over "
        f"{len(hold.days)} day(s); they survive every purge until the hold is released"
    )
    return 0


def cmd_hold_release(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.HOLD_RELEASE, case_number=args.case)
    service.release_hold(door, actor, args.case, reason=args.reason)
    out.print(f"released the hold of case {args.case}; its partitions follow normal retention")
    return 0


def cmd_hold_list(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.HOLD_LIST)
    table = Table("case", "status", "reads", "alerts", "days", "placed by", "released")
    for hold in service.list_holds(door, actor, include_released=args.all):
        first = hold.placements[0] if hold.placements else {}
        released = hold.released or {}
        table.add_row(
            hold.case_number,
            "active" if hold.active else "released",
            f"{hold.reads:,}",
            f"{hold.alerts:,}",
            f"{hold.days[0]} .. {hold.days[-1]}" if hold.days else "",
            f"{first.get('by', '')} {str(first.get('at', ''))[:19]}",
            f"{released.get('by', '')} {str(released.get('at', ''))[:19]}".strip(),
        )
    out.print(table)
    return 0


# -- evidence -----------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    door = door_of(settings)
    if args.release is None:
        if not args.case:
            raise service.Invalid("give --case: the held case to export", "case")
        actor = act_as(door, Acts.EVIDENCE_EXPORT, settings, args, case_number=args.case)
        made = service.export_evidence(
            door, actor, args.case, purpose=args.purpose, out_dir=args.out
        )
    else:
        # the inquiry is for the request's case unless the caller names one (which must be
        # the same: fulfil_release refuses another)
        case = args.case or records.get_release(door.engine, args.release).case_number
        actor = act_as(door, Acts.RELEASE_EXPORT, settings, args, case_number=case)
        done = service.fulfil_release(
            door,
            actor,
            args.release,
            case_number=args.case,
            note=args.note,
            purpose=args.purpose or None,
            out_dir=args.out,
        )
        made = done.export
        out.print(f"release request {args.release} fulfilled by export {made.export_id}")
    counts = made.manifest["counts"]
    out.print(
        f"exported case {made.case_number}: {counts['reads']:,} reads, {counts['alerts']:,} "
        f"alerts to {args.out} (export {made.export_id}); check it with `plateflow evidence "
        "verify`"
    )
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.EVIDENCE_VERIFY)
    found = service.verify_export(door, actor, directory=args.directory)
    if not found.ok or found.summary is None:
        out.print(f"[bold red]FAILED[/] {found.problems}")
        return 1
    summary = found.summary
    out.print(
        f"[green]evidence intact[/]: case {summary['case_number']}, {summary['files']} files, "
        f"{summary['reads']:,} reads, {summary['alerts']:,} alerts, "
        f"{summary['custody_records']} custody record(s), manifest {summary['manifest_sha256']}"
    )
    return 0


def cmd_custody(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.EVIDENCE_CUSTODY)
    record = service.add_custody(door, actor, args.directory, action=args.action, note=args.note)
    out.print(f"custody record {record['seq']}: {record['action']} by {record['by']}")
    return 0
