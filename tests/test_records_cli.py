"""``plateflow users|audit|hotlist`` run through argparse, on the real database and Redis."""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import pytest
import redis
from rich.console import Console
from sqlalchemy.engine import Engine

import records
import sinks
from plateflow import _cli_audit, _cli_hotlist, _cli_users
from plateflow.cli import settings_from_args, settings_parser
from sinks import ReadStore
from tests.people import add_person

PASSWORD = "Correct-Horse-42"


@pytest.fixture()
def run(
    engine: Engine,
    database_url: str,
    redis_url: str,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):  # type: ignore[no-untyped-def]
    for module in (_cli_users, _cli_audit, _cli_hotlist):
        monkeypatch.setattr(module, "out", Console(width=400, no_color=True))

    def run(*argv: str) -> tuple[int, str]:
        parser = argparse.ArgumentParser(prog="plateflow")
        sub = parser.add_subparsers(dest="command", required=True)
        parents = [settings_parser()]
        for module in (_cli_users, _cli_audit, _cli_hotlist):
            module.register(sub, parents)
        args = parser.parse_args(
            [
                *argv,
                "--database-url",
                database_url,
                "--redis-url",
                redis_url,
                "--data-dir",
                str(data_dir),
            ]
        )
        code = args.handler(args, settings_from_args(args))
        return int(code), capsys.readouterr().out

    return run


