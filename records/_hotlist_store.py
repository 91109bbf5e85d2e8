"""Storage of hotlists: row helpers shared by the edit functions, and the read side.

A list's entries are rows with a span of versions (``version_from``, ``version_to``); the live
version's entries are the rows whose ``version_to`` is NULL. Reads of one list happen in one
transaction, so a reader sees one version whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import matchers
from records._audit import append_audit
from records._csv import ParsedRow, normalise_category, split_policy
from records._errors import NotFoundError, NotifyError, PolicyCostError, RecordsError
from records._hotlist_types import EntryRecord, HotlistChange, HotlistDetail, HotlistInfo
from records._policycost import PlateSample, PolicyCost, estimate_policy_cost
from records._schema import hotlist_entries, hotlist_versions, hotlists, record_from_row

log = logging.getLogger(__name__)

#: Called with the list name after a change commits (the CLI/API publish it on Redis).
Notify = Callable[[str], None]
PolicyLike = matchers.Policy | Mapping[str, Any]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> None:
    if not _NAME.match(name):
        msg = f"hotlist name {name!r} must be 1-64 letters, digits, '.', '-' or '_'"
        raise RecordsError(msg)


def as_policy(policy: PolicyLike | None, name: str) -> matchers.Policy | None:
    if policy is None or isinstance(policy, matchers.Policy):
        return policy
    return split_policy(policy, name)[0]


def notify_change(notify: Notify | None, name: str, version: int) -> None:
    if notify is None:
        return
    try:
        notify(name)
    except Exception as exc:
        msg = (
            f"hotlist {name!r} version {version} was saved, but the change notice could not be "
            f"published ({exc}); running workers keep the previous version until they reload"
        )
        raise NotifyError(msg) from exc


def locked_row(conn: Connection, name: str) -> Mapping[Any, Any] | None:
    query = sa.select(hotlists).where(hotlists.c.name == name).with_for_update()
    return conn.execute(query).mappings().first()


def require_row(conn: Connection, name: str) -> Mapping[Any, Any]:
    row = locked_row(conn, name)
    if row is None:
        msg = (
            f"no hotlist {name!r}; import a file with `plateflow hotlist import FILE --list {name}`"
        )
        raise NotFoundError(msg)
    return row


def live_rows(conn: Connection, hotlist_id: int) -> list[Mapping[Any, Any]]:
    query = sa.select(hotlist_entries).where(
        hotlist_entries.c.hotlist_id == hotlist_id, hotlist_entries.c.version_to.is_(None)
    )
    return list(conn.execute(query).mappings())


def entry_values(
    row: ParsedRow, hotlist_id: int, version: int, *, source: str, user: str, at: int
) -> dict[str, Any]:
    return {
        "hotlist_id": hotlist_id,
        "entry_key": row.key,
        "plate": row.plate,
        "is_pattern": row.is_pattern,
        "state": row.state,
        "reason": row.reason,
        "case_number": row.case_number,
        "source": source,
        "source_line": row.line or None,
        "entered_by": user,
        "entered_at": at,
        "effective_from": row.effective_from_ms,
        "expires_at": row.expires_at_ms,
        "version_from": version,
        "version_to": None,
    }


def new_version(
    conn: Connection,
    row: Mapping[Any, Any],
    *,
    change: str,
    source: str,
    detail: Mapping[str, Any],
    user: str,
    at: int,
    values: Mapping[str, Any] | None = None,
) -> int:
    """Bump the live version of a locked hotlist and record the change."""
    version = int(row["version"]) + 1
    updates = {"version": version, "updated_by": user, "updated_at": at, **(values or {})}
    conn.execute(sa.update(hotlists).where(hotlists.c.id == row["id"]).values(**updates))
    count = conn.execute(
        sa.select(sa.func.count())
        .select_from(hotlist_entries)
        .where(hotlist_entries.c.hotlist_id == row["id"], hotlist_entries.c.version_to.is_(None))
    ).scalar_one()
    conn.execute(
        sa.insert(hotlist_versions).values(
            hotlist_id=row["id"],
            version=version,
            change=change,
            source=source[:512],
            detail=dict(detail),
            entry_count=count,
            created_by=user,
            created_at=at,
        )
    )
    append_audit(
        conn,
        username=user,
        action=f"hotlist.{change}",
        kind="hotlist",
        at_ms=at,
        terms={"list": row["name"], "version": version, "source": source, **detail},
    )
    return version


def create_row(
    conn: Connection, name: str, category: str, policy: matchers.Policy, user: str, at: int
) -> Mapping[Any, Any]:
    check_name(name)
    conn.execute(
        sa.insert(hotlists).values(
            name=name,
            category=normalise_category(category),
            policy=policy.to_dict(),
            covert=bool(policy.covert),
            version=0,
            created_by=user,
            created_at=at,
            updated_by=user,
            updated_at=at,
        )
    )
    row = locked_row(conn, name)
    assert row is not None
    return row


def cost_check(
    name: str,
    category: str,
    policy: matchers.Policy,
    entries: Sequence[matchers.Entry],
    *,
    sample: PlateSample | None,
    ceiling: float | None,
    force: bool,
    reads_per_hour: float | None,
) -> PolicyCost | None:
    if sample is None or ceiling is None:
        return None
    candidate = matchers.Hotlist(
        name=name, category=category, policy=policy, entries=tuple(entries), version=0
    )
    cost = estimate_policy_cost(candidate, sample, reads_per_hour=reads_per_hour, ceiling=ceiling)
    if cost.over_ceiling and not force:
        raise PolicyCostError(f"refused: {cost.describe()}; narrow the policy or force it")
    return cost


def to_entry(row: Mapping[Any, Any], name: str) -> matchers.Entry:
    return EntryRecord.from_row(row, name).to_entry()


def _info(row: Mapping[Any, Any], count: int) -> HotlistInfo:
    return record_from_row(
        HotlistInfo,
        row,
        policy=matchers.Policy.from_mapping(row["policy"]),
        covert=bool(row["covert"]),
        version=int(row["version"]),
        entries=count,
    )


def list_hotlists(engine: Engine, *, include_covert: bool = True) -> list[HotlistInfo]:
    """Every hotlist with its live entry count, by name."""
    counts = (
        sa.select(hotlist_entries.c.hotlist_id, sa.func.count().label("n"))
        .where(hotlist_entries.c.version_to.is_(None))
        .group_by(hotlist_entries.c.hotlist_id)
        .subquery()
    )
    query = (
        sa.select(hotlists, sa.func.coalesce(counts.c.n, 0).label("n"))
        .outerjoin(counts, counts.c.hotlist_id == hotlists.c.id)
        .order_by(hotlists.c.name)
    )
    if not include_covert:
        query = query.where(hotlists.c.covert.is_(False))
    with engine.connect() as conn:
        return [_info(r, int(r["n"])) for r in conn.execute(query).mappings()]


def _entries_at(conn: Connection, hotlist_id: int, version: int) -> list[Mapping[Any, Any]]:
    query = (
        sa.select(hotlist_entries)
        .where(
            hotlist_entries.c.hotlist_id == hotlist_id,
            hotlist_entries.c.version_from <= version,
            sa.or_(hotlist_entries.c.version_to.is_(None), hotlist_entries.c.version_to > version),
        )
        .order_by(hotlist_entries.c.entry_key)
    )
    return list(conn.execute(query).mappings())


def get_hotlist(engine: Engine, name: str, *, version: int | None = None) -> HotlistDetail:
    """A hotlist with its entries (the live version, or ``version``) and its change history."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(hotlists).where(hotlists.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(f"no hotlist {name!r}")
        wanted = int(row["version"]) if version is None else version
        if not 1 <= wanted <= int(row["version"]):
            raise NotFoundError(
                f"hotlist {name!r} has versions 1 to {row['version']}, not {wanted}"
            )
        entries = [EntryRecord.from_row(r, name) for r in _entries_at(conn, row["id"], wanted)]
        history = _changes(conn, sa.true(), hotlist_id=row["id"])
        live_count = len(live_rows(conn, row["id"])) if version is not None else len(entries)
    return HotlistDetail(
        info=_info(row, live_count), version=wanted, entries=tuple(entries), history=tuple(history)
    )


