"""Per-client counters over a time window: the login throttle and aggregated anonymous refusals.

A client (an address, or the CLI's ``cli:user@host``) has one row per scope in
``client_counters``: when its window started, how many events fell in it, and capped tallies of
what they were. :func:`bump` counts one event atomically (the row is created if missing, then
locked: ``SELECT ... FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so parallel requests
never lose a count.

Anonymous refusals (no session, an expired one, a throttled login) would let anybody grow the
audit log without bound. :func:`note_anonymous` writes the first refusal of a client's window in
full (terms capped) and only counts the rest; when the window is over, one summary record says
how many more there were and of what kind (:func:`flush_anonymous` writes the summaries of every
finished window, e.g. at each login). A flood thus adds at most two records per client and
window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from records._audit import append_audit, iso_utc
from records._errors import RecordsError
from records._schema import client_counters, now_ms, write_tx

#: Distinct values tallied per counter (the rest go under ``"(other)"``), and the longest text kept.
MAX_TALLIES = 10
MAX_TEXT = 200
ANONYMOUS = "(anonymous)"
#: The scopes of :func:`bump`.
LOGIN_SCOPE = "login"
ANONYMOUS_SCOPE = "anonymous"
#: The login throttle counts a client's failed logins per minute.
LOGIN_WINDOW_S = 60


@dataclass(frozen=True)
class Window:
    """A counter after :func:`bump`: the events in the current window (this one included), when
    the window started, and the previous window when this event opened a new one."""

    count: int
    start_ms: int
    previous_count: int = 0
    previous_start_ms: int = 0
    previous_detail: Mapping[str, Any] | None = None


def client_key(client: str | None) -> str:
    return (client or "(unknown)")[:64]


def _tally(detail: Mapping[str, Any], tallies: Mapping[str, str]) -> dict[str, Any]:
    out = {k: dict(v) for k, v in detail.items()}
    for name, value in tallies.items():
        counts = out.setdefault(name, {})
        key = value[:MAX_TEXT] if value in counts or len(counts) < MAX_TALLIES else "(other)"
        counts[key] = counts.get(key, 0) + 1
    return out


#: INSERT ... ON CONFLICT DO NOTHING of each supported database.
_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _ensure_row(conn: Connection, scope: str, client: str) -> None:
    values = {"scope": scope, "client": client, "window_start": 0, "count": 0, "detail": {}}
    insert = _INSERTS.get(conn.dialect.name)
    if insert is None:
        msg = f"records support SQLite and PostgreSQL, not {conn.dialect.name}"
        raise RecordsError(msg)
    stmt = insert(client_counters).values(**values).on_conflict_do_nothing()
    conn.execute(stmt)


def bump(
    conn: Connection,
    scope: str,
    client: str | None,
    *,
    window_s: int,
    at_ms: int,
    tallies: Mapping[str, str] | None = None,
    by: int = 1,
) -> Window:
    """Count ``by`` events of ``client`` in ``scope`` at ``at_ms`` (``by=-1`` gives one back)
    in the caller's write transaction; a window lasts ``window_s`` seconds from its first
    event."""
    key = client_key(client)
    _ensure_row(conn, scope, key)
    where = (client_counters.c.scope == scope, client_counters.c.client == key)
    row = conn.execute(sa.select(client_counters).where(*where).with_for_update()).mappings().one()
    if row["window_start"] + window_s * 1000 > at_ms:
        count = max(0, row["count"] + by)
        detail = _tally(row["detail"], tallies or {}) if by > 0 else row["detail"]
        conn.execute(sa.update(client_counters).where(*where).values(count=count, detail=detail))
        return Window(count, row["window_start"])
    count = max(0, by)
    detail = _tally({}, tallies or {}) if by > 0 else {}
    conn.execute(
        sa.update(client_counters)
        .where(*where)
        .values(window_start=at_ms, count=count, detail=detail)
    )
    return Window(count, at_ms, row["count"], row["window_start"], row["detail"])


def window_retry_s(window: Window, *, window_s: int, at_ms: int) -> int:
    """Whole seconds until ``window`` ends (at least 1): a 429's ``Retry-After``."""
    return max(1, (window.start_ms + window_s * 1000 - at_ms + 999) // 1000)


def capped_terms(terms: Mapping[str, Any] | None) -> dict[str, Any]:
    """At most :data:`MAX_TALLIES` terms, each text at most :data:`MAX_TEXT` characters (what
    an anonymous caller chose to send must not fill the audit log)."""
    out: dict[str, Any] = {}
    for name, value in list((terms or {}).items())[:MAX_TALLIES]:
        if isinstance(value, Mapping):
            value = capped_terms(value)
        elif not isinstance(value, (int, float, bool)) and value is not None:
            value = str(value)[:MAX_TEXT]
        out[str(name)[:MAX_TEXT]] = value
    return out


def _summary(
    conn: Connection, client: str, count: int, start_ms: int, detail: Any, end: int
) -> None:
    append_audit(
        conn,
        username=ANONYMOUS,
        action="anonymous.refusals",
        kind="login",
        outcome="denied",
        client=client,
        reason=f"{count} more anonymous refusals from this client, counted, not recorded "
        "one by one",
        terms={"refusals": count, "from": iso_utc(start_ms), "to": iso_utc(end), **detail},
    )


def note_anonymous(
    engine: Engine,
    *,
    action: str,
    kind: str,
    outcome: str,
    reason: str | None,
    client: str | None,
    interval_s: int,
    terms: Mapping[str, Any] | None = None,
    case_number: str | None = None,
    event_number: str | None = None,
    description: str | None = None,
    at_ms: int | None = None,
) -> bool:
    """Audit an anonymous refusal, aggregated per client and ``interval_s`` window: the first
    of a window is recorded in full (terms capped; True), the rest only counted (False) and
    summarised in one record once the window is over."""
    at = now_ms() if at_ms is None else at_ms
    tallies = {"actions": action, "reasons": (reason or "").split(":")[0]}
    with write_tx(engine) as conn:
        window = bump(conn, ANONYMOUS_SCOPE, client, window_s=interval_s, at_ms=at, tallies=tallies)
        if window.previous_count > 1 and window.previous_detail is not None:
            _summary(
                conn,
                client_key(client),
                window.previous_count - 1,
                window.previous_start_ms,
                window.previous_detail,
                window.previous_start_ms + interval_s * 1000,
            )
        if window.count != 1:
            return False
        note = f" (more from this client within {interval_s} s are counted in one record)"
        append_audit(
            conn,
            username=ANONYMOUS,
            action=action,
            kind=kind,
            outcome=outcome,
            reason=((reason or "")[:800] + note),
            terms=capped_terms(terms),
            client=client,
            case_number=(case_number or None) and case_number[:64],
            event_number=(event_number or None) and event_number[:64],
            description=(description or None) and description[:MAX_TEXT],
            at_ms=at,
        )
        return True


def flush_anonymous(conn: Connection, *, interval_s: int, at_ms: int) -> int:
    """Write the summary of every anonymous window that is over and counted more than its first
    refusal, and forget the finished windows; the number of summaries written."""
    cut = at_ms - interval_s * 1000
    rows = conn.execute(
        sa.select(client_counters)
        .where(client_counters.c.scope == ANONYMOUS_SCOPE, client_counters.c.window_start <= cut)
        .order_by(client_counters.c.client)  # one lock order: concurrent sweeps cannot deadlock
        .with_for_update()
    ).mappings()
    written = 0
    for row in list(rows):
        if row["count"] > 1:
            end = row["window_start"] + interval_s * 1000
            _summary(conn, row["client"], row["count"] - 1, row["window_start"], row["detail"], end)
            written += 1
    for scope, before in ((ANONYMOUS_SCOPE, cut), (LOGIN_SCOPE, at_ms - LOGIN_WINDOW_S * 1000)):
        conn.execute(
            sa.delete(client_counters).where(
                client_counters.c.scope == scope, client_counters.c.window_start <= before
            )
        )
    return written
