"""``plateflow retention|hold|evidence``: purge, legal holds and evidence (policy 427.4, 427.7).

``retention purge`` deletes every expired date partition without a legal hold (the store's
purge is crash-safe) and records each purge in records (partition, rows, when, who); a run that
was interrupted after the store purged but before records heard of it is reconciled on the next
run from the store's own purge log, so no purge goes unrecorded. Holds and exports are audited
acts by a named user (``--by``) with the case number (``--case``).
"""

from __future__ import annotations

import argparse
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import redis
from rich.console import Console
from rich.table import Table

import records
from api import (
    COVERT_PERMISSION,
    MATCH_MODES,
    StoreQueryError,
    export_case,
    new_export_id,
    place_hold,
    release_case,
    release_summary,
)
from plateflow._cli_store import (
    CLIENT,
    CliStoreError,
    add_inquiry,
    add_place,
    add_query_flags,
    add_window,
    inquiry,
    refuse,
    spec_from_args,
    store_of,
    user_of,
)
from plateflow._cli_users import actor, add_actor, engine_of
from plateflow.embedded import redis_url
from plateflow.settings import POLICY_MIN_RETENTION_DAYS, Settings
from sinks import ReadStore, StreamProgress, record_custody, retain_until, verify_evidence

log = logging.getLogger(__name__)
out = Console()

