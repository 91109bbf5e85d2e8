"""Alert dispositions (427.3(g)): the state machine of a hit, one append-only row per transition.

A hit moves ``new -> claimed -> verifying -> confirmed | rejected | dismissed``:

* ``new -> claimed``: a dispatcher takes the hit; others see who holds it and cannot act on it;
* ``claimed -> verifying``: the NCIC/CLETS confirmation is requested; the transition carries its
  deadline (``verify_urgent_s`` for lists of priority ``<= urgent_priority_max``, else
  ``verify_routine_s``);
* ``claimed | verifying -> confirmed`` (needs the action taken), ``rejected`` (needs a reason;
  a reason such as ``other`` needs its text) or ``dismissed`` (kept as unconfirmed);
* ``undo``: the user who made the last transition takes it back within ``undo_s`` seconds,
  with a note; the hit returns to the state before it. An undo is not undone.

Claiming first is required: a hit is never decided by someone who did not hold it, so two
consoles cannot decide the same hit at once. The current state of an alert is its transition
with the highest ``seq``; ``(alert_id, seq)`` is unique, so of two transitions from the same
state exactly one is recorded and the other gets :class:`ConflictError` naming the winner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._audit import iso_utc
from records._disposition_lists import DispositionLists, disposition_lists
from records._errors import AccessDenied, ConflictError, DispositionError
from records._people import User, current_training, today_utc
from records._schema import alert_transitions, connection, hotlists, in_window, now_ms

__all__ = [
    "FINAL_STATES",
    "STATES",
    "TARGETS",
    "AlertRef",
    "DispositionRules",
    "Transition",
    "current_state",
    "current_states",
    "list_transitions",
    "record_transition",
]

STATES = ("new", "claimed", "verifying", "confirmed", "rejected", "dismissed")
FINAL_STATES = ("confirmed", "rejected", "dismissed")
#: What a transition may ask for: a state, or ``undo``.
TARGETS = ("claimed", "verifying", *FINAL_STATES, "undo")
#: state -> the states it may move to.
_NEXT: Mapping[str, frozenset[str]] = {
    "new": frozenset({"claimed"}),
    "claimed": frozenset({"verifying", *FINAL_STATES}),
    "verifying": frozenset(FINAL_STATES),
}


@dataclass(frozen=True)
class DispositionRules:
    """Deadlines and the undo window, in seconds (settings ``PLATEFLOW_VERIFY_URGENT_S``,
    ``PLATEFLOW_VERIFY_ROUTINE_S``, ``PLATEFLOW_URGENT_PRIORITY_MAX``,
    ``PLATEFLOW_DISPOSITION_UNDO_S``)."""

    urgent_priority_max: int = 1
    verify_urgent_s: int = 600
    verify_routine_s: int = 3600
    undo_s: int = 300

    def deadline_s(self, priority: int) -> int:
        """Seconds to confirm a hit of a list of ``priority`` (0 highest)."""
        urgent = priority <= self.urgent_priority_max
        return self.verify_urgent_s if urgent else self.verify_routine_s


@dataclass(frozen=True)
class AlertRef:
    """What a transition keeps of the alert, as its log holds it."""

    alert_id: str
    log_id: str
    alert_at_ms: int
    hotlist: str | None
    priority: int
    match_kind: str
    covert: bool


@dataclass(frozen=True)
class Transition:
    """One transition; the last one of an alert is its current state."""

    alert: AlertRef
    hotlist_id: int | None
    seq: int
    from_state: str
    state: str
    undo_of: int | None
    by: str
    at_ms: int
    reason: str | None
    reason_text: str | None
    action: str | None
    note: str | None
    deadline_ms: int | None
    claimed_by: str | None

    def to_json(self) -> dict[str, Any]:
        """The transition (and current-state) JSON of the console contract."""
        a = self.alert
        return {
            "alert_id": a.alert_id,
            "log_id": a.log_id,
            "hotlist_id": self.hotlist_id,
            "hotlist": a.hotlist,
            "priority": a.priority,
            "match_kind": a.match_kind,
            "covert": a.covert,
            "state": self.state,
            "from": self.from_state,
            "seq": self.seq,
            "undo_of": self.undo_of,
            "by": self.by,
            "at": iso_utc(self.at_ms),
            "reason": self.reason,
            "reason_text": self.reason_text,
            "action": self.action,
            "note": self.note,
            "deadline_at": iso_utc(self.deadline_ms) if self.deadline_ms is not None else None,
            "claimed_by": self.claimed_by,
        }


def transition_from_row(r: Mapping[Any, Any]) -> Transition:
    """The transition of one ``alert_transitions`` row."""
    alert = AlertRef(
        r["alert_id"],
        r["log_id"],
        r["alert_at"],
        r["hotlist"],
        r["priority"],
        r["match_kind"],
        bool(r["covert"]),
    )
    return Transition(
        alert,
        r["hotlist_id"],
        r["seq"],
        r["from_state"],
        r["to_state"],
        r["undo_of"],
        r["username"],
        r["at"],
        r["reason_code"],
        r["reason_text"],
        r["action_code"],
        r["note"],
        r["deadline_at"],
        r["claimed_by"],
    )


def _last_two(conn: Connection, alert_id: str) -> list[Transition]:
    query = (
        sa.select(alert_transitions)
        .where(alert_transitions.c.alert_id == alert_id)
        .order_by(alert_transitions.c.seq.desc())
        .limit(2)
    )
    return [transition_from_row(r) for r in conn.execute(query).mappings()]


def current_state(conn: Engine | Connection, alert_id: str) -> Transition | None:
    """The alert's last transition, or None while it is ``new``."""
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return current_state(c, alert_id)
    found = _last_two(conn, alert_id)
    return found[0] if found else None


