"""Hotlists as records: versioned lists, entries with provenance, policies, change notices.

Every change makes a new version of the list in one transaction: an import replaces the entries
(keeping unchanged ones, so their provenance stays), ``add_entry`` and ``remove_entry`` change
one, ``set_policy`` the policy. A failed change leaves the previous version live. Each version
records who made it, when and from what (file or user), and the change is in the audit log.

After the commit the list name is passed to ``notify`` (the CLI and API publish it on
``plateflow:hotlists:changed``), so running workers reload it without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import matchers
from records._csv import (
    _parse_row,
    normalise_category,
    normalise_entry_text,
    normalise_state,
    parse_hotlist,
    read_policy_file,
    split_policy,
)
from records._errors import (
    ConflictError,
    HotlistImportError,
    NotFoundError,
    RecordsError,
)
from records._hotlist_store import (
    Notify,
    PolicyLike,
    as_policy,
    check_name,
    cost_check,
    create_row,
    entry_values,
    get_hotlist,
    live_rows,
    locked_row,
    new_version,
    notify_change,
    require_row,
    to_entry,
)
from records._hotlist_types import EntryRecord, HotlistInfo, ImportResult
from records._policycost import PlateSample, PolicyCost
from records._schema import hotlist_entries, now_ms, write_tx

log = logging.getLogger(__name__)
_COMPARED = ("plate", "state", "reason", "case_number", "effective_from", "expires_at")
_CHUNK = 1000


def create_hotlist(
    engine: Engine,
    name: str,
    *,
    category: str,
    user: str,
    policy: PolicyLike | None = None,
    notify: Notify | None = None,
) -> HotlistInfo:
    """Create an empty hotlist (version 1). Raises ConflictError if the name is taken."""
    at = now_ms()
    chosen = as_policy(policy, name) or matchers.Policy()
    with write_tx(engine) as conn:
        if locked_row(conn, name) is not None:
            raise ConflictError(f"hotlist {name!r} exists; import into it or pick another name")
        try:
            row = create_row(conn, name, category, chosen, user, at)
        except ValueError as exc:
            raise RecordsError(str(exc)) from exc
        version = new_version(
            conn,
            row,
            change="create",
            source=f"user:{user}",
            detail={"category": row["category"]},
            user=user,
            at=at,
        )
    notify_change(notify, name, version)
    return get_hotlist(engine, name).info


def import_hotlist(
    engine: Engine,
    name: str,
    path: str | Path,
    *,
    user: str,
    category: str | None = None,
    policy: PolicyLike | None = None,
    mapping: str | Mapping[str, str] | None = None,
    notify: Notify | None = None,
    sample: PlateSample | None = None,
    ceiling: float | None = None,
    force: bool = False,
    reads_per_hour: float | None = None,
) -> ImportResult:
    """Make the contents of a hotlist file the new live version of ``name``, atomically.

    Every row is validated first; any bad row raises :class:`HotlistImportError` listing every
    bad line, and nothing changes. The policy is ``policy``, else the file's sibling
    ``<stem>.policy.json``, else the list's current one, else the default. With ``sample`` and
    ``ceiling`` the policy cost is checked first (:class:`PolicyCostError` unless ``force``).
    """
    check_name(name)
    policy_data = (
        read_policy_file(path) if isinstance(path, Path) or "\n" not in str(path) else None
    )
    file_policy, policy_category = split_policy(policy_data, name) if policy_data else (None, None)
    try:
        wanted = normalise_category(category) if category else policy_category
    except ValueError as exc:
        raise HotlistImportError(name, [(0, str(exc))]) from exc
    found, rows, source = parse_hotlist(path, name, mapping, category=wanted)
    at = now_ms()
    with write_tx(engine) as conn:
        row = locked_row(conn, name)
        if row is not None and wanted is None and found is not None and found != row["category"]:
            msg = (
                f"the file's rows say category {found!r} but the hotlist is {row['category']!r}; "
                "pass a category to change it"
            )
            raise HotlistImportError(name, [(0, msg)], source=source)
        final_category = wanted or (row["category"] if row is not None else found)
        if final_category is None:
            msg = (
                "no category: the file has no category column; "
                "pass one (e.g. --category stolen_vehicle)"
            )
            raise HotlistImportError(name, [(0, msg)], source=source)
        chosen = (
            as_policy(policy, name)
            or file_policy
            or (matchers.Policy.from_mapping(row["policy"]) if row is not None else None)
            or matchers.Policy()
        )
        cost = cost_check(
            name,
            final_category,
            chosen,
            [r.to_entry(name, user) for r in rows],
            sample=sample,
            ceiling=ceiling,
            force=force,
            reads_per_hour=reads_per_hour,
        )
        created = row is None
        if row is None:
            row = create_row(conn, name, final_category, chosen, user, at)
        previous = int(row["version"])
        version = previous + 1
        live = {r["entry_key"]: r for r in live_rows(conn, row["id"])}
        to_close: list[int] = []
        to_insert: list[dict[str, Any]] = []
        unchanged = changed = 0
        for parsed in rows:
            values = entry_values(parsed, row["id"], version, source=source, user=user, at=at)
            old = live.pop(parsed.key, None)
            if old is not None and all(old[c] == values[c] for c in _COMPARED):
                unchanged += 1
                continue
            if old is not None:
                changed += 1
                to_close.append(old["id"])
            to_insert.append(values)
        removed = len(live)
        to_close += [r["id"] for r in live.values()]
        for i in range(0, len(to_close), _CHUNK):
            conn.execute(
                sa.update(hotlist_entries)
                .where(hotlist_entries.c.id.in_(to_close[i : i + _CHUNK]))
                .values(version_to=version)
            )
        for i in range(0, len(to_insert), _CHUNK):
            conn.execute(sa.insert(hotlist_entries), to_insert[i : i + _CHUNK])
        detail: dict[str, Any] = {
            "added": len(to_insert) - changed,
            "changed": changed,
            "removed": removed,
            "unchanged": unchanged,
            "category": final_category,
        }
        if cost is not None:
            detail.update(hit_rate=cost.hit_rate, forced=cost.over_ceiling)
        new_version(
            conn,
            row,
            change="import",
            source=source,
            detail=detail,
            user=user,
            at=at,
            values={
                "category": final_category,
                "policy": chosen.to_dict(),
                "covert": bool(chosen.covert),
            },
        )
    result = ImportResult(
        name=name,
        version=version,
        previous_version=previous,
        category=final_category,
        entries=len(rows),
        added=detail["added"],
        changed=changed,
        removed=removed,
        unchanged=unchanged,
        source=source,
        created=created,
        cost=cost,
    )
    log.info(
        "hotlist %s version %d imported from %s by %s: %d entries",
        name,
        version,
        source,
        user,
        len(rows),
    )
    notify_change(notify, name, version)
    return result


def _ms_text(value: int | str | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def add_entry(
    engine: Engine,
    name: str,
    plate_or_pattern: str,
    *,
    user: str,
    reason: str,
    state: str | None = None,
    case_number: str | None = None,
    expires_at: int | str | datetime | None = None,
    effective_from: int | str | datetime | None = None,
    category: str | None = None,
    notify: Notify | None = None,
) -> EntryRecord:
    """Add one plate or partial-plate pattern as a new version of the list.

    Patterns (``?``, ``*``, ``[...]``) need a case number and an expiry (427.3(d)). Times are
    epoch ms, ISO text or datetimes. A missing list is created when ``category`` is given.
    Raises ConflictError if the plate (and state) is already on the list.
    """
    cells = {
        "plate": plate_or_pattern,
        "state": state or "",
        "reason": reason or "",
        "case_number": case_number or "",
        "expires_at": _ms_text(expires_at),
        "effective_from": _ms_text(effective_from),
    }
    try:
        parsed = _parse_row(0, lambda f: cells.get(f, "").strip())
    except ValueError as exc:
        raise RecordsError(f"hotlist {name!r}: {exc}") from exc
    at = now_ms()
    with write_tx(engine) as conn:
        row = locked_row(conn, name)
        if row is None and category:
            try:
                row = create_row(conn, name, category, matchers.Policy(), user, at)
            except ValueError as exc:
                raise RecordsError(str(exc)) from exc
        if row is None:
            row = require_row(conn, name)
        clash = [r for r in live_rows(conn, row["id"]) if r["entry_key"] == parsed.key]
        if clash:
            msg = (
                f"{parsed.plate}{' (' + parsed.state + ')' if parsed.state else ''} is already on "
                f"hotlist {name!r} (entered by {clash[0]['entered_by']}); remove it first"
            )
            raise ConflictError(msg)
        version = int(row["version"]) + 1
        values = entry_values(parsed, row["id"], version, source=f"user:{user}", user=user, at=at)
        conn.execute(sa.insert(hotlist_entries).values(**values))
        new_version(
            conn,
            row,
            change="add",
            source=f"user:{user}",
            user=user,
            at=at,
            detail={
                "entry": parsed.key,
                "case_number": parsed.case_number,
                "pattern": parsed.is_pattern,
            },
        )
        entry = (
            conn.execute(
                sa.select(hotlist_entries).where(
                    hotlist_entries.c.hotlist_id == row["id"],
                    hotlist_entries.c.entry_key == parsed.key,
                    hotlist_entries.c.version_to.is_(None),
                )
            )
            .mappings()
            .one()
        )
        record = EntryRecord.from_row(entry, name)
    notify_change(notify, name, version)
    return record


def remove_entry(
    engine: Engine,
    name: str,
    plate_or_pattern: str,
    *,
    user: str,
    state: str | None = None,
    reason: str | None = None,
    notify: Notify | None = None,
) -> int:
    """Take a plate or pattern off the list (a new version); returns that version.

    If the plate is on the list for several states, ``state`` says which one.
    """
    try:
        plate, _ = normalise_entry_text(plate_or_pattern)
        wanted_state = normalise_state(state)
    except ValueError as exc:
        raise RecordsError(f"hotlist {name!r}: {exc}") from exc
    at = now_ms()
    with write_tx(engine) as conn:
        row = require_row(conn, name)
        hits = [
            r
            for r in live_rows(conn, row["id"])
            if r["plate"] == plate and (wanted_state is None or r["state"] == wanted_state)
        ]
        if not hits:
            raise NotFoundError(f"{plate} is not on hotlist {name!r}")
        if len(hits) > 1:
            states = ", ".join(sorted(str(h["state"]) for h in hits))
            raise ConflictError(
                f"{plate} is on hotlist {name!r} for states {states}; pass the state"
            )
        version = int(row["version"]) + 1
        conn.execute(
            sa.update(hotlist_entries)
            .where(hotlist_entries.c.id == hits[0]["id"])
            .values(version_to=version)
        )
        new_version(
            conn,
            row,
            change="remove",
            source=f"user:{user}",
            user=user,
            at=at,
            detail={"entry": hits[0]["entry_key"], "reason": reason},
        )
    notify_change(notify, name, version)
    return version


def set_policy(
    engine: Engine,
    name: str,
    policy: PolicyLike,
    *,
    user: str,
    notify: Notify | None = None,
    sample: PlateSample | None = None,
    ceiling: float | None = None,
    force: bool = False,
    reads_per_hour: float | None = None,
) -> PolicyCost | None:
    """Make ``policy`` the live policy of ``name`` (a new version).

    With ``sample`` and ``ceiling`` the cost is estimated on the live entries first; over the
    ceiling raises :class:`PolicyCostError` with the figure unless ``force``. Returns the cost.
    """
    chosen = as_policy(policy, name)
    assert chosen is not None
    at = now_ms()
    with write_tx(engine) as conn:
        row = require_row(conn, name)
        entries = [to_entry(r, name) for r in live_rows(conn, row["id"])]
        cost = cost_check(
            name,
            row["category"],
            chosen,
            entries,
            sample=sample,
            ceiling=ceiling,
            force=force,
            reads_per_hour=reads_per_hour,
        )
        detail: dict[str, Any] = {"policy": chosen.to_dict()}
        if cost is not None:
            detail.update(hit_rate=cost.hit_rate, forced=cost.over_ceiling)
        version = new_version(
            conn,
            row,
            change="policy",
            source=f"user:{user}",
            detail=detail,
            user=user,
            at=at,
            values={"policy": chosen.to_dict(), "covert": bool(chosen.covert)},
        )
    notify_change(notify, name, version)
    return cost