def test_bootstrap_users_and_training(
    run,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    engine: Engine,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(_cli_users.CliInputError, match="PLATEFLOW_BOOTSTRAP_PASSWORD"):
        run("users", "bootstrap", "--name", "Sys Admin", "--agency", "Example PD")
    monkeypatch.setenv("PLATEFLOW_BOOTSTRAP_PASSWORD", "weak")
    with pytest.raises(records.WeakPasswordError):
        run("users", "bootstrap", "--name", "Sys Admin", "--agency", "Example PD")
    monkeypatch.setenv("PLATEFLOW_BOOTSTRAP_PASSWORD", PASSWORD)
    code, out = run("users", "bootstrap", "--name", "Sys Admin", "--agency", "Example PD")
    assert code == 0 and "administrator admin created" in out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, _ = run(
        "users",
        "add",
        "inv.lee",
        "--name",
        "Kim Lee",
        "--agency",
        "Example PD",
        "--role",
        "investigator",
        "--password-stdin",
        "--by",
        "admin",
    )
    assert code == 0
    assert records.get_user(engine, "inv.lee").roles == ("investigator",)
    code, out = run("users", "list")
    assert "NOT CURRENT" in out
    code, _ = run(
        "users",
        "train",
        "inv.lee",
        "--course",
        "ALPR policy",
        "--valid-days",
        "365",
        "--by",
        "admin",
    )
    assert code == 0 and records.users_without_current_training(engine)[0].username == "admin"
    code, _ = run("users", "disable", "inv.lee", "--reason", "transferred", "--by", "admin")
    assert not records.get_user(engine, "inv.lee").active
    code, out = run("users", "roles")
    assert "records_supervisor" in out


def test_hotlist_commands(
    run,
    tmp_path: Path,
    redis_client: redis.Redis,  # type: ignore[no-untyped-def]
    engine: Engine,
) -> None:
    path = tmp_path / "ncic.csv"
    path.write_text("LIC,LIS,NIC,OCA\nABC1234,TX,V1,OCA-1\nXYZ987,CA,V2,OCA-2\n")
    pubsub = redis_client.pubsub()
    pubsub.subscribe(sinks.HOTLISTS_CHANGED)
    pubsub.get_message(timeout=2)
    code, out = run(
        "hotlist",
        "import",
        str(path),
        "--list",
        "ncic",
        "--category",
        "stolen_vehicle",
        "--mapping",
        "ncic",
        "--sample",
        "500",
        "--by",
        "admin",
    )
    assert code == 0 and "version 1" in out and "alert on" in out
    message = pubsub.get_message(timeout=5)
    assert message is not None and message["data"] == b"ncic"

    bad = tmp_path / "bad.csv"
    bad.write_text("LIC,LIS\nGOOD1,TX\nA,TX\n")
    with pytest.raises(records.HotlistImportError, match="line 3: plate 'A' is shorter"):
        run("hotlist", "import", str(bad), "--list", "ncic")
    code, _ = run(
        "hotlist",
        "add",
        "ncic",
        "7AB*",
        "--reason",
        "hit and run",
        "--case-number",
        "26-1",
        "--expires",
        "2030-01-01",
        "--by",
        "inv.lee",
    )
    assert code == 0
    code, out = run("hotlist", "list")
    assert "ncic" in out and "stolen_vehicle" in out
    code, out = run("hotlist", "show", "ncic")
    assert "ABC1234" in out and "7AB*" in out and "OCA-1" in out
    code, _ = run("hotlist", "remove", "ncic", "XYZ987", "--by", "admin")
    assert {e.plate for e in records.load_hotlist(engine, "ncic").entries} == {"ABC1234", "7AB*"}

    code, out = run(
        "hotlist",
        "check",
        "ncic",
        "--differences",
        "2",
        "--sample",
        "2000",
        "--reads-per-hour",
        "5000",
    )
    assert "alerts per hour at 5,000 reads per hour" in out
    code, out = run(
        "hotlist",
        "policy",
        "ncic",
        "--ocr-equivalents",
        "1",
        "--priority",
        "2",
        "--sample",
        "500",
        "--by",
        "admin",
    )
    assert code == 0
    assert records.load_hotlist(engine, "ncic").policy.ocr_equivalents == 1


def test_policy_over_ceiling_needs_force(
    run,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    engine: Engine,
    data_dir: Path,
) -> None:
    plates = records.simulated_plates(300, seed=3)
    path = tmp_path / "many.csv"
    path.write_text("plate\n" + "\n".join(plates[:30]) + "\n")
    records.import_hotlist(engine, "many", path, user="admin", category="stolen_plate")
    # 300 stored reads over 18 minutes (1,000 reads/h), 30 of them of listed plates
    now_ms = int(time.time() * 1000)
    reads = [
        {"read_id": f"r{i}", "camera_id": "cam-1", "plate": p, "plate_raw": p,
         "ts": now_ms - 1_080_000 + i * 3_612, "confidence": 0.9, "state": None, "lat": None,
         "lon": None, "candidates": [], "agency": None, "image_ref": None}
        for i, p in enumerate(plates)
    ]  # fmt: skip
    ReadStore(data_dir).write_reads(0, "1-0", reads)

    code, out = run("hotlist", "check", "many", "--sample", "300")
    assert code == 1 and "10.000%" in out and "stored reads" in out
    assert "100.0 alerts per hour" in out
    with pytest.raises(records.PolicyCostError, match="refused"):
        run("hotlist", "policy", "many", "--priority", "1")
    code, _ = run("hotlist", "policy", "many", "--priority", "1", "--force")
    assert code == 0 and records.load_hotlist(engine, "many").policy.priority == 1


def test_audit_verify_and_report(run, tmp_path: Path, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    add_person(engine, "aud", ["auditor"], password=PASSWORD, name="Ann Auditor", trained=False)
    code, out = run("audit", "verify")
    assert code == 0 and "intact" in out
    code, out = run("audit", "log", "--kind", "admin")
    assert "users.add" in out
    code, out = run(
        "audit", "report", "--quarter", _cli_audit.current_quarter(), "--out", str(tmp_path / "r")
    )
    assert code == 0 and "wrote" in out
    assert list((tmp_path / "r").glob("audit-*.html")) and list((tmp_path / "r").glob("*.csv"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        conn.exec_driver_sql("UPDATE audit_log SET username = 'someone' WHERE seq = 1")
    code, out = run("audit", "verify")
    assert code == 1 and "record 1: edited" in out
