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

    def plate_history(self, *args: Any, **kwargs: Any) -> sinks.Pages:
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


# A county-wide polygon (about 40 km by 40 km) around the scene, [lon, lat] order.
COUNTY = {
    "type": "Polygon",
    "coordinates": [[[-118.5, 34.0], [-118.06, 34.0], [-118.06, 34.36], [-118.5, 34.36],
                     [-118.5, 34.0]]],
}  # fmt: skip


def _canvass() -> SearchSpec:
    return SearchSpec.canvass(NOW - timedelta(hours=2), NOW, polygon=COUNTY)


def _partial(pattern: str, days: float = 7) -> Any:
    return lambda: SearchSpec.partial(pattern, NOW - timedelta(days=days), NOW)


def test_searches_over_a_bound_are_refused_naming_the_field_the_bound_and_the_override(
    door: service.Door,
) -> None:
    ivy = _actor(door, "ivy", "investigator", Acts.CANVASS)
    cases = [
        (Acts.PLATE_HISTORY, lambda: _plate(NOW - timedelta(days=400)), "start", "366 days"),
        (Acts.PARTIAL_SEARCH, _partial("7ABC*", days=93), "start", "92 days"),
        (Acts.PARTIAL_SEARCH, _partial("7*"), "pattern", "at least 2"),
        (Acts.CANVASS, _canvass, "polygon", "25 km²"),
    ]
    for act, build, field, bound in cases:
        with pytest.raises(service.Invalid) as refused:
            service.search_page(door, ivy, act, build)
        assert refused.value.field == field, refused.value
        assert bound in str(refused.value) and "override_reason" in str(refused.value)
        assert "PLATEFLOW_SEARCH_" in str(refused.value)
        last = records.read_audit(door.engine)[-1]
        assert (last.action, last.outcome, last.username) == (act.action, "denied", "ivy")
    circle = lambda: SearchSpec.canvass(  # noqa: E731
        NOW - timedelta(hours=2), NOW, center=(34.1, -118.3), radius_m=3_000
    )
    with pytest.raises(service.Invalid, match="km²") as refused:
        service.search_page(door, ivy, Acts.CANVASS, circle)
    assert refused.value.field == "radius_m"
    # Without search:override, a reason does not help: refused and audited.
    with pytest.raises(service.Forbidden, match="search:override"):
        service.search_page(door, ivy, Acts.CANVASS, _canvass, override_reason="homicide")
    assert records.read_audit(door.engine)[-1].outcome == "denied"


def test_a_supervisor_overrides_a_bound_with_a_reason_on_record(door: service.Door) -> None:
    records.add_user(
        door.engine,
        username="sue",
        name="Sgt Sue",
        agency="Test PD",
        job_title="records supervisor",
        roles=["investigator", "records_supervisor"],
        password=PASSWORD,
        by="setup",
    )
    records.record_training(
        door.engine,
        "sue",
        course="ALPR",
        completed_on=NOW.date(),
        expires_on=NOW.date() + timedelta(days=3650),
        by="setup",
    )
    token = records.login(door.engine, "sue", PASSWORD).token
    sue = door.enter(Acts.CANVASS, token, why=WHY, client="test")
    reason = "abduction: suspect vehicle crossed the county"
    page = service.search_page(door, sue, Acts.CANVASS, _canvass, override_reason=reason)
    assert page.total == 0
    record = records.read_audit(door.engine)[-1]
    assert record.terms["stage"] == "result" and record.terms["override"]["reason"] == reason
    [bound] = record.terms["override"]["bounds"]
    assert bound["field"] == "polygon" and bound["bound"] == 25.0 and bound["value"] > 1000
    # The same search within the bounds records no override.
    page = service.search_page(
        door, sue, Acts.PARTIAL_SEARCH, _partial("7A*"), override_reason=reason
    )
    assert "override" not in records.read_audit(door.engine)[-1].terms


def test_bounds_are_settings_and_the_known_character_rule_is_one(
    engine: Engine, data_dir: Path
) -> None:
    from plateflow.settings import Settings
    from records._csv import normalise_entry_text

    settings = Settings.load(
        {"PLATEFLOW_SEARCH_MAX_DAYS_PARTIAL": "7", "PLATEFLOW_SEARCH_MIN_KNOWN_CHARACTERS": "3"},
        data_dir=str(data_dir),
    )
    config = service.ServiceConfig.pick(settings)
    assert (config.search_max_days_partial, config.search_min_known_characters) == (7.0, 3)
    door = service.Door(engine, config)
    ivy = _actor(door, "ivy", "investigator", Acts.PARTIAL_SEARCH)
    with pytest.raises(service.Invalid, match="at most 7 days"):
        service.search_page(door, ivy, Acts.PARTIAL_SEARCH, _partial("7AB*", days=8))
    with pytest.raises(service.Invalid, match="fixes 2 known character") as refused:
        service.search_page(door, ivy, Acts.PARTIAL_SEARCH, _partial("7A*"))
    # A hotlist pattern is judged by the same rule (at its default minimum of 2).
    with pytest.raises(ValueError, match="fixes 1 known character"):
        normalise_entry_text("7*")
    assert normalise_entry_text("[8B]1*") == ("[8B]1*", True)
    assert "fixes 2 known character" in str(refused.value)


def test_a_hold_by_query_follows_the_known_character_rule_and_scans_outside(
    door: service.Door,
) -> None:
    rex = _actor(door, "rex", "records_supervisor", Acts.HOLD_PLACE)
    with pytest.raises(service.Invalid, match="fixes 1 known character") as refused:
        service.place_hold(door, rex, reason="homicide", build=_partial("7*"))
    assert refused.value.field == "pattern"
    with pytest.raises(service.NotFound, match="no reads to hold"):
        service.place_hold(door, rex, reason="homicide", build=_partial("7A*"))
    intent, outcome = [r for r in records.read_audit(door.engine) if r.action == "holds.place"][-2:]
    assert (intent.terms["stage"], outcome.outcome, outcome.terms["intent"]) == (
        "intent",
        "failed",
        intent.seq,
    )


def test_the_report_counts_a_search_that_failed_after_its_intent_once(door: service.Door) -> None:
    ivy = _actor(door, "ivy", "investigator", Acts.PLATE_HISTORY)
    with pytest.raises(service.Invalid):
        service.search_page(door, ivy, Acts.PLATE_HISTORY, _plate, cursor="not-a-cursor")
    service.search_page(door, ivy, Acts.PLATE_HISTORY, _plate)
    report = records.audit_report(door.engine, None, start_ms=0, end_ms=2**42)
    [ivys] = [u for u in report.inquiries_by_user if u.username == "ivy"]
    assert (ivys.allowed, ivys.failed) == (1, 1)
    assert dict(report.inquiries_by_action)["reads.plate"] == 2
