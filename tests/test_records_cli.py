"""``plateflow login|logout|passwd|totp|users|audit|hotlist`` run through argparse, on the real
database and Redis: every command but ``users bootstrap|roles`` acts as the logged-in user,
audited; after an administrator's reset only ``passwd`` runs."""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pyotp
import pytest
import redis
from rich.console import Console
from sqlalchemy.engine import Engine

import records
import service
import sinks
from plateflow import _cli_account, _cli_audit, _cli_hotlist, _cli_session, _cli_users
from plateflow._cli_session import cli_client, os_identity, token_path
from plateflow.cli import settings_from_args
from sinks import ReadStore
from tests.cli_support import parser_of
from tests.test_api_support import PASSWORD, add_member

#: ``run(*argv, stdin=None)``: a command's exit code and what it printed.
Run = Callable[..., tuple[int, str]]
#: The justification of acts that name no case of their own.
WHY = ("--event-number", "E26-100")
_MODULES = (_cli_session, _cli_users, _cli_audit, _cli_hotlist, _cli_account)


@pytest.fixture()
def run(
    database_url: str,
    redis_url: str,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Run:
    for module in _MODULES:
        monkeypatch.setattr(module, "out", Console(width=400, no_color=True))
    # The suite's Redis URL may carry a password (the embedded admin user): never a flag.
    monkeypatch.setenv("PLATEFLOW_REDIS_URL", redis_url)

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str]:
        parser = parser_of(*_MODULES)
        # the Redis URL carries a password: from the environment, never a flag
        monkeypatch.setenv("PLATEFLOW_REDIS_URL", redis_url)
        flags = ["--database-url", database_url, "--data-dir", str(data_dir)]
        args = parser.parse_args([*argv, *flags])
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = args.handler(args, settings_from_args(args))
        return int(code), capsys.readouterr().out

    return run


def login(run: Run, username: str, password: str = PASSWORD) -> None:
    code, out = run("login", username, "--password-stdin", stdin=password + "\n")
    assert code == 0 and f"logged in as {username}" in out


def last(engine: Engine, action: str) -> records.AuditRecord:
    return [r for r in records.read_audit(engine) if r.action == action][-1]


