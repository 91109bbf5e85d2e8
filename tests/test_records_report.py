"""The quarterly audit report: figures, a self-contained HTML page with charts, and CSV."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import records
from records._schema import audit_log
from tests.dispositions_support import dispose
from tests.people import add_person
from tests.records_support import audited_search, release_request

PASSWORD = "Correct-Horse-42"


def this_quarter() -> str:
    today = datetime.now(timezone.utc).date()
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def scenario(engine: Engine, tmp_path: Path) -> None:
    people = [
        ("inv.lee", "investigator", True),
        ("ofc.diaz", "officer", True),
        ("sup.ng", "records_supervisor", True),
        ("new.hire", "officer", False),
    ]
    for username, role, trained in people:
        name = username.replace(".", " ").title()
        add_person(engine, username, [role], password=PASSWORD, name=name, trained=trained)
    for i in range(6):
        audited_search(
            engine,
            records.Inquiry("inv.lee", case_number="26-0042"),
            result_count=i,
            terms={"plate": f"ABC12{i}"},
            client="10.0.0.9",
        )
    audited_search(engine, records.Inquiry("ofc.diaz", event_number="E-77"), result_count=1)
    for inquiry in (
        records.Inquiry("ofc.diaz"),
        records.Inquiry("new.hire", case_number="1"),
        records.Inquiry("sup.ng", description="<script>alert(1)</script> short"),
    ):
        with pytest.raises(records.AccessDenied):
            audited_search(engine, inquiry, min_description_length=50)
    path = tmp_path / "ncic.csv"
    path.write_text("plate,state,category\nABC123,CA,stolen\n", encoding="utf-8")
    records.import_hotlist(engine, "ncic", path, user="admin")
    request = release_request(engine, "inv.lee")
    # exported by someone other than the approver (427.7)
    records.decide_release(engine, request.id, approve=True, reason="case filed", by="sup.ng")
    records.fulfil_release(engine, request.id, export_id="exp-1", by="sup.kim")
    records.record_purge(engine, "reads/date=2025-01-01", 1000, "retention-job")
    start = int(datetime.now(timezone.utc).timestamp() * 1000) - 300_000  # 5 min: steps fit
    dispose(
        engine,
        "ofc.diaz",
        "al-1",
        [("claimed", {}), ("verifying", {}), ("confirmed", {"action": "stop_made"})],
        start_ms=start,
    )
    dispose(
        engine,
        "ofc.diaz",
        "al-2",
        [("claimed", {}), ("rejected", {"reason": "misread"})],
        start_ms=start,
        step_ms=30_000,
        kind="ocr",
    )
    dispose(engine, "ofc.diaz", "al-3", [("claimed", {})], start_ms=start, hotlist="amber")


def test_quarter_range() -> None:
    start, end = records.quarter_range("2026Q4")
    assert datetime.fromtimestamp(start / 1000, tz=timezone.utc) == datetime(
        2026, 10, 1, tzinfo=timezone.utc
    )
    assert datetime.fromtimestamp(end / 1000, tz=timezone.utc) == datetime(
        2027, 1, 1, tzinfo=timezone.utc
    )
    assert records.quarter_range("2026-q1")[1] == records.quarter_range("2026Q2")[0]
    with pytest.raises(records.RecordsError, match="not like 2026Q4"):
        records.quarter_range("2026Q5")


@pytest.mark.parametrize("quarter", ["0000Q1", "9999Q4"])
def test_quarter_outside_the_calendar_is_a_records_error(quarter: str) -> None:
    with pytest.raises(records.RecordsError, match="outside the calendar"):
        records.quarter_range(quarter)


def test_report_figures(engine: Engine, tmp_path: Path) -> None:
    scenario(engine, tmp_path)
    report = records.audit_report(engine, this_quarter())
    by_user = {u.username: u for u in report.inquiries_by_user}
    assert (by_user["inv.lee"].allowed, by_user["inv.lee"].results) == (6, 15)
    assert (by_user["ofc.diaz"].allowed, by_user["ofc.diaz"].denied) == (1, 1)
    purposes = {p.purpose: p.inquiries for p in report.inquiries_by_purpose}
    assert purposes["case 26-0042"] == 6 and purposes["event E-77"] == 1
    assert len(report.denied) == 3
    reasons = dict(report.denied_by_reason)
    assert reasons["inquiry: no_justification"] == 2 and reasons["inquiry: untrained"] == 1
    assert [u.username for u in report.untrained] == ["new.hire"]
    assert [(c.name, c.change, c.by) for c in report.hotlist_changes] == [
        ("ncic", "import", "admin")
    ]
    assert [r.status for r in report.releases] == ["fulfilled"]
    assert [p.rows for p in report.purges] == [1000]
    hits = report.hits
    assert hits.alerts == 3
    assert [(c.hotlist, c.match_kind, c.state, c.reason, c.alerts) for c in hits.counts] == [
        ("amber", "exact", "claimed", None, 1),
        ("ncic", "exact", "confirmed", None, 1),
        ("ncic", "ocr", "rejected", "misread", 1),
    ]
    assert hits.by("hotlist") == [("ncic", 2), ("amber", 1)]
    assert hits.by("reason") == [("misread", 1)]
    # al-1: claimed at 0, verifying at 60 s, confirmed at 120 s; al-2: claimed 0, rejected 30 s
    claim = hits.claim_to_decision
    assert (claim.count, claim.median_s, claim.p90_s) == (2, 75.0, pytest.approx(111.0))
    verify = hits.verify_to_decision
    assert (verify.count, verify.median_s, verify.p90_s, hits.overdue) == (1, 60.0, 60.0, 0)
    assert report.chain.ok
    empty = records.audit_report(engine, "2001Q1")
    assert empty.inquiries == 0 and empty.chain.ok


def test_report_files_are_self_contained(engine: Engine, tmp_path: Path) -> None:
    scenario(engine, tmp_path)
    html_path, csv_path = records.audit_report(engine, this_quarter()).write(tmp_path / "out")
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 3
    assert not re.search(r"<(script|link|img|iframe)\b", page, re.IGNORECASE)
    assert not re.search(r"(src|href)\s*=", page, re.IGNORECASE)
    assert "&lt;script&gt;" in page  # user text is escaped
    assert "audit chain intact" in page
    hits = page[page.index("Hits and their dispositions") :]
    assert "Hits per list by final state" in hits and "misread" in hits
    assert '<td>claim</td><td>confirmed or rejected</td><td class="n">2</td><td>75 s</td>' in hits
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    sections = {r["section"] for r in rows}
    assert {
        "inquiries_per_user",
        "inquiries_per_purpose",
        "denied",
        "untrained",
        "hotlist_change",
        "release",
        "purge",
        "hits",
        "time_claim_to_decision",
        "chain",
    } <= sections
    chain = next(r for r in rows if r["section"] == "chain")
    assert chain["key"] == "ok"


def test_report_shows_a_broken_chain(engine: Engine, tmp_path: Path) -> None:
    scenario(engine, tmp_path)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 9))
    report = records.audit_report(engine, this_quarter())
    assert report.chain.deleted == [9]
    assert "BROKEN" in report.html()


def test_report_opens_in_a_real_browser(engine: Engine, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    scenario(engine, tmp_path)
    html_path, _ = records.audit_report(engine, this_quarter()).write(tmp_path / "out")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"]
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", html_path.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    dom = subprocess.run(
        [*flags, "--dump-dom", html_path.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    ).stdout
    assert "audit chain intact" in dom and dom.count("<svg") >= 3
    assert "Inquiries per user" in dom
