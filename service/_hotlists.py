"""Hotlists as acts: view and list them, create and import lists, add and remove entries, set
and cost a policy.

Viewing a list is an inquiry (justified, audited). Administrators (``hotlists:manage``) create
lists, import them, add and remove any entry and set policies; investigators
(``hotlists:partial``) enter and remove only partial-plate patterns, each with a case number and
an expiry (427.3(d)). Covert lists do not exist for an actor :class:`~service.Covert` does not
allow. Every change is announced on ``plateflow:hotlists:changed`` (when the door has a Redis
client) so running workers reload the list without a restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import matchers
import records
import sinks
from records import Permission as P
from service._acts import Acts
from service._door import Act, Actor, Door
from service._errors import Forbidden, NotFound

__all__ = [
    "HotlistPage",
    "add_entry",
    "check_policy",
    "create_hotlist",
    "import_hotlist",
    "list_hotlists",
    "remove_entry",
    "set_policy",
    "view_hotlist",
]

_PATTERN_CHARS = frozenset("?*[")
T = TypeVar("T")
#: Plates of simulated ordinary traffic a policy's cost is estimated on by default.
POLICY_SAMPLE_SIZE = 10_000


@dataclass(frozen=True)
class HotlistPage:
    """One list as it is (or was, at ``version``), with a page of its entries."""

    detail: records.HotlistDetail
    entries: tuple[records.EntryRecord, ...]


def _notify(door: Door) -> Callable[[str], None] | None:
    if door.redis is None:
        return None
    client = door.redis

    def notify(name: str) -> None:
        client.publish(sinks.HOTLISTS_CHANGED, name)

    return notify


def _change(
    door: Door,
    actor: Actor,
    act: Act,
    change: Callable[..., T],
    *args: Any,
    terms: dict[str, Any],
    **kwargs: Any,
) -> T:
    """Run the records hotlist change ``change(engine, *args, **kwargs)`` as the actor (who
    is recorded as its user), announcing it to the workers, through :meth:`Door.write`."""

    def run() -> T:
        return change(door.engine, *args, user=actor.username, notify=_notify(door), **kwargs)

    return door.write(actor, act, run, terms)


def _visible(door: Door, actor: Actor, act: Act, name: str) -> records.HotlistInfo:
    found = actor.covert.hotlist(door.engine, name)
    if found is None:
        raise door.deny(actor, act, NotFound(f"no hotlist {name!r}", "name"))
    return found


def _partial_only(door: Door, actor: Actor, act: Act, plate: str) -> None:
    if not actor.can(P.HOTLISTS_MANAGE) and not any(ch in _PATTERN_CHARS for ch in plate):
        msg = (
            f"user {actor.username!r} may enter and remove partial-plate patterns only "
            f"(427.3(d)); {plate!r} is a full plate, which needs {P.HOTLISTS_MANAGE!r} "
            "(an administrator)"
        )
        raise door.deny(actor, act, Forbidden(msg))


def list_hotlists(door: Door, actor: Actor) -> list[records.HotlistInfo]:
    """Every hotlist with its live entry count; covert ones only for actors allowed."""
    covert = actor.covert
    return door.read_all(
        actor,
        Acts.HOTLIST_LIST,
        lambda: covert.hotlists(door.engine),
        {"covert_visible": covert.allowed},
    )


def view_hotlist(
    door: Door,
    actor: Actor,
    name: str,
    *,
    version: int | None = None,
    offset: int = 0,
    limit: int | None = 1000,
) -> HotlistPage:
    """The list (or an earlier ``version``), its history and a page of its entries."""

    def run(access: records.AuditedAccess) -> HotlistPage:
        detail = records.get_hotlist(door.engine, name, version=version)
        if not actor.covert.sees(detail.info):
            raise NotFound(f"no hotlist {name!r}", "name")
        stop = None if limit is None else offset + limit
        page = detail.entries[offset:stop]
        access.result_count = len(page)
        return HotlistPage(detail, page)

    return door.read(actor, Acts.HOTLIST_VIEW, run, {"hotlist": name, "version": version})


def create_hotlist(
    door: Door, actor: Actor, name: str, *, category: str, policy: Any = None
) -> records.HotlistInfo:
    terms = {"hotlist": name, "category": category}
    act = Acts.HOTLIST_CREATE
    return _change(
        door,
        actor,
        act,
        records.create_hotlist,
        name,
        category=category,
        policy=policy,
        terms=terms,
    )


def import_hotlist(
    door: Door,
    actor: Actor,
    name: str,
    path: Path,
    *,
    category: str | None = None,
    mapping: str | None = None,
    sample: records.PlateSample | None = None,
    force: bool = False,
    reads_per_hour: float | None = None,
) -> records.ImportResult:
    """Make a CSV file the list's new version (validated first; cost-checked with ``sample``)."""
    if category is None:
        _visible(door, actor, Acts.HOTLIST_IMPORT, name)
    return _change(
        door,
        actor,
        Acts.HOTLIST_IMPORT,
        records.import_hotlist,
        name,
        path,
        category=category,
        mapping=mapping,
        sample=sample,
        ceiling=door.config.policy_alert_ceiling,
        force=force,
        reads_per_hour=reads_per_hour,
        terms={"hotlist": name, "file": str(path), "category": category},
    )


