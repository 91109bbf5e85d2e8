"""Dispositions as acts (427.3(g)): claim a hit, request its verification, confirm, reject or
dismiss it, undo the last step; read the current states; manage the reason and action lists.

A transition names the alert by its id and its stream id in the alert log (``log_id``), which
the console got with the alert: the act reads the alert from the log (``XRANGE log_id
log_id``; the covert log only for an actor :class:`~service.Covert` allows, so a covert alert
is not found for anybody else), writes the transition in the audited transaction (every
transition is an audited act, allowed or refused), then broadcasts it with ``XADD`` on
:data:`sinks.DISPOSITION_EVENTS` (covert alerts: :data:`sinks.COVERT_DISPOSITION_EVENTS`),
field ``event``, capped like the alert logs. A broadcast lost to a Redis failure after the
commit is repaired by the next snapshot a console takes (:func:`current_dispositions`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import orjson

import records
import sinks
from service._acts import Acts
from service._door import Actor, Door
from service._errors import Invalid, NotFound, ServiceError, as_service_error
from service._window import utc_window

__all__ = [
    "add_disposition_code",
    "current_dispositions",
    "disposition_lists",
    "retire_disposition_code",
    "rules_of",
    "transition",
]


def rules_of(door: Door) -> records.DispositionRules:
    """The deadlines and undo window the door's config sets."""
    c = door.config
    return records.DispositionRules(
        urgent_priority_max=c.urgent_priority_max,
        verify_urgent_s=c.verify_urgent_s,
        verify_routine_s=c.verify_routine_s,
        undo_s=c.disposition_undo_s,
    )


def _logged(door: Door, log: str, log_id: str) -> dict[str, Any] | None:
    entries = door.redis.xrange(log, min=log_id, max=log_id, count=1) or []
    for _, fields in entries:
        payload = fields.get(sinks.ALERT_FIELD) or fields.get("alert")
        return orjson.loads(payload) if payload else None
    return None


def _alert_ref(door: Door, actor: Actor, alert_id: str, log_id: str) -> records.AlertRef | None:
    """The alert at ``log_id`` in the general log, or in the covert one for actors allowed;
    None when there is none (or the actor may not know of it)."""
    logs = [sinks.ALERTS_LOG] + ([sinks.COVERT_LOG] if actor.covert.allowed else [])
    for log in logs:
        alert = _logged(door, log, log_id)
        if alert is None or alert.get("alert_id") != alert_id:
            continue
        hotlist = alert.get("hotlist") or {}
        ms, _ = sinks.parse_stream_id(log_id)
        return records.AlertRef(
            alert_id=alert_id,
            log_id=log_id,
            alert_at_ms=ms,
            hotlist=hotlist.get("name"),
            priority=int(hotlist.get("priority", 9)),
            match_kind=str((alert.get("match") or {}).get("kind", "exact")),
            covert=log == sinks.COVERT_LOG,
        )
    return None


def _broadcast(door: Door, t: records.Transition, event: dict[str, Any]) -> None:
    stream = sinks.COVERT_DISPOSITION_EVENTS if t.alert.covert else sinks.DISPOSITION_EVENTS
    door.redis.xadd(
        stream,
        {"event": orjson.dumps(event)},
        maxlen=door.config.alerts_log_maxlen,
        approximate=True,
    )


