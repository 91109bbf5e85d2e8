"""``plateflow hotlist``: import, add, remove, list, show, set the policy, check its cost (and,
beside the estimate, the measured share of the list's dispositioned hits that were confirmed).

Every command is an act of the logged-in user (``plateflow login``) through the service's door,
justified and audited as over the API; every change is announced on
``plateflow:hotlists:changed`` so running workers reload the list without a restart. A policy
whose estimated alert share is over ``policy_alert_ceiling`` is refused unless ``--force``.

The ordinary traffic that the cost check uses is the stored reads of the last days, or simulated
traffic on a new install (:func:`plateflow._sampling.traffic_sample`).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import matchers
import records
import service
from plateflow._cli_parts import command, command_group
from plateflow._cli_session import add_why, logged_in, logged_in_with_redis
from plateflow._sampling import traffic_sample
from plateflow.settings import Settings
from service import Acts

out = Console()

_POLICY_FLAGS = (
    "differences",
    "ocr_equivalents",
    "state",
    "min_fuzzy_length",
    "candidates",
    "covert",
    "priority",
)


def register(sub: Any) -> None:
    cmds = command_group(
        sub,
        "hotlist",
        help="hotlists as records: import, add, remove, list, show, policy, check",
        description="Versioned hotlists with provenance. Changes are atomic and announced to "
        "running workers.",
    )

    p = command(
        cmds,
        "import",
        cmd_import,
        help="make a CSV file the new version of a list",
        description="Validate every row (bad rows are listed by line number and nothing "
        "changes), then make the file the list's new version in one transaction. Layouts: "
        "plateflow (plate,state,reason,case_number,expires_at,category), ncic (LIC,LIS,LIT,NIC,"
        "OCA), semicolon (PlateNumber;PlateState;Category); detected from the header unless "
        "--mapping says. A sibling <stem>.policy.json sets the policy.",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--list", dest="name", required=True, help="hotlist name")
    p.add_argument("--category", default=None, help=", ".join(records.CATEGORIES))
    p.add_argument("--mapping", choices=tuple(records.LAYOUTS), default=None)
    _cost_flags(p)
    add_why(p)

    p = command(cmds, "add", cmd_add, help="add one plate or partial-plate pattern")
    p.add_argument("name", help="hotlist name")
    p.add_argument("plate", help="plate, or pattern with ? * [..] (needs case number and expiry)")
    p.add_argument("--reason", required=True)
    p.add_argument("--state", default=None)
    p.add_argument("--expires", default=None, help="YYYY-MM-DD or RFC 3339")
    p.add_argument("--category", default=None, help="create the list with this category")
    add_why(p)  # --case-number: the case the entry belongs to, and the act's justification

    p = command(cmds, "remove", cmd_remove, help="take a plate or pattern off a list")
    p.add_argument("name")
    p.add_argument("plate")
    p.add_argument("--state", default=None)
    p.add_argument("--reason", default=None, help="why (kept with the change)")
    add_why(p)

    add_why(command(cmds, "list", cmd_list, help="list the hotlists"))

    p = command(cmds, "show", cmd_show, help="show a list's entries and history")
    p.add_argument("name")
    p.add_argument("--version", type=int, default=None, help="an older version")
    p.add_argument("--limit", type=int, default=50, help="entries shown (0 for all)")
    add_why(p)

    for action, handler, text in (
        ("policy", cmd_policy, "set a list's match policy (cost-checked)"),
        ("check", cmd_check, "estimate the alerts a policy would raise"),
    ):
        p = command(cmds, action, handler, help=text)
        p.add_argument("name")
        p.add_argument("--differences", type=int, default=None, help="0-2")
        p.add_argument("--ocr-equivalents", type=int, default=None, help="0-3")
        p.add_argument("--state", choices=("require", "prefer", "ignore"), default=None)
        p.add_argument("--min-fuzzy-length", type=int, default=None)
        p.add_argument("--candidates", action=argparse.BooleanOptionalAction, default=None)
        p.add_argument("--covert", action=argparse.BooleanOptionalAction, default=None)
        p.add_argument("--priority", type=int, default=None, help="0 (highest) to 9")
        _cost_flags(p, force=action == "policy")
        add_why(p)


def _cost_flags(p: argparse.ArgumentParser, *, force: bool = True) -> None:
    p.add_argument("--sample", type=int, default=20_000, help="plates of traffic to estimate on")
    p.add_argument(
        "--reads-per-hour",
        type=float,
        default=None,
        help="read rate for alerts per hour (default: the sample's, else 10,000)",
    )
    if force:
        p.add_argument(
            "--force",
            action="store_true",
            help="activate even if the estimate exceeds policy_alert_ceiling",
        )


def _sample(settings: Settings, args: argparse.Namespace) -> records.PlateSample:
    return traffic_sample(settings, args.sample)


def _print_cost(cost: records.PolicyCost) -> None:
    colour = "bold red" if cost.over_ceiling else "green"
    out.print(f"[{colour}]{cost.describe()}[/]")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    with logged_in_with_redis(settings, args, Acts.HOTLIST_IMPORT) as (door, actor):
        result = service.import_hotlist(
            door,
            actor,
            args.name,
            args.file,
            category=args.category,
            mapping=args.mapping,
            sample=_sample(settings, args),
            force=args.force,
            reads_per_hour=args.reads_per_hour,
        )
    out.print(result.describe())
    if result.cost is not None:
        _print_cost(result.cost)
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    with logged_in_with_redis(settings, args, Acts.HOTLIST_ENTRY_ADD) as (door, actor):
        entry = service.add_entry(
            door,
            actor,
            args.name,
            args.plate,
            reason=args.reason,
            state=args.state,
            case_number=args.case_number,
            expires_at=args.expires,
            category=args.category,
        )
    out.print(f"added {entry.plate} to {args.name} (version {entry.version_from})")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    with logged_in_with_redis(settings, args, Acts.HOTLIST_ENTRY_REMOVE) as (door, actor):
        version = service.remove_entry(
            door, actor, args.name, args.plate, state=args.state, reason=args.reason
        )
    out.print(f"removed {args.plate} from {args.name} (version {version})")
    return 0


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _policy_text(policy: matchers.Policy) -> str:
    return ", ".join(f"{k}={v}" for k, v in policy.to_dict().items())


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.HOTLIST_LIST)
    table = Table("name", "category", "version", "entries", "policy", "updated", "by")
    for h in service.list_hotlists(door, actor):
        table.add_row(
            h.name + (" (covert)" if h.covert else ""),
            h.category,
            str(h.version),
            f"{h.entries:,}",
            _policy_text(h.policy),
            _when(h.updated_at_ms),
            h.updated_by,
        )
    out.print(table)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.HOTLIST_VIEW)
    page = service.view_hotlist(
        door, actor, args.name, version=args.version, limit=args.limit or None
    )
    detail = page.detail
    info = detail.info
    out.print(
        f"[bold]{info.name}[/] ({info.category}) version {detail.version} of "
        f"{info.version}; {len(detail.entries):,} entries; policy: "
        f"{_policy_text(info.policy)}"
    )
    table = Table("plate", "state", "reason", "case", "expires", "entered by", "source")
    shown = page.entries
    for e in shown:
        source = f"{e.source}:{e.source_line}" if e.source_line else e.source
        table.add_row(
            e.plate,
            e.state or "",
            e.reason,
            e.case_number or "",
            _when(e.expires_at_ms),
            e.entered_by,
            source,
        )
    out.print(table)
    if len(shown) < len(detail.entries):
        out.print(f"... {len(detail.entries) - len(shown):,} more (--limit 0 shows all)")
    history = Table("version", "change", "when", "by", "source", "entries")
    for c in detail.history:
        history.add_row(
            str(c.version), c.change, _when(c.at_ms), c.by, c.source, f"{c.entry_count:,}"
        )
    out.print(history)
    return 0


def _policy_from_flags(current: matchers.Policy, args: argparse.Namespace) -> matchers.Policy:
    values = current.to_dict()
    for flag in _POLICY_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            values[flag] = value
    return matchers.Policy.from_mapping(values)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.HOTLIST_VIEW)
    cost = service.check_policy(
        door,
        actor,
        args.name,
        lambda current: _policy_from_flags(current, args),
        sample=_sample(settings, args),
        reads_per_hour=args.reads_per_hour,
    )
    _print_cost(cost)
    _print_measured(cost)
    return 1 if cost.over_ceiling else 0


def _print_measured(cost: records.PolicyCost) -> None:
    """Beside the estimate, what dispositions measured: the share of the list's decided hits
    that were confirmed, by match kind."""
    if not cost.measured:
        out.print(f"measured: no hit of {cost.hotlist!r} has been dispositioned yet")
        return
    table = Table(
        "match kind", "decided hits", "confirmed", "rejected", "dismissed", "share confirmed",
        title=f"measured on the dispositions of {cost.hotlist!r}",
    )  # fmt: skip
    for m in cost.measured:
        table.add_row(
            m.match_kind,
            f"{m.decided:,}",
            f"{m.confirmed:,}",
            f"{m.rejected:,}",
            f"{m.dismissed:,}",
            f"{m.share:.1%}",
        )
    out.print(table)


def cmd_policy(args: argparse.Namespace, settings: Settings) -> int:
    with logged_in_with_redis(settings, args, Acts.HOTLIST_POLICY) as (door, actor):
        found = actor.covert.hotlist(door.engine, args.name)  # set_policy refuses if None
        policy = _policy_from_flags(found.policy if found else matchers.Policy(), args)
        cost = service.set_policy(
            door,
            actor,
            args.name,
            policy,
            sample=_sample(settings, args),
            force=args.force,
            reads_per_hour=args.reads_per_hour,
        )
    out.print(f"policy of {args.name} is now: {_policy_text(policy)}")
    if cost is not None:
        _print_cost(cost)
    return 0