def add_entry(
    door: Door,
    actor: Actor,
    name: str,
    plate: str,
    *,
    reason: str,
    state: str | None = None,
    case_number: str | None = None,
    expires_at: Any = None,
    effective_from: Any = None,
    category: str | None = None,
) -> records.EntryRecord:
    """Add a plate (administrators) or a partial-plate pattern (also investigators). The
    entry belongs to ``case_number``, else the case the justification names."""
    act = Acts.HOTLIST_ENTRY_ADD
    door.admit(actor, act)
    _partial_only(door, actor, act, plate)
    manage = actor.can(P.HOTLISTS_MANAGE)
    if actor.covert.hotlist(door.engine, name) is None and not (manage and category):
        msg = f"no hotlist {name!r}; an administrator can create it with a category"
        raise door.deny(actor, act, NotFound(msg, "name"))
    return _change(
        door,
        actor,
        act,
        records.add_entry,
        name,
        plate,
        reason=reason,
        state=state,
        case_number=case_number or actor.why.case_number,
        expires_at=expires_at,
        effective_from=effective_from,
        category=category if manage else None,
        terms={"hotlist": name, "plate": plate, "state": state, "entry_case_number": case_number},
    )


def remove_entry(
    door: Door,
    actor: Actor,
    name: str,
    plate: str,
    *,
    state: str | None = None,
    reason: str | None = None,
) -> int:
    """Take a plate or pattern off a list; returns the list's new version."""
    act = Acts.HOTLIST_ENTRY_REMOVE
    door.admit(actor, act)
    _partial_only(door, actor, act, plate)
    _visible(door, actor, act, name)
    terms = {"hotlist": name, "plate": plate, "state": state}
    return _change(
        door, actor, act, records.remove_entry, name, plate, state=state, reason=reason, terms=terms
    )


def set_policy(
    door: Door,
    actor: Actor,
    name: str,
    policy: Any,
    *,
    sample: records.PlateSample | None = None,
    force: bool = False,
    reads_per_hour: float | None = None,
) -> records.PolicyCost | None:
    """Set the match policy, estimated on ``sample`` (default: simulated ordinary traffic)
    first: above the ceiling it is refused (:class:`records.PolicyCostError`) unless
    ``force``."""
    act = Acts.HOTLIST_POLICY
    door.admit(actor, act)
    _visible(door, actor, act, name)
    return _change(
        door,
        actor,
        act,
        records.set_policy,
        name,
        policy,
        sample=sample or records.simulated_sample(POLICY_SAMPLE_SIZE),
        ceiling=door.config.policy_alert_ceiling,
        force=force,
        reads_per_hour=reads_per_hour,
        terms={"hotlist": name, "policy": _policy_terms(policy), "force": force},
    )


def _policy_terms(policy: Any) -> Any:
    return policy.to_dict() if isinstance(policy, matchers.Policy) else policy


def check_policy(
    door: Door,
    actor: Actor,
    name: str,
    change: Callable[[matchers.Policy], matchers.Policy],
    *,
    sample: records.PlateSample,
    reads_per_hour: float | None = None,
) -> records.PolicyCost:
    """What share of ``sample`` the list would alert on under ``change(current policy)``,
    with the measured share of its dispositioned hits that were confirmed, by match kind
    (``measured``); it reads the list's entries, so it is an audited view of the list."""

    def run(access: records.AuditedAccess) -> records.PolicyCost:
        live = records.load_hotlist(door.engine, name)
        if not actor.covert.allowed and live.policy.covert:
            raise NotFound(f"no hotlist {name!r}", "name")
        candidate = matchers.Hotlist(
            name=live.name,
            category=live.category,
            policy=change(live.policy),
            entries=live.entries,
            version=live.version,
        )
        access.result_count = len(live.entries)
        cost = records.estimate_policy_cost(
            candidate,
            sample,
            reads_per_hour=reads_per_hour,
            ceiling=door.config.policy_alert_ceiling,
        )
        measured = tuple(records.confirmed_shares(door.engine, name))
        return dataclasses.replace(cost, measured=measured)

    return door.read(actor, Acts.HOTLIST_VIEW, run, {"hotlist": name, "check": True})