def _edit_first_audit_record(engine: Engine) -> None:
    """An insider's edit of record 1, past the append-only trigger."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        conn.exec_driver_sql("UPDATE audit_log SET username = 'someone' WHERE seq = 1")


def test_bootstrap_login_users_and_training(
    run: Run, monkeypatch: pytest.MonkeyPatch, engine: Engine, database_url: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(_cli_users.CliInputError, match="PLATEFLOW_BOOTSTRAP_PASSWORD"):
        run("users", "bootstrap", "--name", "Sys Admin", "--agency", "Example PD")
    monkeypatch.setenv("PLATEFLOW_BOOTSTRAP_PASSWORD", "weak")
    with pytest.raises(records.WeakPasswordError):
        run("users", "bootstrap", "--name", "Sys Admin", "--agency", "Example PD")
    monkeypatch.setenv("PLATEFLOW_BOOTSTRAP_PASSWORD", PASSWORD)
    code, out = run(
        "users", "bootstrap", "--name", "Sys Admin", "--agency", "Example PD",
        "--course", "ALPR policy",
    )  # fmt: skip
    assert code == 0 and "administrator admin created, trained in 'ALPR policy'" in out
    monkeypatch.delenv("PLATEFLOW_BOOTSTRAP_PASSWORD")
    add = (
        "users", "add", "inv.lee", "--name", "Kim Lee", "--agency", "Example PD",
        "--role", "investigator", "--password-stdin", *WHY,
    )  # fmt: skip
    with pytest.raises(service.Unauthenticated, match="log in first: `plateflow login`"):
        run(*add, stdin=PASSWORD + "\n")
    assert last(engine, "users.add").username == service.ANONYMOUS
    with pytest.raises(service.Unauthenticated, match="wrong password"):
        run("login", "admin", "--password-stdin", stdin="not-the-password\n")
    login(run, "admin")
    cached = token_path(settings_from_args(argparse.Namespace(setting_database_url=database_url)))
    assert cached.is_file() and stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700
    assert not str(cached).count(database_url)  # the URL (it may hold a password) is hashed
    code, _ = run(*add, stdin=PASSWORD + "\n")
    assert code == 0
    assert records.get_user(engine, "inv.lee").roles == ("investigator",)
    record = last(engine, "users.add")
    assert (record.username, record.client, record.event_number) == (
        "admin",
        cli_client(),
        "E26-100",
    )
    code, out = run("users", "list", *WHY)
    assert "NOT CURRENT" in out and last(engine, "users.list").result_count == 2
    code, _ = run(
        "users", "train", "inv.lee", "--course", "ALPR policy", "--valid-days", "365", *WHY
    )
    assert code == 0 and records.users_without_current_training(engine) == []
    code, _ = run("users", "disable", "inv.lee", "--reason", "transferred", *WHY)
    assert not records.get_user(engine, "inv.lee").active
    code, out = run("users", "roles")  # the role table: nobody's data, no session needed
    assert "records_supervisor" in out
    code, out = run("logout")
    assert code == 0 and "logged out" in out and not cached.exists()
    with pytest.raises(service.Unauthenticated, match="log in first"):
        run("users", "list", *WHY)


def test_session_token_from_the_environment_and_a_closed_session(
    run: Run, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_member(engine, "adm", "administrator")
    session = records.login(engine, "adm", PASSWORD)
    monkeypatch.setenv(_cli_session.SESSION_ENV, session.token)
    code, _ = run("hotlist", "list", *WHY)
    assert code == 0 and last(engine, "hotlists.list").username == "adm"
    records.logout(engine, session.token)
    with pytest.raises(service.Unauthenticated, match="session unknown or closed"):
        run("hotlist", "list", *WHY)
    assert last(engine, "hotlists.list").outcome == "denied"


def test_a_token_file_others_can_read_is_refused(
    run: Run, engine: Engine, database_url: str
) -> None:
    add_member(engine, "adm", "administrator")
    login(run, "adm")
    cached = token_path(settings_from_args(argparse.Namespace(setting_database_url=database_url)))
    os.chmod(cached, 0o644)
    with pytest.raises(_cli_session.CliSessionError, match="readable by other users"):
        run("hotlist", "list", *WHY)


def test_hotlist_commands(
    run: Run, tmp_path: Path, redis_client: redis.Redis, engine: Engine
) -> None:
    add_member(engine, "admin", "administrator")
    add_member(engine, "inv.lee", "investigator")
    path = tmp_path / "ncic.csv"
    path.write_text("LIC,LIS,NIC,OCA\nABC1234,TX,V1,OCA-1\nXYZ987,CA,V2,OCA-2\n")
    pubsub = redis_client.pubsub()
    pubsub.subscribe(sinks.HOTLISTS_CHANGED)
    pubsub.get_message(timeout=2)
    imported = (
        "hotlist", "import", str(path), "--list", "ncic", "--category", "stolen_vehicle",
        "--mapping", "ncic", "--sample", "500", *WHY,
    )  # fmt: skip
    with pytest.raises(service.Unauthenticated, match="log in first"):
        run(*imported)
    login(run, "admin")
    code, out = run(*imported)
    assert code == 0 and "version 1" in out and "alert on" in out
    message = pubsub.get_message(timeout=5)
    assert message is not None and message["data"] == b"ncic"
    assert (last(engine, "hotlists.import").username, last(engine, "hotlists.import").outcome) == (
        "admin",
        "allowed",
    )

    bad = tmp_path / "bad.csv"
    bad.write_text("LIC,LIS\nGOOD1,TX\nA,TX\n")
    with pytest.raises(records.HotlistImportError, match="line 3: plate 'A' is shorter"):
        run("hotlist", "import", str(bad), "--list", "ncic", *WHY)
    assert last(engine, "hotlists.import").outcome == "failed"
    login(run, "inv.lee")
    add = ("hotlist", "add", "ncic", "7AB*", "--reason", "hit and run", "--case-number", "26-1")
    code, _ = run(*add, "--expires", "2030-01-01")
    assert code == 0
    with pytest.raises(service.Forbidden, match="partial-plate patterns only"):
        run("hotlist", "add", "ncic", "ABC999", "--reason", "x", "--case-number", "26-1")
    code, out = run("hotlist", "list", *WHY)
    assert "ncic" in out and "stolen_vehicle" in out
    code, out = run("hotlist", "show", "ncic", *WHY)
    assert "ABC1234" in out and "7AB*" in out and "OCA-1" in out
    # the reads that were not audited before: each is an audit record of the logged-in user
    for action, count in (("hotlists.list", 1), ("hotlists.view", 3)):
        record = last(engine, action)
        assert (record.username, record.client, record.result_count) == (
            "inv.lee",
            cli_client(),
            count,
        )
    login(run, "admin")
    code, _ = run("hotlist", "remove", "ncic", "XYZ987", *WHY)
    assert {e.plate for e in records.load_hotlist(engine, "ncic").entries} == {"ABC1234", "7AB*"}

    code, out = run(
        "hotlist", "check", "ncic", "--differences", "2", "--sample", "2000",
        "--reads-per-hour", "5000", *WHY,
    )  # fmt: skip
    assert "alerts per hour at 5,000 reads per hour" in out
    code, out = run(
        "hotlist", "policy", "ncic", "--ocr-equivalents", "1", "--priority", "2",
        "--sample", "500", *WHY,
    )  # fmt: skip
    assert code == 0
    assert records.load_hotlist(engine, "ncic").policy.ocr_equivalents == 1
    assert last(engine, "hotlists.policy").username == "admin"


def test_policy_over_ceiling_needs_force(
    run: Run, tmp_path: Path, engine: Engine, data_dir: Path
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
    add_member(engine, "admin", "administrator")
    login(run, "admin")

    code, out = run("hotlist", "check", "many", "--sample", "300", *WHY)
    assert code == 1 and "10.000%" in out and "stored reads" in out
    assert "100.0 alerts per hour" in out
    with pytest.raises(records.PolicyCostError, match="refused"):
        run("hotlist", "policy", "many", "--priority", "1", *WHY)
    code, _ = run("hotlist", "policy", "many", "--priority", "1", "--force", *WHY)
    assert code == 0 and records.load_hotlist(engine, "many").policy.priority == 1


def test_audit_verify_log_and_report_are_audited(run: Run, tmp_path: Path, engine: Engine) -> None:
    add_member(engine, "aud", "auditor")
    login(run, "aud")
    code, out = run("audit", "verify", *WHY)
    assert code == 0 and "intact" in out
    code, out = run("audit", "log", "--kind", "login", *WHY)
    assert "login" in out and "aud" in out
    quarter = _cli_audit.current_quarter()
    code, out = run("audit", "report", "--quarter", quarter, "--out", str(tmp_path / "r"), *WHY)
    assert code == 0 and "wrote" in out
    assert list((tmp_path / "r").glob("audit-*.html")) and list((tmp_path / "r").glob("*.csv"))
    for action in ("audit.verify", "audit.read", "audit.report"):
        record = last(engine, action)
        assert (record.username, record.client, record.outcome) == ("aud", cli_client(), "allowed")
        assert record.event_number == "E26-100"
    _edit_first_audit_record(engine)
    code, out = run("audit", "verify", *WHY)
    assert code == 1 and "record 1: edited" in out


def test_scheduled_audit_verify_needs_no_login_and_is_recorded_under_the_os_identity(
    run: Run, engine: Engine, data_dir: Path
) -> None:
    add_member(engine, "aud", "auditor")
    with pytest.raises(service.Unauthenticated, match="log in first"):
        run("audit", "verify", *WHY)  # a person's verification still needs a session
    code, out = run("audit", "verify", "--scheduled")
    assert code == 0 and "intact" in out
    record = last(engine, "audit.verify")
    assert (record.username, record.client, record.outcome) == (
        os_identity(),
        cli_client(),
        "allowed",
    )
    assert record.terms["scheduled"] is True and record.terms["ok"] is True
    # each intact run appends the head it verified to the file shipped off the host
    exported = data_dir / "audit-head.jsonl"
    assert "appended to" in out and len(exported.read_text().splitlines()) == 1
    code, out = run("audit", "verify", "--scheduled")
    heads = [json.loads(line) for line in exported.read_text().splitlines()]
    assert code == 0 and len(heads) == 2 and heads[1]["seq"] == heads[0]["seq"] + 1
    assert set(heads[1]) == {"seq", "hash", "hmac", "key_id", "at"}
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    _edit_first_audit_record(engine)
    code, out = run("audit", "verify", "--scheduled")
    assert code == 1 and "record 1: edited" in out and "first bad record is 1" in out
    assert len(exported.read_text().splitlines()) == 2  # a broken chain is not exported


# -- your own account: passwd, totp -----------------------------------------------------------

NEW = "Mine-Alone-2026!"


def test_passwd_after_a_reset(run: Run, engine: Engine, tmp_path: Path) -> None:
    add_member(engine, "ada", "administrator")
    add_member(engine, "dora", "dispatcher")
    records.set_password(engine, "dora", "Reset-By-Admin-2026", by="ada")
    code, out = run("login", "dora", "--password-stdin", stdin="Reset-By-Admin-2026\n")
    assert code == 0
    with pytest.raises(service.Forbidden, match="plateflow passwd"):
        run("users", "list", "--event-number", "E1")
    with pytest.raises(service.Invalid, match="shorter than 12"):
        run("passwd", "--password-stdin", stdin="Reset-By-Admin-2026\nshort\n")
    secret_file = tmp_path / "new.txt"
    secret_file.write_text(NEW + "\n")
    code, out = run(
        "passwd", "--password-stdin", "--new-password-file", str(secret_file),
        stdin="Reset-By-Admin-2026\n",
    )  # fmt: skip
    assert code == 0 and "password of dora changed" in out
    assert not records.get_user(engine, "dora").must_change_password
    code, _ = run("login", "dora", "--password-stdin", stdin=NEW + "\n")
    assert code == 0
    assert all(NEW not in str(r) for r in records.read_audit(engine))


def test_totp_enrol_then_login_with_a_code(
    run: Run, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATEFLOW_TOTP_KEY", "t" * 40)
    add_member(engine, "ivy", "investigator")
    run("login", "ivy", "--password-stdin", stdin=PASSWORD + "\n")
    code, out = run("totp", "enrol", "--password-stdin", stdin=PASSWORD + "\n")
    uri = next(line for line in out.splitlines() if line.startswith("otpauth://"))
    code, out = run("totp", "confirm", "--code-stdin", stdin=pyotp.parse_uri(uri).now() + "\n")
    assert code == 0 and "confirmed" in out
    with pytest.raises(service.Unauthenticated, match="wrong password"):
        run("login", "ivy", "--password-stdin", stdin=PASSWORD + "\n")
    code, out = run(
        "login", "ivy", "--otp", "--password-stdin",
        stdin=f"{PASSWORD}\n{pyotp.parse_uri(uri).at(time.time() + 30)}\n",
    )  # fmt: skip
    assert code == 0 and "logged in as ivy" in out
