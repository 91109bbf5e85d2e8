"""The CLI's settings: each command's help shows only what it uses, ``plateflow settings``
shows values and sources with secrets masked, and a secret is never a flag."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from plateflow import _cli_settings
from plateflow.cli import COMMAND_SETTINGS, build_parser, command_parsers, main
from plateflow.settings import setting_fields

TOKEN = "camera-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: CI points PLATEFLOW_REDIS_URL and _DATABASE_URL at its servers."""
    for name in list(os.environ):
        if name.startswith("PLATEFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "250")  # argparse wraps help to the terminal width
    monkeypatch.chdir(tmp_path)


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_help_shows_only_the_settings_a_command_uses(capsys: pytest.CaptureFixture[str]) -> None:
    compact = help_of(capsys, "retention", "compact")  # subscribe logs in: it has the database
    assert "--redis-url" in compact and "[PLATEFLOW_REDIS_URL; default none]" in compact
    assert "settings: general:" in compact and "--data-dir" in compact
    for absent in ("--partitions", "--database-url", "--api-port", "--ocr-classes"):
        assert absent not in compact

    search = help_of(capsys, "search", "plate")
    for present in (
        "--database-url",
        "[PLATEFLOW_RETENTION_DAYS; default 365]",
        "--ocr-classes",
        "[PLATEFLOW_MIN_DESCRIPTION_LENGTH; default 20]",
        "settings: read store and retention (427.4):",
    ):
        assert present in search
    for absent in ("--redis-url", "--partitions", "--api-port", "--cooldown-s"):
        assert absent not in search
    usage = search.split("\n\n")[0]
    assert "--database-url" not in usage  # the groups list the settings, not the usage line


def test_every_command_declares_the_settings_it_uses() -> None:
    commands = {name for name, _ in command_parsers(build_parser())}
    assert commands == set(COMMAND_SETTINGS)


def test_a_setting_flag_works_where_it_is_used_and_is_explained_where_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["settings", "--json", "--partitions", "8"]) == 0
    rows = {row["name"]: row for row in orjson.loads(capsys.readouterr().out)}
    assert rows["partitions"]["value"] == 8 and rows["partitions"]["source"] == "flag"
    with pytest.raises(SystemExit) as done:
        main(["users", "roles", "--partitions", "8"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "does not use partitions (these do: run, demo" in err
    assert "PLATEFLOW_PARTITIONS sets it for every command" in err


def test_settings_lists_sources_and_masks_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATEFLOW_INGEST_TOKENS", TOKEN)
    monkeypatch.setenv("PLATEFLOW_DATABASE_URL", "postgresql://alpr:hunter2secret@db:5432/alpr")
    assert main(["settings", "--json", "--api-port", "9000"]) == 0
    text = capsys.readouterr().out
    assert TOKEN not in text and "hunter2secret" not in text
    rows = {row["name"]: row for row in orjson.loads(text)}
    assert set(rows) == {f.name for f in setting_fields()}
    assert rows["ingest_tokens"] | {"group": ""} == {
        "name": "ingest_tokens",
        "group": "",
        "variable": "PLATEFLOW_INGEST_TOKENS",
        "value": "***",
        "source": "env",
        "where": "PLATEFLOW_INGEST_TOKENS",
        "secret": True,
    }
    assert rows["database_url"]["value"] == "postgresql+psycopg://alpr:***@db:5432/alpr"
    assert (rows["api_port"]["value"], rows["api_port"]["source"]) == (9000, "flag")
    assert (rows["partitions"]["value"], rows["partitions"]["source"]) == (12, "default")

    monkeypatch.setattr(_cli_settings, "out", Console(width=250, no_color=True))
    assert main(["settings", "--api-port", "9000"]) == 0
    table = capsys.readouterr().out
    assert TOKEN not in table and "hunter2secret" not in table
    lines = {line.split("│")[2].strip(): line for line in table.splitlines() if "│" in line}
    assert (
        "***" in lines["ingest_tokens"] and "PLATEFLOW_INGEST_TOKENS_FILE" in lines["ingest_tokens"]
    )
    assert lines["api_port"].rstrip(" │").endswith("flag --api-port")
    assert lines["cooldown_s"].rstrip(" │").endswith("default")


def test_a_secret_file_shows_as_the_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "ingest-tokens"
    secret.write_text(TOKEN + "\n")
    monkeypatch.setenv("PLATEFLOW_INGEST_TOKENS_FILE", str(secret))
    assert main(["settings", "--json"]) == 0
    text = capsys.readouterr().out
    row = next(r for r in orjson.loads(text) if r["name"] == "ingest_tokens")
    assert (row["value"], row["source"], row["where"]) == ("***", "file", str(secret))
    assert TOKEN not in text


def test_a_secret_is_never_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    secrets = {"--" + f.name.replace("_", "-") for f in setting_fields() if f.metadata["secret"]}
    assert secrets  # ingest tokens at least
    for name, parser in command_parsers(build_parser()):
        flags = {s for action in parser._actions for s in action.option_strings}
        assert not flags & secrets, name
    with pytest.raises(SystemExit) as done:
        main(["serve", "--ingest-tokens", TOKEN])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "ingest_tokens is a secret and never a flag" in err
    assert "PLATEFLOW_INGEST_TOKENS_FILE" in err
    assert TOKEN not in err


def test_a_password_in_a_url_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["settings", "--database-url", "postgresql://alpr:hunter2secret@db/alpr"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--database-url carries a password" in err and "set PLATEFLOW_DATABASE_URL" in err
    assert "hunter2secret" not in err


def test_an_unknown_variable_stops_every_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATEFLOW_PARTITONS", "8")
    assert main(["settings"]) == 2
    assert "unknown setting(s) PLATEFLOW_PARTITONS" in capsys.readouterr().err