_PURGE_NOTE = "purge_id="


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    retention = sub.add_parser("retention", help="purge expired reads, show retention (427.4)")
    cmds = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    p = cmds.add_parser(
        "purge",
        parents=parents,
        help="delete expired date partitions that hold no legal hold",
        description="Delete every reads and alerts partition past its retain-until date that "
        "carries no legal hold, and record each purge (partition, rows, when, who).",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be purged")
    add_actor(p)
    p.set_defaults(handler=cmd_purge)
    p = cmds.add_parser(
        "compact",
        parents=parents,
        help="merge closed days into one file each, sorted by plate (run daily)",
        description="Merge every closed date partition's batch files into one file sorted by "
        "plate then time, with small row groups, so searches over a year skip most of the data. "
        "Safe to interrupt; files the flow is still writing are left alone.",
    )
    p.add_argument("--min-age-days", type=int, default=1, help="only days at least this old")
    p.set_defaults(handler=cmd_compact)
    p = cmds.add_parser("status", parents=parents, help="partitions, retain-until, holds")
    p.add_argument("--kind", choices=("reads", "alerts"), default="reads")
    p.set_defaults(handler=cmd_status)

    hold = sub.add_parser("hold", help="legal holds on stored reads (427.4)")
    cmds = hold.add_subparsers(dest="hold_command", metavar="ACTION", required=True)
    p = cmds.add_parser(
        "place",
        parents=parents,
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
    add_inquiry(p, case_flag=False)
    p.set_defaults(handler=cmd_hold_place)
    p = cmds.add_parser("release", parents=parents, help="release a case's hold")
    p.add_argument("--case", required=True)
    p.add_argument("--reason", required=True, help="case closed, court order...")
    add_inquiry(p, case_flag=False)
    p.set_defaults(handler=cmd_hold_release)
    p = cmds.add_parser("list", parents=parents, help="legal holds")
    p.add_argument("--all", action="store_true", help="also released holds")
    p.set_defaults(handler=cmd_hold_list)

    evidence = sub.add_parser("evidence", help="evidence export to portable media (427.4)")
    cmds = evidence.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    p = cmds.add_parser(
        "export",
        parents=parents,
        help="write a case's held reads, alerts, manifest and custody record",
        description="With --release ID, fulfils that approved release request (427.7): the "
        "release goes into the manifest and the custody chain, and the export is linked to it.",
    )
    p.add_argument("--case", default=None, help="the held case (default: the release's case)")
    p.add_argument("--out", type=Path, required=True, help="a new or empty directory")
    p.add_argument("--purpose", default="", help="why the evidence is exported")
    p.add_argument("--release", type=int, default=None, help="an approved release request id")
    add_inquiry(p, case_flag=False)
    p.set_defaults(handler=cmd_export)
    p = cmds.add_parser("verify", parents=parents, help="check an export: hashes and custody")
    p.add_argument("directory", type=Path)
    p.set_defaults(handler=cmd_verify)
    p = cmds.add_parser("custody", parents=parents, help="add a custody event to an export")
    p.add_argument("directory", type=Path)
    p.add_argument("--action", required=True, help="e.g. 'copied to media', 'booked'")
    p.add_argument("--note", default="")
    add_actor(p)
    p.set_defaults(handler=cmd_custody)


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
    store = store_of(settings)
    engine = engine_of(settings)
    by = actor(args)
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
    held = [r for r in found if r.action == "held"]
    verb = "would purge" if args.dry_run else "purged"
    out.print(
        f"{verb} {len(purged)} partition(s), {sum(r.rows for r in purged):,} rows; kept "
        f"{len(held)} expired partition(s) under legal hold; {recorded} purge(s) recorded"
    )
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    store = store_of(settings)
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
    store = store_of(settings)
    with redis_url(settings, "api") as url:
        client = redis.Redis.from_url(url)
        try:
            written = store.compact_closed(
                datetime.now(timezone.utc), StreamProgress(client), args.min_age_days
            )
        finally:
            client.close()
    for path in written:
        out.print(f"compacted {path.parent.name}/{path.name}")
    out.print(f"{len(written)} partition(s) compacted")
    return 0


# -- holds --------------------------------------------------------------------------------------


def cmd_hold_place(args: argparse.Namespace, settings: Settings) -> int:
    given = [args.plate, args.pattern, args.lat if args.lat is not None else args.polygon]
    chosen = sum(x is not None for x in given) + (1 if args.read_ids else 0)
    if chosen != 1:
        raise CliStoreError("give exactly one query: --plate, --pattern, a place, or --read-id")
    spec = None
    if not args.read_ids:
        args.kind = "plate" if args.plate else ("partial" if args.pattern else "canvass")
        try:
            spec = spec_from_args(args)
        except StoreQueryError as exc:
            raise CliStoreError(str(exc)) from exc
    engine = engine_of(settings)
    terms = {"case": args.case, "reason": args.reason}
    terms["query"] = spec.terms() if spec else {"read_ids": len(args.read_ids)}
    with records.audited(
        engine,
        inquiry(args, args.case),
        "holds.place",
        permission="retention:hold",
        terms=terms,
        client=CLIENT,
        kind="retention",
        min_description_length=settings.min_description_length,
    ) as access:
        hold = place_hold(
            store_of(settings),
            args.case,
            by=args.by,
            at=datetime.now(timezone.utc),
            reason=args.reason,
            spec=spec,
            read_ids=args.read_ids,
            ocr_classes=settings.ocr_classes,
        )
        access.result_count = int(hold.placements[-1].get("reads", hold.reads))
    out.print(
        f"case {hold.case_number}: {hold.reads:,} reads and {hold.alerts:,} alerts held over "
        f"{len(hold.days)} day(s); they survive every purge until the hold is released"
    )
    return 0


def cmd_hold_release(args: argparse.Namespace, settings: Settings) -> int:
    from sinks import SinksError

    with records.audited(
        engine_of(settings),
        inquiry(args, args.case),
        "holds.release",
        permission="retention:hold",
        terms={"case": args.case, "reason": args.reason},
        client=CLIENT,
        kind="retention",
        min_description_length=settings.min_description_length,
    ) as access:
        try:
            hold = store_of(settings).release_hold(
                args.case, by=args.by, at=datetime.now(timezone.utc), reason=args.reason
            )
        except SinksError as exc:
            raise CliStoreError(str(exc)) from exc
        access.result_count = hold.reads
    out.print(f"released the hold of case {args.case}; its partitions follow normal retention")
    return 0


def cmd_hold_list(args: argparse.Namespace, settings: Settings) -> int:
    table = Table("case", "status", "reads", "alerts", "days", "placed by", "released")
    for hold in store_of(settings).holds(include_released=args.all):
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
    engine = engine_of(settings)
    at = datetime.now(timezone.utc)
    action = "releases.export" if args.release is not None else "evidence.export"
    case: str | None = args.case
    request: records.ReleaseRequest | None = None
    if args.release is not None:
        audit = {"kind": "release", "case_number": args.case}
        user = user_of(engine, args, action, **audit)
        if not user.can("releases:decide"):
            msg = f"user {args.by!r} may not 'releases:decide': only a Records Supervisor (427.7)"
            refuse(engine, args, action, "forbidden", msg, **audit)
        request = records.get_release(engine, args.release)
        case = case or request.case_number  # the inquiry is for the request's case
    if not case:
        raise CliStoreError("give --case: the held case to export")
    done: dict[str, Any] = {}
    with records.audited(
        engine,
        inquiry(args, case),
        action,
        permission="evidence:export",
        terms={"case": case, "out": str(args.out), "request": args.release},
        client=CLIENT,
        kind="release" if request is not None else "retention",
        min_description_length=settings.min_description_length,
    ) as access:
        release = None
        if request is not None:
            release_case(request, case)  # approved, law enforcement: else refused here
            release = release_summary(request)
        export_id = new_export_id(case, at)
        access.terms["export_id"] = export_id
        manifest = export_case(
            store_of(settings),
            case,
            args.out,
            by=args.by,
            at=at,
            export_id=export_id,
            covert_allowed=access.user.can(COVERT_PERMISSION),
            purpose=args.purpose or (request.purpose if request is not None else ""),
            release=release,
        )
        access.result_count = int(manifest["counts"]["reads"])
        done.update(export_id=export_id, manifest=manifest)
    if args.release is not None:
        records.fulfil_release(
            engine, args.release, export_id=done["export_id"], by=args.by, client=CLIENT
        )
        out.print(f"release request {args.release} fulfilled by export {done['export_id']}")
    counts = done["manifest"]["counts"]
    out.print(
        f"exported case {case}: {counts['reads']:,} reads, {counts['alerts']:,} alerts to "
        f"{args.out} (export {done['export_id']}); check it with `plateflow evidence verify`"
    )
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from sinks import SinksError

    try:
        summary = verify_evidence(args.directory)
    except SinksError as exc:
        out.print(f"[bold red]FAILED[/] {exc}")
        return 1
    out.print(
        f"[green]evidence intact[/]: case {summary['case_number']}, {summary['files']} files, "
        f"{summary['reads']:,} reads, {summary['alerts']:,} alerts, "
        f"{summary['custody_records']} custody record(s), manifest {summary['manifest_sha256']}"
    )
    return 0


def cmd_custody(args: argparse.Namespace, settings: Settings) -> int:
    record = record_custody(args.directory, args.action, actor(args), note=args.note)
    out.print(f"custody record {record['seq']}: {record['action']} by {record['by']}")
    return 0
