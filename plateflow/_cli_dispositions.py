"""``plateflow dispositions``: the reason and action lists of alert dispositions (427.3(g)).

``lists`` shows both lists (anyone who receives alerts, or an administrator); ``add-reason``,
``add-action``, ``retire-reason`` and ``retire-action`` change them (administrators). A retired
code can no longer be chosen, but past dispositions keep it and its label; adding it again
brings it back. Every command acts as the logged-in user (``plateflow login``), audited.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

import service
from plateflow._cli_session import act_as, door_of
from plateflow.settings import Settings
from service import Acts

out = Console()


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    top = sub.add_parser(
        "dispositions",
        help="the reason and action lists of alert dispositions",
        description="Reasons (for rejections) and actions taken (for confirmations) that "
        "dispatchers choose from; administrators manage them.",
    )
    cmds = top.add_subparsers(dest="dispositions_command", metavar="ACTION", required=True)
    p = cmds.add_parser("lists", parents=parents, help="show the reasons and actions")
    p.add_argument("--retired", action="store_true", help="also show retired codes")
    p.set_defaults(handler=cmd_lists)
    for kind in ("reason", "action"):
        p = cmds.add_parser(f"add-{kind}", parents=parents, help=f"add a {kind} (administrators)")
        p.add_argument("code", help="lower-case letters, digits and _, e.g. plate_cover")
        p.add_argument("label", help="what the console shows")
        p.add_argument(
            "--needs-text", action="store_true", help="a disposition with it must describe it"
        )
        p.set_defaults(handler=cmd_add, kind=kind)
        p = cmds.add_parser(
            f"retire-{kind}", parents=parents, help=f"retire a {kind} (administrators)"
        )
        p.add_argument("code")
        p.set_defaults(handler=cmd_retire, kind=kind)


def _show(lists: service.DispositionLists, *, retired: bool = False) -> None:
    table = Table("list", "code", "label", "needs text", *(["retired"] if retired else []))
    for code in (*lists.reasons, *lists.actions):
        if code.retired and not retired:
            continue
        row = [code.kind, code.code, code.label, "yes" if code.needs_text else ""]
        table.add_row(*row, *(["yes" if code.retired else ""] if retired else []))
    out.print(table)


def cmd_lists(args: argparse.Namespace, settings: Settings) -> int:
    door = door_of(settings)
    actor = act_as(door, Acts.DISPOSITION_LISTS, settings, args)
    _show(service.disposition_lists(door, actor), retired=args.retired)
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    door = door_of(settings)
    actor = act_as(door, Acts.DISPOSITION_LISTS_EDIT, settings, args)
    lists = service.add_disposition_code(
        door, actor, args.kind, args.code, args.label, needs_text=args.needs_text
    )
    out.print(f"added {args.kind} {args.code!r}")
    _show(lists)
    return 0


def cmd_retire(args: argparse.Namespace, settings: Settings) -> int:
    door = door_of(settings)
    actor = act_as(door, Acts.DISPOSITION_LISTS_EDIT, settings, args)
    lists = service.retire_disposition_code(door, actor, args.kind, args.code)
    out.print(f"retired {args.kind} {args.code!r}; past dispositions keep it")
    _show(lists)
    return 0
