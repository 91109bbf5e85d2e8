"""``plateflow hotlist``: import, add, remove, list, show, set the policy, check its cost.

Every change is recorded with who made it (``--by``, default ``os:<login>``) and announced on
``plateflow:hotlists:changed`` so running workers reload the list without a restart. A policy
whose estimated alert share is over ``policy_alert_ceiling`` is refused unless ``--force``.

The ordinary traffic that the cost check uses is the stored reads of the last days, or simulated
traffic on a new install (:func:`plateflow._sampling.traffic_sample`).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

import matchers
import records
import sinks
from plateflow._cli_users import actor, add_actor, engine_of
from plateflow._sampling import traffic_sample
from plateflow.embedded import redis_url
from plateflow.settings import Settings

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


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    hotlist = sub.add_parser(
        "hotlist",
        help="hotlists as records: import, add, remove, list, show, policy, check",
        description="Versioned hotlists with provenance. Changes are atomic and announced to "
        "running workers.",
    )
    cmds = hotlist.add_subparsers(dest="hotlist_command", metavar="ACTION", required=True)

    p = cmds.add_parser(
        "import",
        parents=parents,
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
    add_actor(p)
    p.set_defaults(handler=cmd_import)

    p = cmds.add_parser("add", parents=parents, help="add one plate or partial-plate pattern")
    p.add_argument("name", help="hotlist name")
    p.add_argument("plate", help="plate, or pattern with ? * [..] (needs case number and expiry)")
    p.add_argument("--reason", required=True)
    p.add_argument("--state", default=None)
    p.add_argument("--case-number", default=None)
    p.add_argument("--expires", default=None, help="YYYY-MM-DD or RFC 3339")
    p.add_argument("--category", default=None, help="create the list with this category")
    add_actor(p)
    p.set_defaults(handler=cmd_add)

    p = cmds.add_parser("remove", parents=parents, help="take a plate or pattern off a list")
    p.add_argument("name")
    p.add_argument("plate")
    p.add_argument("--state", default=None)
    p.add_argument("--reason", default=None, help="why (kept with the change)")
    add_actor(p)
    p.set_defaults(handler=cmd_remove)

    p = cmds.add_parser("list", parents=parents, help="list the hotlists")
    p.set_defaults(handler=cmd_list)

    p = cmds.add_parser("show", parents=parents, help="show a list's entries and history")
    p.add_argument("name")
    p.add_argument("--version", type=int, default=None, help="an older version")
    p.add_argument("--limit", type=int, default=50, help="entries shown (0 for all)")
    p.set_defaults(handler=cmd_show)

    for action, text in (
        ("policy", "set a list's match policy (cost-checked)"),
        ("check", "estimate the alerts a policy would raise"),
    ):
        p = cmds.add_parser(action, parents=parents, help=text)
        p.add_argument("name")
        p.add_argument("--differences", type=int, default=None, help="0-2")
        p.add_argument("--ocr-equivalents", type=int, default=None, help="0-3")
        p.add_argument("--state", choices=("require", "prefer", "ignore"), default=None)
        p.add_argument("--min-fuzzy-length", type=int, default=None)
        p.add_argument("--candidates", action=argparse.BooleanOptionalAction, default=None)
        p.add_argument("--covert", action=argparse.BooleanOptionalAction, default=None)
        p.add_argument("--priority", type=int, default=None, help="0 (highest) to 9")
        _cost_flags(p, force=action == "policy")
        if action == "policy":
            add_actor(p)
        p.set_defaults(handler=cmd_policy if action == "policy" else cmd_check)


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


@contextlib.contextmanager
def publisher(settings: Settings) -> Iterator[Callable[[str], None]]:
    """A notify callable that publishes on ``plateflow:hotlists:changed``."""
    with redis_url(settings, "api") as url:
        client = redis.Redis.from_url(url)

        def notify(name: str) -> None:
            client.publish(sinks.HOTLISTS_CHANGED, name)

        try:
            yield notify
        finally:
            client.close()


def _sample(settings: Settings, args: argparse.Namespace) -> records.PlateSample:
    return traffic_sample(settings, args.sample)


def _print_cost(cost: records.PolicyCost) -> None:
    colour = "bold red" if cost.over_ceiling else "green"
    out.print(f"[{colour}]{cost.describe()}[/]")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    with publisher(settings) as notify:
        result = records.import_hotlist(
            engine_of(settings),
            args.name,
            args.file,
            user=actor(args),
            category=args.category,
            mapping=args.mapping,
            notify=notify,
            sample=_sample(settings, args),
            ceiling=settings.policy_alert_ceiling,
            force=args.force,
            reads_per_hour=args.reads_per_hour,
        )
    out.print(result.describe())
    if result.cost is not None:
        _print_cost(result.cost)
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    with publisher(settings) as notify:
        entry = records.add_entry(
            engine_of(settings),
            args.name,
            args.plate,
            user=actor(args),
            reason=args.reason,
            state=args.state,
            case_number=args.case_number,
            expires_at=args.expires,
            category=args.category,
            notify=notify,
        )
    out.print(f"added {entry.plate} to {args.name} (version {entry.version_from})")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    with publisher(settings) as notify:
        version = records.remove_entry(
            engine_of(settings),
            args.name,
            args.plate,
            user=actor(args),
            state=args.state,
            reason=args.reason,
            notify=notify,
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
    table = Table("name", "category", "version", "entries", "policy", "updated", "by")
    for h in records.list_hotlists(engine_of(settings)):
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
    detail = records.get_hotlist(engine_of(settings), args.name, version=args.version)
    info = detail.info
    out.print(
        f"[bold]{info.name}[/] ({info.category}) version {detail.version} of "
        f"{info.version}; {len(detail.entries):,} entries; policy: "
        f"{_policy_text(info.policy)}"
    )
    table = Table("plate", "state", "reason", "case", "expires", "entered by", "source")
    shown = detail.entries if args.limit == 0 else detail.entries[: args.limit]
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
    engine = engine_of(settings)
    live = records.load_hotlist(engine, args.name)
    policy = _policy_from_flags(live.policy, args)
    candidate = matchers.Hotlist(
        name=live.name,
        category=live.category,
        policy=policy,
        entries=live.entries,
        version=live.version,
    )
    cost = records.estimate_policy_cost(
        candidate,
        _sample(settings, args),
        reads_per_hour=args.reads_per_hour,
        ceiling=settings.policy_alert_ceiling,
    )
    _print_cost(cost)
    return 1 if cost.over_ceiling else 0


def cmd_policy(args: argparse.Namespace, settings: Settings) -> int:
    engine = engine_of(settings)
    current = records.get_hotlist(engine, args.name).info.policy
    policy = _policy_from_flags(current, args)
    with publisher(settings) as notify:
        cost = records.set_policy(
            engine,
            args.name,
            policy,
            user=actor(args),
            notify=notify,
            sample=_sample(settings, args),
            ceiling=settings.policy_alert_ceiling,
            force=args.force,
            reads_per_hour=args.reads_per_hour,
        )
    out.print(f"policy of {args.name} is now: {_policy_text(policy)}")
    if cost is not None:
        _print_cost(cost)
    return 0