def latest_transitions(since_ms: int | None = None) -> sa.Select[Any]:
    """The last transition of every alert (its current state) logged at or after
    ``since_ms``, to narrow further."""
    newest = sa.select(
        alert_transitions.c.alert_id, sa.func.max(alert_transitions.c.seq).label("top")
    )
    newest = in_window(newest, alert_transitions.c.alert_at, since_ms, None)
    top = newest.group_by(alert_transitions.c.alert_id).subquery()
    return sa.select(alert_transitions).join(
        top,
        sa.and_(
            alert_transitions.c.alert_id == top.c.alert_id, alert_transitions.c.seq == top.c.top
        ),
    )


def current_states(
    engine_or_conn: Engine | Connection, *, since_ms: int | None = None, covert: bool = False
) -> list[Transition]:
    """The current state of every alert logged at or after ``since_ms`` that has one, oldest
    alert first; covert alerts only when ``covert``. Given a connection, reads in its
    transaction (an audited read must not take a second pooled connection while it holds the
    write lock: under load every connection may be waiting for that lock)."""
    query = latest_transitions(since_ms)
    if not covert:
        query = query.where(alert_transitions.c.covert.is_(False))
    query = query.order_by(alert_transitions.c.alert_at, alert_transitions.c.alert_id)
    with connection(engine_or_conn) as conn:
        return [transition_from_row(r) for r in conn.execute(query).mappings()]


def list_transitions(
    engine: Engine, *, start_ms: int | None = None, end_ms: int | None = None
) -> list[Transition]:
    """Every transition made in ``[start_ms, end_ms)``, by alert, then in order."""
    query = in_window(sa.select(alert_transitions), alert_transitions.c.at, start_ms, end_ms)
    query = query.order_by(alert_transitions.c.alert_id, alert_transitions.c.seq)
    with engine.connect() as conn:
        return [transition_from_row(r) for r in conn.execute(query).mappings()]


def _holder_conflict(alert_id: str, last: Transition, username: str) -> ConflictError | None:
    holder = last.claimed_by
    if holder is not None and holder != username:
        return ConflictError(
            f"alert {alert_id} is {last.state} by {holder} since {iso_utc(last.at_ms)}; only "
            f"{holder} can act on it (or undo their claim)"
        )
    return None


def _code(
    lists: DispositionLists, kind: str, code: str | None, text: str | None, to: str
) -> tuple[str | None, str | None]:
    """The chosen code and its text, checked against the list."""
    field = "reason" if kind == "reason" else "action"
    if code is None:
        return None, text
    found = lists.find(kind, code)
    if found is None or found.retired:
        known = ", ".join(c.code for c in lists.of(kind) if not c.retired)
        raise DispositionError(f"{field} {code!r} is not on the {kind} list ({known})", field)
    if found.needs_text and not text:
        msg = f"{field} {code!r} needs reason_text saying what it was ({to})"
        raise DispositionError(msg, "reason_text")
    return code, text


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text[:2000] or None


def _check_user(conn: Connection, user: User, at: int) -> None:
    if not current_training(conn, user.id, today_utc(at)):
        raise AccessDenied(
            f"user {user.username!r} has no current ALPR training on record (427.3(f)); "
            "a hit is dispositioned by trained members only",
            reason="untrained",
        )


