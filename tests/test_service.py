"""The service layer on its own (no HTTP, no terminal): the door, the act table, covert
visibility, the live alert feed, the time window, on the real database and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine

import records
import service
from service import Acts
from tests.test_api_support import PASSWORD, add_member

WHY = service.Justification(event_number="E26-1")


@pytest.fixture()
def door(engine: Engine, data_dir: Path, redis_client: redis.Redis) -> Iterator[service.Door]:
    yield service.Door(engine, service.ServiceConfig(data_dir=data_dir), redis=redis_client)


def _actor(door: service.Door, username: str, role: str, act: service.Act) -> service.Actor:
    add_member(door.engine, username, role)
    token = records.login(door.engine, username, PASSWORD).token
    return door.enter(act, token, why=WHY, client="test")


def test_every_act_needs_a_permission_the_roles_know() -> None:
    acts = [v for v in vars(Acts).values() if isinstance(v, service.Act)]
    assert len({a.action for a in acts}) == len(acts) > 30
    for act in acts:
        assert set(act.permissions) <= set(records.PERMISSIONS), act.action
    assert records.Permission.AUDIT_VIEW in records.ROLE_PERMISSIONS["auditor"]


def test_the_door_refuses_and_audits_without_a_session(door: service.Door) -> None:
    with pytest.raises(service.Unauthenticated, match="log in") as refused:
        door.enter(Acts.PLATE_HISTORY, None, why=WHY, client="cli:x@y", login_hint="log in")
    assert refused.value.reason == "no_login"
    with pytest.raises(service.Unauthenticated, match="unknown or closed"):
        door.enter(Acts.PLATE_HISTORY, "forged", why=WHY, client="cli:x@y")
    # anonymous refusals from one client are aggregated: the first in full, the rest counted
    found = records.read_audit(door.engine)
    assert [(r.username, r.outcome, r.client) for r in found] == [
        (service.ANONYMOUS, "denied", "cli:x@y")
    ]
    assert found[0].reason is not None and found[0].reason.startswith("no_login")


def test_covert_is_decided_in_one_place(door: service.Door, tmp_path: Path) -> None:
    records.create_hotlist(door.engine, "ops", category="stolen_vehicle", user="t")
    records.set_policy(door.engine, "ops", {"covert": True}, user="t")
    records.create_hotlist(door.engine, "open", category="stolen_vehicle", user="t")
    dora = _actor(door, "dora", "dispatcher", Acts.HOTLIST_LIST)
    ivy = _actor(door, "ivy", "investigator", Acts.HOTLIST_LIST)
    assert [h.name for h in service.list_hotlists(door, dora)] == ["open"]
    assert sorted(h.name for h in service.list_hotlists(door, ivy)) == ["open", "ops"]
    assert dora.covert.hotlist(door.engine, "ops") is None
    assert ivy.covert.hotlist(door.engine, "ops") is not None
    with pytest.raises(service.NotFound, match="no hotlist 'ops'"):
        service.view_hotlist(door, dora, "ops")
    assert records.read_audit(door.engine)[-1].outcome == "failed"


def test_opening_a_stream_is_audited_and_covert_only_for_roles_allowed(
    door: service.Door,
) -> None:
    dora = _actor(door, "dora", "dispatcher", Acts.ALERT_STREAM)
    stream = service.open_stream(door, dora, last_event_id="5-1")
    assert stream.cursor == service.Cursor("5-1")
    record = records.read_audit(door.engine)[-1]
    assert (record.action, record.username, record.outcome) == ("alerts.stream", "dora", "allowed")
    assert record.terms["stream"] == stream.id and record.terms["last_event_id"] == "5-1"
    stream.delivered = 7
    stream.close("client disconnected")
    stream.close("again")  # audited once
    closed = records.read_audit(door.engine)[-1]
    assert (closed.action, closed.result_count) == ("alerts.stream.close", 7)
    assert closed.terms["closed"] == "client disconnected"
    with pytest.raises(service.Forbidden, match="covert"):
        service.open_stream(door, dora, covert=True)
    assert records.read_audit(door.engine)[-1].outcome == "denied"
    with pytest.raises(service.Invalid, match="last_event_id") as bad:
        service.open_stream(door, dora, last_event_id="yesterday")
    assert bad.value.field == "last_event_id"
    auditor = _actor(door, "aud", "auditor", Acts.ALERT_HISTORY)
    with pytest.raises(service.Forbidden, match="alerts:receive"):
        service.open_stream(door, auditor)


def test_stream_cursors_name_both_logs_for_a_covert_session() -> None:
    assert service.Cursor.parse("7-0_9-2", covert=True) == service.Cursor("7-0", "9-2")
    assert service.Cursor.parse("7", covert=True) == service.Cursor("7-0", "0-0")
    assert service.Cursor.parse("7-0_9-2", covert=False) == service.Cursor("7-0")
    assert service.Cursor("7-0", "0-0").text() == "7-0_0-0"


@pytest.mark.parametrize(
    ("start", "end", "days", "field"),
    [
        (None, datetime(1, 1, 2, tzinfo=timezone.utc), 7, "end"),
        (datetime(2026, 1, 1), None, 7, "start"),
        (datetime(2026, 1, 2, tzinfo=timezone.utc), datetime(2026, 1, 1, tzinfo=timezone.utc), 7,
         "start"),
        (None, datetime(2026, 1, 1, tzinfo=timezone.utc), 10**9, "end"),
    ],
)  # fmt: skip
def test_one_time_window_validator(
    start: datetime | None, end: datetime | None, days: int, field: str
) -> None:
    with pytest.raises(service.Invalid) as refused:
        service.utc_window(start, end, default_days=days)
    assert refused.value.field == field
    begin, stop = service.utc_window(None, datetime(2026, 1, 8, 0, 0, 0, 1999, timezone.utc))
    assert (stop - begin).days == 30 and stop.microsecond == 1000