def load_hotlist(engine: Engine, name: str) -> matchers.Hotlist:
    """The live version of one hotlist, ready for the matcher (what a worker reloads)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(hotlists).where(hotlists.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(f"no hotlist {name!r}")
        entries = tuple(to_entry(r, name) for r in live_rows(conn, row["id"]))
    return matchers.Hotlist(
        name=name,
        category=row["category"],
        policy=matchers.Policy.from_mapping(row["policy"]),
        entries=entries,
        version=int(row["version"]),
    )


def load_hotlists(engine: Engine) -> list[matchers.Hotlist]:
    """The live version of every hotlist, read in one transaction (a consistent snapshot)."""
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(hotlists).order_by(hotlists.c.name)).mappings())
        by_id: dict[int, list[matchers.Entry]] = {r["id"]: [] for r in rows}
        names = {r["id"]: r["name"] for r in rows}
        query = sa.select(hotlist_entries).where(hotlist_entries.c.version_to.is_(None))
        for entry in conn.execute(query).mappings():
            by_id[entry["hotlist_id"]].append(to_entry(entry, names[entry["hotlist_id"]]))
    return [
        matchers.Hotlist(
            name=r["name"],
            category=r["category"],
            policy=matchers.Policy.from_mapping(r["policy"]),
            entries=tuple(by_id[r["id"]]),
            version=int(r["version"]),
        )
        for r in rows
    ]


def _changes(conn: Connection, where: Any, *, hotlist_id: int | None = None) -> list[HotlistChange]:
    query = (
        sa.select(hotlist_versions, hotlists.c.name)
        .join(hotlists, hotlists.c.id == hotlist_versions.c.hotlist_id)
        .where(where)
        .order_by(hotlist_versions.c.created_at, hotlists.c.name, hotlist_versions.c.version)
    )
    if hotlist_id is not None:
        query = query.where(hotlist_versions.c.hotlist_id == hotlist_id)
    return [HotlistChange.from_row(r) for r in conn.execute(query).mappings()]


def hotlist_changes(
    engine: Engine, *, start_ms: int | None = None, end_ms: int | None = None
) -> list[HotlistChange]:
    """Every version made in ``[start_ms, end_ms)``, oldest first: who changed what and how."""
    where: Any = sa.true()
    if start_ms is not None:
        where = sa.and_(where, hotlist_versions.c.created_at >= start_ms)
    if end_ms is not None:
        where = sa.and_(where, hotlist_versions.c.created_at < end_ms)
    with engine.connect() as conn:
        return _changes(conn, where)