def record_transition(
    conn: Connection,
    alert: AlertRef,
    to: str,
    *,
    user: User,
    rules: DispositionRules,
    hotlist_id: int | None = None,
    reason: str | None = None,
    reason_text: str | None = None,
    action: str | None = None,
    note: str | None = None,
    client: str | None = None,
    at_ms: int | None = None,
) -> Transition:
    """Move ``alert`` to ``to`` (a state of :data:`TARGETS`, or ``undo``) as ``user``, in the
    caller's transaction (the audited one). Raises :class:`DispositionError` (a missing reason,
    action or note; ``field`` names it), :class:`ConflictError` (not allowed from the current
    state, held by someone else, the undo window passed, or a concurrent transition won) and
    :class:`AccessDenied` (untrained)."""
    at = now_ms() if at_ms is None else at_ms
    if to not in TARGETS:
        raise DispositionError(f"to {to!r} is not one of {', '.join(TARGETS)}", "to")
    _check_user(conn, user, at)
    reason_text, note = _clean(reason_text), _clean(note)
    last_two = _last_two(conn, alert.alert_id)
    last = last_two[0] if last_two else None
    state = last.state if last else "new"
    hotlist_id = hotlist_id if hotlist_id is not None else _hotlist_id(conn, alert.hotlist)
    values: dict[str, Any]
    if to == "undo":
        values = _undo(alert.alert_id, last_two, user.username, note, at, rules)
    else:
        if last is not None and (conflict := _holder_conflict(alert.alert_id, last, user.username)):
            raise conflict
        if to not in _NEXT.get(state, frozenset()):
            hint = " (claim it first)" if state == "new" else ""
            if state in FINAL_STATES:
                hint = f" (it is final; {last.by if last else '?'} may undo it within the window)"
            msg = f"alert {alert.alert_id} is {state}: it cannot move to {to}{hint}"
            raise ConflictError(msg)
        lists = disposition_lists(conn)
        reason, reason_text = _code(lists, "reason", reason, reason_text, to)
        action, _ = _code(lists, "action", action, None, to)
        if to == "rejected" and reason is None:
            raise DispositionError("a rejection needs a reason from the reason list", "reason")
        if to == "confirmed" and action is None:
            raise DispositionError("a confirmation needs the action taken", "action")
        deadline = at + rules.deadline_s(alert.priority) * 1000 if to == "verifying" else None
        values = {
            "to_state": to,
            "undo_of": None,
            "reason_code": reason,
            "reason_text": reason_text,
            "action_code": action,
            "note": note,
            "deadline_at": deadline,
            "claimed_by": user.username if to in ("claimed", "verifying") else None,
        }
    row = {
        "alert_id": alert.alert_id,
        "seq": (last.seq if last else 0) + 1,
        "log_id": alert.log_id,
        "alert_at": alert.alert_at_ms,
        "hotlist_id": hotlist_id,
        "hotlist": alert.hotlist,
        "priority": alert.priority,
        "match_kind": alert.match_kind,
        "covert": alert.covert,
        "from_state": state,
        "username": user.username,
        "client": client,
        "at": at,
        **values,
    }
    _insert_one(conn, row, alert.alert_id, user.username)
    return transition_from_row(row)


def _undo(
    alert_id: str,
    last_two: list[Transition],
    username: str,
    note: str | None,
    at: int,
    rules: DispositionRules,
) -> dict[str, Any]:
    if not last_two:
        raise ConflictError(f"alert {alert_id} is new: there is nothing to undo")
    last = last_two[0]
    if last.undo_of is not None:
        raise ConflictError(f"alert {alert_id}: the last transition is an undo, which stays")
    if last.by != username:
        raise ConflictError(f"alert {alert_id}: only {last.by}, who made it {last.state}, can undo")
    if at > last.at_ms + rules.undo_s * 1000:
        raise ConflictError(
            f"alert {alert_id}: the undo window of {rules.undo_s} s after {iso_utc(last.at_ms)} "
            "has passed"
        )
    if not note:
        raise DispositionError("an undo needs a note saying why", "note")
    before = last_two[1] if len(last_two) > 1 else None
    return {
        "to_state": last.from_state,
        "undo_of": last.seq,
        "reason_code": None,
        "reason_text": None,
        "action_code": None,
        "note": note,
        "deadline_at": before.deadline_ms if before else None,
        "claimed_by": before.claimed_by if before else None,
    }


def _hotlist_id(conn: Connection, name: str | None) -> int | None:
    if name is None:
        return None
    found = conn.execute(sa.select(hotlists.c.id).where(hotlists.c.name == name)).scalar()
    return None if found is None else int(found)


def _insert_one(conn: Connection, row: dict[str, Any], alert_id: str, username: str) -> None:
    """Insert the transition; if another one with the same seq won the race, say whose it is."""
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(alert_transitions).values(**row))
    except sa.exc.IntegrityError as exc:
        winner = current_state(conn, alert_id)
        who = f"{winner.by} made it {winner.state}" if winner else "another transition won"
        msg = f"alert {alert_id} changed while {username} acted on it: {who}; reload and retry"
        raise ConflictError(msg) from exc


def states_by_alert(transitions: Iterable[Transition]) -> dict[str, list[Transition]]:
    """Transitions grouped by alert, each group in order (for reports)."""
    out: dict[str, list[Transition]] = {}
    for t in sorted(transitions, key=lambda t: (t.alert.alert_id, t.seq)):
        out.setdefault(t.alert.alert_id, []).append(t)
    return out
