"""The settings object: sources, secrets from a file, unknown variables, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from plateflow._ingest_tokens import token_digest
from plateflow.errors import SettingsError
from plateflow.settings import GROUPS, Settings, Source, setting_fields

TOKEN_A = "a" * 24
TOKEN_B = "b" * 24


def test_sources_are_default_env_and_flag() -> None:
    settings, sources = Settings.load_explained(
        {"PLATEFLOW_PARTITIONS": "8", "PLATEFLOW_BATCH_SIZE": "50"}, batch_size="70"
    )
    assert (settings.partitions, settings.batch_size) == (8, 70)
    assert sources["partitions"] == Source("env", "PLATEFLOW_PARTITIONS")
    assert sources["batch_size"] == Source("flag", "--batch-size")
    assert sources["cooldown_s"] == Source("default")
    assert set(sources) == {f.name for f in setting_fields()}


def test_a_secret_comes_from_the_file_its_file_variable_names(tmp_path: Path) -> None:
    secret = tmp_path / "tokens"
    secret.write_text(f"{TOKEN_A}\n{TOKEN_B}\n")
    settings, sources = Settings.load_explained({"PLATEFLOW_INGEST_TOKENS_FILE": str(secret)})
    # Bare tokens (the old format): any camera, found by their hash, the file kept for reloads.
    tokens = settings.ingest_tokens
    assert [t.sha256 for t in tokens.tokens] == [token_digest(TOKEN_A), token_digest(TOKEN_B)]
    assert tokens.find(TOKEN_B) is tokens.tokens[1] and tokens.find("c" * 24) is None
    assert {t.cameras for t in tokens.tokens} == {None}
    assert tokens.path == secret
    assert sources["ingest_tokens"] == Source("file", str(secret))
    url_file = tmp_path / "url"
    url_file.write_text("redis://ingest:pw@h:6379/0\n")
    settings = Settings.load({"PLATEFLOW_REDIS_INGEST_URL_FILE": str(url_file)})
    assert settings.redis_ingest_url == "redis://ingest:pw@h:6379/0"


def test_a_secret_given_twice_or_in_a_missing_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "tokens"
    secret.write_text(TOKEN_A)
    both = {"PLATEFLOW_INGEST_TOKENS": TOKEN_B, "PLATEFLOW_INGEST_TOKENS_FILE": str(secret)}
    with pytest.raises(SettingsError, match=r"both PLATEFLOW_INGEST_TOKENS and .*_FILE; unset one"):
        Settings.load(both)
    missing = {"PLATEFLOW_REDIS_INGEST_URL_FILE": str(tmp_path / "nope")}
    with pytest.raises(
        SettingsError, match=r"redis_ingest_url \(PLATEFLOW_REDIS_INGEST_URL_FILE\)"
    ):
        Settings.load(missing)


def test_a_missing_tokens_file_means_no_tokens_yet(tmp_path: Path) -> None:
    # The API re-reads the tokens file: it may be created after the server started.
    path = tmp_path / "tokens.jsonl"
    settings = Settings.load({"PLATEFLOW_INGEST_TOKENS_FILE": str(path)})
    assert not settings.ingest_tokens and settings.ingest_tokens.path == path


def test_a_bad_secret_is_named_but_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "tokens"
    secret.write_text("short-secret\n")
    with pytest.raises(SettingsError, match=r"ingest_tokens \(file .*\) = \*\*\* ") as caught:
        Settings.load({"PLATEFLOW_INGEST_TOKENS_FILE": str(secret)})
    assert "short-secret" not in str(caught.value)


def test_unknown_variables_are_errors_and_file_variables_exist_only_for_secrets() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting.*PLATEFLOW_PARTITONS"):
        Settings.load({"PLATEFLOW_PARTITONS": "8"})
    with pytest.raises(SettingsError, match=r"unknown setting.*PLATEFLOW_PARTITIONS_FILE"):
        Settings.load({"PLATEFLOW_PARTITIONS_FILE": "/etc/hostname"})


def test_bad_values_name_the_setting_the_source_and_what_is_allowed() -> None:
    with pytest.raises(SettingsError, match=r"partitions \(env PLATEFLOW_PARTITIONS\) = '0'.*1 to"):
        Settings.load({"PLATEFLOW_PARTITIONS": "0"})
    with pytest.raises(SettingsError, match=r"partitions \(flag --partitions\) = 'x'"):
        Settings.load({}, partitions="x")


def test_every_setting_is_in_a_known_group() -> None:
    assert {f.metadata["group"] for f in setting_fields()} <= set(GROUPS)


def test_an_alert_stream_heartbeat_must_fit_twice_in_the_idle_timeout() -> None:
    # each heartbeat is the open stream's use of its session (contracts: "Sessions")
    with pytest.raises(SettingsError, match=r"sse_heartbeat_s = 300 is more than half of .*= 300"):
        Settings.load({"PLATEFLOW_SSE_HEARTBEAT_S": "300", "PLATEFLOW_SESSION_IDLE_S": "300"})
    settings = Settings.load(
        {"PLATEFLOW_SSE_HEARTBEAT_S": "150", "PLATEFLOW_SESSION_IDLE_S": "300"}
    )
    assert settings.sse_heartbeat_s == 150
