"""``plateflow audit``: verify the hash chain, read the log, write the quarterly report.

Each is an audited act of the logged-in auditor (``audit:view``), as over the API.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import records
import service
from plateflow._cli_parts import command, command_group
from plateflow._cli_session import act_as, add_why, cli_client, door_of, logged_in, os_identity
from plateflow._cli_users import date_arg
from plateflow.settings import Settings
from service import Acts

out = Console()


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not (seq.isascii() and seq.isdigit()) or len(digest) != 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not SEQ:HASH (a number, ':', 64 hex digits)")
    return int(seq), digest.lower()


def _ms(text: str) -> int:
    day = date_arg(text)
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def current_quarter() -> str:
    today = datetime.now(timezone.utc).date()
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def register(sub: Any) -> None:
    cmds = command_group(
        sub,
        "audit",
        help="the audit log: verify, read, quarterly report (427.5)",
        description="Check and report on the append-only, hash-chained audit log.",
    )

    p = command(
        cmds,
        "verify",
        cmd_verify,
        help="check that no audit record was edited, inserted or deleted",
        description="Walk the whole audit log, recompute every hash and check every link. "
        "Exit code 0 when intact, 1 when any record was edited, inserted or deleted (each is "
        "listed by sequence number). --anchor compares with a head printed by an earlier report.",
    )
    p.add_argument("--anchor", type=_anchor, action="append", default=[], metavar="SEQ:HASH")
    p.add_argument(
        "--scheduled",
        action="store_true",
        help="a scheduler's check (no login): print only the verdict; recorded under the OS "
        "identity; every head exported before is checked and an intact head is appended to "
        "the audit head file (PLATEFLOW_AUDIT_HEAD_FILE), to ship off the host",
    )
    add_why(p)

    p = command(cmds, "log", cmd_log, help="show audit records")
    p.add_argument("--user", default=None, help="only records of this username")
    p.add_argument(
        "--kind",
        choices=("inquiry", "login", "admin", "hotlist", "release", "alert", "retention"),
        default=None,
    )
    p.add_argument("--since", type=_ms, default=None, help="from this date (UTC)")
    p.add_argument("--until", type=_ms, default=None, help="before this date (UTC)")
    p.add_argument("--limit", type=int, default=100)
    add_why(p)

    p = command(
        cmds,
        "report",
        cmd_report,
        help="write the quarterly audit report (HTML with charts, and CSV)",
        description="Inquiries per user and purpose, denied attempts, users without current "
        "training, hotlist changes, releases, purges, alert dispositions and the chain check, "
        "as one self-contained HTML file and one CSV in --out.",
    )
    p.add_argument("--quarter", default=None, help="e.g. 2026Q4 (default: the current quarter)")
    p.add_argument("--out", type=Path, default=Path("."), help="directory for the files")
    add_why(p)


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    door = door_of(settings)
    if args.scheduled:
        head_file = settings.effective_audit_head_file
        result = service.verify_audit_scheduled(
            door, os_identity(), cli_client(), head_file=head_file
        )
        if result.ok:
            out.print(f"head {result.head_seq} appended to {head_file}")
    else:
        actor = act_as(door, Acts.AUDIT_VERIFY, settings, args)
        result = service.verify_audit(door, actor, anchors=dict(args.anchor) or None)
    if result.ok:
        out.print(f"[green]{result.describe()}[/]")
        return 0
    out.print(f"[bold red]{result.describe()}[/]")
    return 1


def cmd_log(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.AUDIT_READ)
    rows = service.read_audit(
        door,
        actor,
        start_ms=args.since,
        end_ms=args.until,
        username=args.user,
        kind=args.kind,
        limit=None,  # the newest --limit are shown; the audit counts what was read
    )
    table = Table(
        "seq",
        "time (UTC)",
        "user",
        "action",
        "justification",
        "terms",
        "results",
        "client",
        "outcome",
    )
    for r in rows[-args.limit :]:
        why = r.case_number or r.event_number or (r.description or "")[:40]
        outcome = r.outcome if r.outcome == "allowed" else f"[red]{r.outcome}: {r.reason}[/]"
        table.add_row(
            str(r.seq),
            r.ts[:19].replace("T", " "),
            r.username,
            r.action,
            why,
            records.canonical_json(r.terms)[:60],
            "" if r.result_count is None else str(r.result_count),
            r.client or "",
            outcome,
        )
    out.print(table)
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    quarter = args.quarter or current_quarter()
    door, actor = logged_in(settings, args, Acts.AUDIT_REPORT)
    report = service.audit_report(door, actor, quarter=quarter, output=str(args.out))
    html_path, csv_path = report.write(args.out)
    out.print(
        f"audit report {report.label}: {report.inquiries} inquiries, "
        f"{len(report.denied)} denied attempts, {len(report.untrained)} users without "
        f"current training, {len(report.hotlist_changes)} hotlist changes"
    )
    colour = "green" if report.chain.ok else "bold red"
    out.print(f"[{colour}]{report.chain.describe().splitlines()[0]}[/]")
    out.print(f"wrote {html_path}\nwrote {csv_path}")
    return 0 if report.chain.ok else 1