def transition(
    door: Door,
    actor: Actor,
    alert_id: str,
    log_id: str,
    to: str,
    *,
    reason: str | None = None,
    reason_text: str | None = None,
    action: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Move the alert ``alert_id`` (at ``log_id`` in its log) to ``to`` (``claimed``,
    ``verifying``, ``confirmed``, ``rejected``, ``dismissed`` or ``undo``); returns its new
    current state as the contract's transition JSON, after it is committed and broadcast.

    Raises :class:`Invalid` (a bad ``to`` or ``log_id``, a missing reason, action or note:
    ``field`` names it), :class:`NotFound` (no such alert in the log, or a covert one the actor
    may not see), :class:`Conflict` (not allowed from the current state, held by another
    user, undo window passed, a concurrent transition won) and :class:`Forbidden`."""
    act = Acts.DISPOSITION
    door.admit(actor, act)
    if to not in records.TARGETS:
        msg = f"to {to!r} is not one of {', '.join(records.TARGETS)}"
        raise door.deny(actor, act, Invalid(msg, "to"))
    try:
        sinks.parse_stream_id(log_id)
    except sinks.SinksError as exc:
        msg = f"log_id {log_id!r} is not a stream id like 1764331200000-0 (the alert's log_id)"
        raise door.deny(actor, act, Invalid(msg, "log_id")) from exc
    if door.redis is None:
        raise AssertionError("dispositions need the door's Redis client")
    ref = _alert_ref(door, actor, alert_id, log_id)
    if ref is None:
        msg = (
            f"no alert {alert_id} at log_id {log_id} in the alert log (a wrong id, or trimmed "
            "from the log)"
        )
        raise door.deny(actor, act, NotFound(msg, "alert_id"))
    terms = {
        "alert": alert_id,
        "log_id": log_id,
        "to": to,
        "hotlist": ref.hotlist,
        "covert": ref.covert,
        "reason": reason,
        "action": action,
    }
    rules = rules_of(door)
    try:
        with door.audited(actor, act, terms) as access:
            made = records.record_transition(
                access.conn,
                ref,
                to,
                user=access.user,
                rules=rules,
                reason=reason,
                reason_text=reason_text,
                action=action,
                note=note,
                client=actor.client,
            )
            access.terms["state"] = made.state
            access.terms["seq"] = made.seq
            access.result_count = 1
    except records.RecordsError as exc:  # audited as failed by the door; answered by kind
        raise _service_error(exc) from exc
    event = made.to_json()
    _broadcast(door, made, event)
    return event


def current_dispositions(
    door: Door, actor: Actor, since_ms: int | None = None
) -> list[dict[str, Any]]:
    """The current state (transition JSON) of every alert logged since ``since_ms`` (default:
    the last 24 hours) that has one; covert alerts only for actors allowed."""
    covert = actor.covert.allowed
    if since_ms is None:
        since_ms = int(datetime.now(timezone.utc).timestamp() * 1000) - 86_400_000

    def run(access: records.AuditedAccess) -> list[dict[str, Any]]:
        # in the audited transaction's own connection: a second one from the pool while this
        # one holds SQLite's write lock can wait forever once many consoles connect at once
        found = records.current_states(access.conn, since_ms=since_ms, covert=covert)
        access.result_count = len(found)
        return [t.to_json() for t in found]

    terms = {"since_ms": since_ms, "covert_visible": covert}
    return door.read(actor, Acts.DISPOSITION_STATES, run, terms)


def since_ms_of(door: Door, actor: Actor, since: datetime | None) -> int:
    """``since`` (aware; default 24 h ago) as epoch ms; a naive or future time is a 422
    naming ``since``."""

    def build() -> int:
        try:
            begin, _ = utc_window(since, None, default_days=1)
        except Invalid as exc:
            raise Invalid(str(exc).replace("start", "since", 1), "since") from exc
        return int(begin.timestamp() * 1000)

    return door.checked(actor, Acts.DISPOSITION_STATES, build)


def disposition_lists(door: Door, actor: Actor) -> records.DispositionLists:
    """The reason and action lists (retired codes flagged)."""

    def run(access: records.AuditedAccess) -> records.DispositionLists:
        found = records.disposition_lists(access.conn)
        access.result_count = len(found.reasons) + len(found.actions)
        return found

    return door.read(actor, Acts.DISPOSITION_LISTS, run)


def add_disposition_code(
    door: Door, actor: Actor, kind: str, code: str, label: str, *, needs_text: bool = False
) -> records.DispositionLists:
    """Add ``code`` to the ``reason`` or ``action`` list (administrators); returns the lists."""
    terms = {"list": kind, "code": code, "label": label, "needs_text": needs_text}

    def run(access: records.AuditedAccess) -> records.DispositionLists:
        records.add_disposition_code(
            access.conn, kind, code, label, by=actor.username, needs_text=needs_text
        )
        return records.disposition_lists(access.conn)

    return _edit(door, actor, run, terms)


def retire_disposition_code(
    door: Door, actor: Actor, kind: str, code: str
) -> records.DispositionLists:
    """Retire ``code`` of the ``reason`` or ``action`` list (administrators)."""

    def run(access: records.AuditedAccess) -> records.DispositionLists:
        records.retire_disposition_code(access.conn, kind, code, by=actor.username)
        return records.disposition_lists(access.conn)

    return _edit(door, actor, run, {"list": kind, "code": code, "retire": True})


def _edit(
    door: Door,
    actor: Actor,
    run: Callable[[records.AuditedAccess], records.DispositionLists],
    terms: dict[str, Any],
) -> records.DispositionLists:
    try:
        return door.read(actor, Acts.DISPOSITION_LISTS_EDIT, run, terms)
    except records.RecordsError as exc:
        raise _service_error(exc) from exc


def _service_error(exc: records.RecordsError) -> ServiceError:
    error = as_service_error(exc)
    assert error is not None  # every records error has a kind
    return error
