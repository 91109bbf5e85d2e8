"""What dispositions teach: how hits ended, how long verification took, and how often each
list's hits (by match kind) turned out real.

Both the quarterly report and ``plateflow hotlist check`` read the transitions table
(:mod:`records._dispositions`); nothing here writes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from records._dispositions import (
    FINAL_STATES,
    Transition,
    latest_transitions,
    list_transitions,
    states_by_alert,
    transition_from_row,
)
from records._schema import alert_transitions

__all__ = ["DecisionTimes", "HitCount", "HitSummary", "KindShare", "confirmed_shares", "hits"]


@dataclass(frozen=True)
class HitCount:
    """Alerts of one list and match kind that ended in one state (with one reason)."""

    hotlist: str
    match_kind: str
    state: str
    reason: str | None
    alerts: int


@dataclass(frozen=True)
class DecisionTimes:
    """Seconds from a start (the claim, or the verification request) to the decision
    (confirmed or rejected): how many, the median and the 90th percentile."""

    count: int
    median_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class HitSummary:
    """The hits section of the quarterly report."""

    alerts: int
    counts: tuple[HitCount, ...]
    claim_to_decision: DecisionTimes
    verify_to_decision: DecisionTimes
    overdue: int  # decided after the verification deadline

    def by(self, key: str) -> list[tuple[str, int]]:
        """Alerts per ``hotlist``, ``match_kind``, ``state`` or ``reason``, most first."""
        total: Counter[str] = Counter()
        for c in self.counts:
            value = getattr(c, key)
            if key == "reason" and value is None:
                continue
            total[value or "(unknown)"] += c.alerts
        return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))

    def outcomes(self, key: str) -> list[tuple[str, Counter[str]]]:
        """Per ``hotlist`` or ``match_kind`` (most alerts first): alerts by final state."""
        states: dict[str, Counter[str]] = {}
        for c in self.counts:
            states.setdefault(getattr(c, key), Counter())[c.state] += c.alerts
        return [(value, states[value]) for value, _ in self.by(key)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0-1) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _times(values: list[float]) -> DecisionTimes:
    return DecisionTimes(len(values), percentile(values, 0.5), percentile(values, 0.9))


def hits(engine: Engine, *, start_ms: int, end_ms: int) -> HitSummary:
    """How the alerts dispositioned in ``[start_ms, end_ms)`` ended (their last transition in
    the range), and how long their verification took."""
    groups = states_by_alert(list_transitions(engine, start_ms=start_ms, end_ms=end_ms))
    counts: Counter[tuple[str, str, str, str | None]] = Counter()
    claim_times: list[float] = []
    verify_times: list[float] = []
    overdue = 0
    for steps in groups.values():
        final = steps[-1]
        a = final.alert
        counts[(a.hotlist or "(unknown)", a.match_kind, final.state, final.reason)] += 1
        if final.state not in ("confirmed", "rejected"):
            continue
        claims = [t for t in steps if t.state == "claimed" and t.undo_of is None]
        checks = [t for t in steps if t.state == "verifying" and t.undo_of is None]
        if claims:
            claim_times.append((final.at_ms - claims[0].at_ms) / 1000)
        if checks:
            verify_times.append((final.at_ms - checks[-1].at_ms) / 1000)
            deadline = checks[-1].deadline_ms
            if deadline is not None and final.at_ms > deadline:
                overdue += 1
    return HitSummary(
        alerts=len(groups),
        counts=tuple(
            HitCount(h, k, s, r, n)
            for (h, k, s, r), n in sorted(
                counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], -kv[1])
            )
        ),
        claim_to_decision=_times(claim_times),
        verify_to_decision=_times(verify_times),
        overdue=overdue,
    )


@dataclass(frozen=True)
class KindShare:
    """Of one list's decided hits of one match kind: how many were confirmed, rejected and
    dismissed (unconfirmed)."""

    match_kind: str
    confirmed: int
    rejected: int
    dismissed: int

    @property
    def decided(self) -> int:
        return self.confirmed + self.rejected + self.dismissed

    @property
    def share(self) -> float:
        """The measured share of the decided hits that were confirmed."""
        return self.confirmed / self.decided if self.decided else 0.0


def confirmed_shares(engine: Engine, hotlist: str) -> list[KindShare]:
    """Per match kind, the decided hits of ``hotlist`` (current state final) and how they
    ended, over every recorded disposition."""
    query = latest_transitions().where(
        alert_transitions.c.hotlist == hotlist, alert_transitions.c.to_state.in_(FINAL_STATES)
    )
    with engine.connect() as conn:
        finals: list[Transition] = [transition_from_row(r) for r in conn.execute(query).mappings()]
    tally: dict[str, Counter[str]] = {}
    for t in finals:
        tally.setdefault(t.alert.match_kind, Counter())[t.state] += 1
    return [
        KindShare(kind, c["confirmed"], c["rejected"], c["dismissed"])
        for kind, c in sorted(tally.items())
    ]
