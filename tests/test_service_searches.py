"""Searches that do not block and do not sprawl: the intent is committed before the store is
read, the scan holds no database transaction (logins go on beside it), and every search
kind has bounds a supervisor may override with an audited reason."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

import records
import service
import sinks
from service import Acts, SearchSpec
from tests.test_api_support import PASSWORD, add_member

WHY = service.Justification(case_number="26-000123")
NOW = datetime(2026, 10, 1, 12, tzinfo=timezone.utc)


class _ScanUntil(sinks.ReadStore):
    """The real store whose plate history scan lasts until ``release`` is set (as a scan over
    a year of reads would), so a test can act while it runs."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.scanning = threading.Event()
        self.release = threading.Event()

    def plate_history(self, *args: Any, **kwargs: Any) -> sinks.Pages:  # type: ignore[override]
        self.scanning.set()
        self.release.wait(20)
        return sinks.ReadStore.plate_history(self, *args, **kwargs)


@pytest.fixture()
def door(engine: Engine, data_dir: Path) -> Iterator[service.Door]:
    yield service.Door(engine, service.ServiceConfig(data_dir=data_dir))


def _actor(door: service.Door, username: str, role: str, act: service.Act) -> service.Actor:
    add_member(door.engine, username, role)
    token = records.login(door.engine, username, PASSWORD).token
    return door.enter(act, token, why=WHY, client="test")


def _plate(start: datetime = NOW - timedelta(days=365), end: datetime = NOW) -> SearchSpec:
    return SearchSpec.plate_history("7ABC123", start, end)


def test_a_long_search_does_not_hold_the_database_while_logins_go_on(
    door: service.Door, data_dir: Path
) -> None:
    store = _ScanUntil(data_dir)
    ts = int(NOW.timestamp() * 1000) - 86_400_000
    read = {"read_id": "r1", "camera_id": "c1", "plate": "7ABC123", "ts": ts, "confidence": 0.9}
    store.write_reads(0, "1-0", [read])
    door.__dict__["store"] = store  # the door's read store is a cached property
    ivy = _actor(door, "ivy", "investigator", Acts.PLATE_HISTORY)
    add_member(door.engine, "otto", "officer")
    found: list[service.SearchPage] = []
    search = threading.Thread(
        target=lambda: found.append(service.search_page(door, ivy, Acts.PLATE_HISTORY, _plate))
    )
    search.start()
    try:
        assert store.scanning.wait(10)
        logins: list[records.Session] = []
        login = threading.Thread(
            target=lambda: logins.append(records.login(door.engine, "otto", PASSWORD))
        )
        login.start()
        login.join(5)
        assert logins, "a login waited for the search's database transaction"
        # Meanwhile: the intent is on record, then the login, no outcome yet.
        last = records.read_audit(door.engine)[-2]
        assert (last.action, last.terms["stage"], last.result_count) == (
            "reads.plate",
            "intent",
            None,
        )
    finally:
        store.release.set()
        search.join(30)
    [page] = found
    assert page.total == 1 and page.count == 1
    intent, outcome = [r for r in records.read_audit(door.engine) if r.action == "reads.plate"]
    assert outcome.terms["stage"] == "result" and outcome.terms["intent"] == intent.seq
    assert (outcome.outcome, outcome.result_count, outcome.terms["total"]) == ("allowed", 1, 1)
    assert outcome.terms["plate"] == "7ABC123" and records.verify_chain(door.engine).ok
    report = records.audit_report(door.engine, None, start_ms=0, end_ms=2**42)
    [ivys] = [u for u in report.inquiries_by_user if u.username == "ivy"]
    assert (ivys.allowed, ivys.failed, ivys.results) == (1, 0, 1)  # one inquiry, counted once
