"""``plateflow dispositions``: alert dispositions (427.3(g)) and their reason and action lists.

``move`` takes a hit through the state machine (claim, verify, confirm, reject, dismiss, undo)
as a console does; ``current`` shows the current state of recent hits; ``lists`` shows both
lists (anyone who receives alerts, or an administrator); ``add-reason``, ``add-action``,
``retire-reason`` and ``retire-action`` change them (administrators). A retired code can no
longer be chosen, but past dispositions keep it and its label; adding it again brings it back.
Every command acts as the logged-in user (``plateflow login``), audited.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

import records
import service
from plateflow._cli_parts import command, command_group
from plateflow._cli_session import logged_in, logged_in_with_redis
from plateflow.settings import Settings
from service import Acts

out = Console()


def register(sub: Any) -> None:
    cmds = command_group(
        sub,
        "dispositions",
        help="the reason and action lists of alert dispositions",
        description="Reasons (for rejections) and actions taken (for confirmations) that "
        "dispatchers choose from; administrators manage them.",
    )
    p = command(
        cmds,
        "move",
        cmd_move,
        help="move a hit: claim, verify, confirm, reject, dismiss or undo",
        description="Claim the hit first; confirmed needs --action, rejected --reason (other: "
        "also --reason-text), undo --note. The step is audited and broadcast to the consoles.",
    )
    p.add_argument("alert_id")
    p.add_argument("--log-id", required=True, help="the alert's stream id in its alert log")
    p.add_argument("--to", required=True, choices=records.TARGETS)
    p.add_argument("--reason", default=None, help="a code of the reason list")
    p.add_argument("--reason-text", default=None)
    p.add_argument("--action", default=None, help="a code of the action list")
    p.add_argument("--note", default=None)
    p = command(cmds, "current", cmd_current, help="the current state of recent hits")
    p.add_argument("--since", default=None, help="RFC 3339 with offset (default: 24 hours ago)")
    p = command(cmds, "lists", cmd_lists, help="show the reasons and actions")
    p.add_argument("--retired", action="store_true", help="also show retired codes")
    for kind in ("reason", "action"):
        p = command(
            cmds,
            f"add-{kind}",
            cmd_add,
            help=f"add a {kind} (administrators)",
            defaults={"kind": kind},
        )
        p.add_argument("code", help="lower-case letters, digits and _, e.g. plate_cover")
        p.add_argument("label", help="what the console shows")
        p.add_argument(
            "--needs-text", action="store_true", help="a disposition with it must describe it"
        )
        p = command(
            cmds,
            f"retire-{kind}",
            cmd_retire,
            help=f"retire a {kind} (administrators)",
            defaults={"kind": kind},
        )
        p.add_argument("code")


def _show(lists: service.DispositionLists, *, retired: bool = False) -> None:
    table = Table("list", "code", "label", "needs text", *(["retired"] if retired else []))
    for code in (*lists.reasons, *lists.actions):
        if code.retired and not retired:
            continue
        row = [code.kind, code.code, code.label, "yes" if code.needs_text else ""]
        table.add_row(*row, *(["yes" if code.retired else ""] if retired else []))
    out.print(table)


def _state_row(item: dict[str, Any]) -> list[str]:
    detail = item["action"] or item["reason"] or ""
    if item["reason_text"]:
        detail += f" ({item['reason_text']})"
    return [
        item["alert_id"],
        str(item["hotlist"] or ""),
        item["match_kind"],
        item["state"],
        item["by"],
        item["at"],
        item["claimed_by"] or "",
        item["deadline_at"] or "",
        detail,
    ]


_STATE_COLUMNS = ("alert", "list", "kind", "state", "by", "at", "held by", "deadline", "detail")


def _print_states(items: Iterable[dict[str, Any]]) -> None:
    table = Table(*_STATE_COLUMNS)
    for item in items:
        table.add_row(*_state_row(item))
    out.print(table)


def cmd_move(args: argparse.Namespace, settings: Settings) -> int:
    with logged_in_with_redis(settings, args, Acts.DISPOSITION) as (door, actor):
        made = service.transition(
            door,
            actor,
            args.alert_id,
            args.log_id,
            args.to,
            reason=args.reason,
            reason_text=args.reason_text,
            action=args.action,
            note=args.note,
        )
    _print_states([made])
    return 0


def cmd_current(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.DISPOSITION_STATES)
    try:
        since = datetime.fromisoformat(args.since) if args.since else None
    except ValueError as exc:
        msg = f"--since {args.since!r} is not a time like 2026-12-01T08:00:00Z"
        raise service.Invalid(msg, "since") from exc
    items = service.current_dispositions(door, actor, service.since_ms_of(door, actor, since))
    _print_states(items)
    return 0


def cmd_lists(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.DISPOSITION_LISTS)
    _show(service.disposition_lists(door, actor), retired=args.retired)
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.DISPOSITION_LISTS_EDIT)
    lists = service.add_disposition_code(
        door, actor, args.kind, args.code, args.label, needs_text=args.needs_text
    )
    out.print(f"added {args.kind} {args.code!r}")
    _show(lists)
    return 0


def cmd_retire(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.DISPOSITION_LISTS_EDIT)
    lists = service.retire_disposition_code(door, actor, args.kind, args.code)
    out.print(f"retired {args.kind} {args.code!r}; past dispositions keep it")
    _show(lists)
    return 0
