"""``plateflow passwd`` and ``plateflow totp enrol``: the new password never on the command
line; after an administrator's reset, ``passwd`` is the one command that runs."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pyotp
import pytest
from rich.console import Console
from sqlalchemy.engine import Engine

import records
import service
from plateflow import _cli_account, _cli_session, _cli_users
from plateflow.cli import settings_from_args, settings_parser
from tests.test_api_support import PASSWORD, add_member

_MODULES = (_cli_session, _cli_users, _cli_account)
NEW = "Mine-Alone-2026!"


@pytest.fixture()
def run(
    database_url: str,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):  # type: ignore[no-untyped-def]
    for module in _MODULES:
        monkeypatch.setattr(module, "out", Console(width=400, no_color=True))

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str]:
        parser = argparse.ArgumentParser(prog="plateflow")
        sub = parser.add_subparsers(dest="command", required=True)
        for module in _MODULES:
            module.register(sub, [settings_parser()])
        args = parser.parse_args(
            [*argv, "--database-url", database_url, "--data-dir", str(data_dir)]
        )
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = args.handler(args, settings_from_args(args))
        return int(code), capsys.readouterr().out

    return run


def test_passwd_after_a_reset(run, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
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


def test_totp_enrol_then_login_with_a_code(  # type: ignore[no-untyped-def]
    run, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATEFLOW_TOTP_KEY", "t" * 40)
    add_member(engine, "ivy", "investigator")
    run("login", "ivy", "--password-stdin", stdin=PASSWORD + "\n")
    code, out = run("totp", "enrol", "--password-stdin", stdin=PASSWORD + "\n")
    uri = next(line for line in out.splitlines() if line.startswith("otpauth://"))
    with pytest.raises(service.Unauthenticated, match="wrong password"):
        run("login", "ivy", "--password-stdin", stdin=PASSWORD + "\n")
    code, out = run(
        "login", "ivy", "--otp", "--password-stdin",
        stdin=f"{PASSWORD}\n{pyotp.parse_uri(uri).now()}\n",
    )  # fmt: skip
    assert code == 0 and "logged in as ivy" in out
