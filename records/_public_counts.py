"""Counts over the records for the public transparency page (427.2.1(g)), grouped in SQL.

Every function returns counts only: no row of the audit log, a release, a purge or a
disposition leaves here, so the public figures cannot carry a plate, a name or a case number
by construction. Times are grouped by UTC day (``ts // 86_400_000``, integer division on both
SQLite and PostgreSQL); the caller folds days into months and applies the minimum cell size.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from records._dispositions import FINAL_STATES
from records._schema import (
    alert_transitions,
    audit_log,
    purge_records,
    release_decisions,
    release_fulfilments,
    release_requests,
)

__all__ = [
    "DAY_MS",
    "PurgeTotals",
    "ReleaseTotals",
    "SearchCount",
    "disposition_counts",
    "last_audit_event",
    "purge_totals",
    "release_totals",
    "search_counts",
]

DAY_MS = 86_400_000
#: A later page of a search already counted: its audit terms say ``"cursor":true`` (canonical
#: JSON, no spaces; a value inside another string would carry escaped quotes instead).
_LATER_PAGE = '%"cursor":true%'
#: The second record of a search that scanned outside the transaction (its outcome, linked to
#: the intent already counted): ``"stage":"result"`` in its terms.
_OUTCOME = '%"stage":"result"%'


@dataclass(frozen=True)
class SearchCount:
    """Searches of one UTC day, audit action, justification kind (``case``, ``event``,
    ``description`` or ``none``) and outcome (``allowed``, or ``refused`` for denied and
    failed attempts)."""

    day: int
    action: str
    justification: str
    outcome: str
    count: int


def _justification() -> Any:
    def given(column: Any) -> Any:
        return sa.func.coalesce(column, "") != ""

    return sa.case(
        (given(audit_log.c.case_number), "case"),
        (given(audit_log.c.event_number), "event"),
        (given(audit_log.c.description), "description"),
        else_="none",
    )


def search_counts(engine: Engine, actions: Collection[str], start_ms: int) -> list[SearchCount]:
    """Searches (audit records of ``actions``) since ``start_ms``: one per inquiry, so neither
    the later pages of a paged search nor the outcome record of a scan (its intent is the
    inquiry) are counted again."""
    day = (audit_log.c.ts_ms // DAY_MS).label("day")
    why = _justification().label("why")
    outcome = sa.case((audit_log.c.outcome == "allowed", "allowed"), else_="refused")
    query = (
        sa.select(day, audit_log.c.action, why, outcome.label("outcome"), sa.func.count())
        .where(
            audit_log.c.action.in_(list(actions)),
            audit_log.c.ts_ms >= start_ms,
            audit_log.c.terms.not_like(_LATER_PAGE),
            audit_log.c.terms.not_like(_OUTCOME),
        )
        .group_by(day, audit_log.c.action, why, outcome)
    )
    with engine.connect() as conn:
        return [SearchCount(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in conn.execute(query)]


@dataclass(frozen=True)
class ReleaseTotals:
    """Release requests (427.7) ever recorded, and how many were approved, denied and
    fulfilled."""

    requested: int
    approved: int
    denied: int
    fulfilled: int


def release_totals(engine: Engine) -> ReleaseTotals:
    with engine.connect() as conn:
        requested = conn.execute(sa.select(sa.func.count()).select_from(release_requests))
        decided = conn.execute(
            sa.select(release_decisions.c.approved, sa.func.count()).group_by(
                release_decisions.c.approved
            )
        )
        by_verdict = {bool(approved): int(n) for approved, n in decided}
        fulfilled = conn.execute(sa.select(sa.func.count()).select_from(release_fulfilments))
        return ReleaseTotals(
            int(requested.scalar_one()),
            by_verdict.get(True, 0),
            by_verdict.get(False, 0),
            int(fulfilled.scalar_one()),
        )


@dataclass(frozen=True)
class PurgeTotals:
    """Purges of stored reads (427.4): partitions purged, reads purged, the last one's time."""

    partitions: int
    reads: int
    last_ms: int | None


def purge_totals(engine: Engine) -> PurgeTotals:
    query = sa.select(
        sa.func.count(), sa.func.coalesce(sa.func.sum(purge_records.c.rows), 0),
        sa.func.max(purge_records.c.purged_at),
    )  # fmt: skip
    with engine.connect() as conn:
        count, rows, last = conn.execute(query).one()
    return PurgeTotals(int(count), int(rows), None if last is None else int(last))


def disposition_counts(
    engine: Engine, start_ms: int, *, hidden_hotlists: Collection[str] = ()
) -> list[tuple[int, str, int]]:
    """Alerts decided since ``start_ms`` as ``(UTC day of the decision, final state, count)``:
    each alert counted once, by its current state when that is final (confirmed, rejected,
    dismissed), never a covert one nor one of ``hidden_hotlists``.

    The one place the public page reads dispositions: when the disposition model changes,
    only this function changes."""
    t = alert_transitions
    newest = (
        sa.select(t.c.alert_id, sa.func.max(t.c.seq).label("seq")).group_by(t.c.alert_id).subquery()
    )
    day = (t.c.at // DAY_MS).label("day")
    query = (
        sa.select(day, t.c.to_state, sa.func.count())
        .join(newest, sa.and_(t.c.alert_id == newest.c.alert_id, t.c.seq == newest.c.seq))
        .where(t.c.at >= start_ms, t.c.to_state.in_(FINAL_STATES), sa.not_(t.c.covert))
        .group_by(day, t.c.to_state)
    )
    if hidden_hotlists:
        query = query.where(
            sa.or_(t.c.hotlist.is_(None), t.c.hotlist.not_in(list(hidden_hotlists)))
        )
    with engine.connect() as conn:
        return [(int(d), str(outcome), int(n)) for d, outcome, n in conn.execute(query)]


def last_audit_event(engine: Engine, action: str) -> tuple[int, Mapping[str, Any]] | None:
    """The time and terms of the newest allowed audit record of ``action`` (None if none)."""
    query = (
        sa.select(audit_log.c.ts_ms, audit_log.c.terms)
        .where(audit_log.c.action == action, audit_log.c.outcome == "allowed")
        .order_by(audit_log.c.seq.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    terms = json.loads(row.terms)
    return int(row.ts_ms), terms if isinstance(terms, dict) else {}
