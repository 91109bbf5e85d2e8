"""``plateflow transparency``: the public page's policy, designees and figures (427.2.1(e)(g)).

``publish`` posts a version of the ALPR policy (a Markdown or PDF file, with the date it takes
effect) and ``designate`` names the ALPR administrator or the custodian of records: both are
acts of a logged-in administrator (``transparency:manage``), justified and audited. ``show``
prints what the public page shows; those figures are public, so it needs no session.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

import records
import service
from plateflow._cli_parts import command, command_group
from plateflow._cli_session import add_why, closing_door, logged_in
from plateflow._cli_users import CliInputError, date_arg
from plateflow.settings import Settings
from service import Acts

out = Console()


def register(sub: Any) -> None:
    cmds = command_group(
        sub,
        "transparency",
        help="the public transparency page: the posted policy, its designees, the figures",
        description="Publish the ALPR policy, name its designees, and show the figures of "
        "the public page (/transparency, served by `plateflow serve`).",
    )

    p = command(
        cmds,
        "publish",
        cmd_publish,
        help="post a new version of the ALPR policy (Markdown or PDF)",
        description="Post the next version of the ALPR policy (427.2.1(g)). Earlier versions "
        "stay on the page as its history.",
    )
    p.add_argument("file", type=Path, help="the policy: a .md (UTF-8) or .pdf file")
    p.add_argument(
        "--effective", type=date_arg, required=True, help="the date it takes effect (2026-01-01)"
    )
    p.add_argument("--title", default=None, help="default: the Markdown's first # heading")
    add_why(p)

    p = command(
        cmds,
        "designate",
        cmd_designate,
        help="name the ALPR administrator or the custodian of records",
        description="Record who holds a public role (427.2.1(e)); the newest designation of "
        "a role is the one shown.",
    )
    p.add_argument("--role", required=True, choices=sorted(records.DESIGNEE_ROLES))
    p.add_argument("--title", required=True, help="their title, e.g. 'Captain, Support Services'")
    p.add_argument("--name", required=True, help="their full name")
    p.add_argument("--since", type=date_arg, default=None, help="since when (default today)")
    add_why(p)

    p = command(
        cmds,
        "show",
        cmd_show,
        help="print the figures of the public page (no login: they are public)",
    )
    p.add_argument("--json", action="store_true", help="the page's JSON instead of tables")


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.TRANSPARENCY_PUBLISH)
    path: Path = args.file
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CliInputError(f"cannot read the policy file {path}: {exc.strerror}") from exc
    doc = service.publish_policy(
        door, actor, content, filename=path.name, effective_on=args.effective, title=args.title
    )
    out.print(
        f"published [bold]{doc.title}[/] as version {doc.version} ({doc.media_type}, "
        f"{doc.size:,} bytes, sha256 {doc.sha256}), in effect from {doc.effective_on}"
    )
    return 0


def cmd_designate(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.TRANSPARENCY_DESIGNATE)
    since: date = args.since or service.today()
    who = service.designate(
        door, actor, role=args.role, title=args.title, name=args.name, since=since
    )
    out.print(f"{who.role_title}: [bold]{who.name}[/] ({who.title}) since {who.since}")
    return 0


_WHY = {
    "case": "with a case number",
    "event": "with an event number",
    "description": "with a description",
}


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return f"fewer than {value['fewer_than']}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _pairs(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for label, value in rows:
        table.add_row(label, _cell(value))
    return table


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with closing_door(settings) as door:
        page = service.transparency(door)
    if args.json:
        out.print_json(orjson.dumps(page).decode())
        return 0
    policy = page["policy"]["current"]
    designees = page["designees"]["current"]
    out.print(
        _pairs(
            "Policy and designees",
            [
                (
                    "policy",
                    f"{policy['title']} (version {policy['version']}, since "
                    f"{policy['effective_on']})"
                    if policy
                    else "none published",
                ),
                *(
                    (
                        title,
                        f"{d['name']}, {d['title']} (since {d['since']})"
                        if (d := designees.get(role))
                        else "not designated",
                    )
                    for role, title in records.DESIGNEE_ROLES.items()
                ),
                ("retention", f"{page['retention_days']} days"),
            ],
        )
    )
    searches, purges, audit = page["searches"], page["purges"], page["audit"]
    out.print(
        _pairs(
            "Figures",
            [
                ("reads stored", page["reads"]["total"]),
                ("cameras reporting (30 days)", page["cameras_reporting_30d"]),
                ("alerts (12 months)", page["alerts"]["total"]),
                ("searches (12 months)", searches["total"]),
                *((f"  {_WHY.get(k, k)}", v) for k, v in searches["by_justification"].items()),
                *((f"  {k} searches", v) for k, v in searches["by_kind"].items()),
                ("refused search attempts", searches["refused"]),
                *((f"releases {k}", v) for k, v in page["releases"].items()),
                ("legal holds open", page["legal_holds_open"]),
                ("partitions purged", purges["partitions"]),
                ("reads purged", purges["reads"]),
                ("last quarterly audit", audit["last_report_on"] or "none yet"),
                ("last audit chain check", audit["last_verification_on"] or "none yet"),
                ("audit chain verified", {True: "yes", False: "NO", None: "not recorded"}[
                    audit["chain_verified"]
                ]),
            ],
        )
    )  # fmt: skip
    months = Table("month", "reads stored", "alerts", "searches", title="By month")
    for month in page["months"]:
        months.add_row(
            month,
            _cell(page["reads"]["by_month"].get(month, 0)),
            _cell(page["alerts"]["by_month"][month]),
            _cell(searches["by_month"][month]),
        )
    out.print(months)
    hotlists = Table("category", "lists", "entries", title="Hotlists")
    for h in page["hotlists"]["by_category"]:
        hotlists.add_row(h["category"], _cell(h["lists"]), _cell(h["entries"]))
    hotlists.add_row("confidential (not named)", _cell(page["hotlists"]["not_shown"]["lists"]), "")
    out.print(hotlists)
    out.print(f"counts under {page['min_cell']} read 'fewer than {page['min_cell']}'")
    return 0
