"""Helpers of the disposition tests (no tests here): alerts in the real Redis alert log, and
transitions written straight through records (for the report and hotlist-check figures)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from sqlalchemy.engine import Engine

import records
from sinks import AlertBus


def alert(
    alert_id: str, *, hotlist: str = "stolen", priority: int = 1, kind: str = "exact", covert=False
) -> dict[str, Any]:
    """An alert shaped as the flow publishes it (the fields the console and dispositions use)."""
    n = alert_id.removeprefix("a-")
    return {
        "alert_id": alert_id,
        "read": {"read_id": f"r-{n}", "plate": "ABC123", "ts": 1_764_331_200_000},
        "entry": {"entry_id": f"e-{n}", "plate": "ABC123"},
        "hotlist": {"name": hotlist, "priority": priority, "covert": covert},
        "match": {"kind": kind},
        "sighting_of": None,
    }


def publish(client: redis.Redis, *alerts: dict[str, Any]) -> dict[str, str]:
    """Publish ``alerts`` on the real alert bus; returns each alert's log id, by alert id."""
    AlertBus(client, cooldown_s=0).publish(list(alerts))
    ids: dict[str, str] = {}
    for covert in (False, True):
        for log_id, logged in AlertBus(client).replay(covert=covert):
            ids[logged["alert_id"]] = log_id
    return ids


def dispose(
    engine: Engine,
    username: str,
    alert_id: str,
    steps: Sequence[tuple[str, dict[str, Any]]],
    *,
    start_ms: int,
    step_ms: int = 60_000,
    hotlist: str = "ncic",
    kind: str = "exact",
    priority: int = 1,
) -> list[records.Transition]:
    """Walk ``alert_id`` through ``steps`` (``(to, extra)``) as ``username``, one step every
    ``step_ms`` from ``start_ms``, straight through records (no Redis, no audit)."""
    user = records.get_user(engine, username)
    ref = records.AlertRef(alert_id, f"{start_ms}-0", start_ms, hotlist, priority, kind, False)
    made = []
    for i, (to, extra) in enumerate(steps):
        with engine.begin() as conn:
            made.append(
                records.record_transition(
                    conn,
                    ref,
                    to,
                    user=user,
                    rules=records.DispositionRules(),
                    at_ms=start_ms + i * step_ms,
                    **extra,
                )
            )
    return made
