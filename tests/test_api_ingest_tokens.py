"""Ingest identity: tokens bound to cameras, the token id on every read, reloads without a
restart. Real Redis, real uvicorn, the real CLI writing the real tokens file."""

from __future__ import annotations

import stat
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from api import create_app
from plateflow import cli
from plateflow._ingest_tokens import IngestTokens, token_digest
from plateflow.settings import Settings
from tests.test_api_support import PARTITIONS, all_reads, dead_letters, read
from tests.test_api_vendors import AGENT, sample
from tests.test_bench_target import _Api


@dataclass
class TokensFile:
    """A tokens file edited by the real CLI: ``plateflow ingest token ... --file path``."""

    path: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> int:
        """``plateflow ingest token ARGS --file path``; the exit code."""
        return cli.main(["ingest", "token", *args, "--file", str(self.path)])

    def add(self, *args: str) -> str:
        """``token add ARGS``; the token it printed once."""
        self.capsys.readouterr()
        assert self.run("add", *args) == 0
        printed = self.capsys.readouterr().out.strip()
        assert len(printed) >= 32 and "\n" not in printed
        return printed


@pytest.fixture()
def tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> TokensFile:
    return TokensFile(tmp_path / "tokens.jsonl", capsys)


def _settings(data_dir: Path, path: Path) -> Settings:
    return Settings.load(
        {"PLATEFLOW_INGEST_TOKENS_FILE": str(path)},
        data_dir=str(data_dir),
        partitions=str(PARTITIONS),
    )


def test_the_cli_writes_hashes_only_and_prints_each_token_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "secrets" / "tokens.jsonl"  # the CLI makes the directory
    tokens = TokensFile(path, capsys)
    one = tokens.add("--camera", "cam-elm-01")
    agent = tokens.add("--camera", "cam-a", "--camera", "cam-b", "--agent", "north-lot")
    again = tokens.add("--camera", "cam-elm-01")  # a second token: rotation
    text = path.read_text()
    assert one not in text and agent not in text and token_digest(one) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    table = IngestTokens.parse(text)
    assert [t.token_id for t in table.tokens] == ["cam-elm-01", "north-lot", "cam-elm-01-2"]
    found = table.find(agent)
    assert found is not None and found.cameras == frozenset({"cam-a", "cam-b"})
    assert found.agent == "north-lot" and found.created
    assert table.find(again) is table.tokens[2]

    capsys.readouterr()
    assert tokens.run("list") == 0
    listed = capsys.readouterr().out
    assert "north-lot" in listed and "cam-b" in listed and token_digest(one) not in listed
    assert tokens.run("revoke", "cam-elm-01") == 0
    assert IngestTokens.parse(path.read_text()).find(one) is None
    # Several cameras need a name; an unknown id cannot be revoked.
    assert tokens.run("add", "--camera", "x", "--camera", "y") == 1
    assert "needs --agent NAME" in capsys.readouterr().err
    assert tokens.run("revoke", "nobody") == 1
    assert "no ingest token has the id 'nobody'" in capsys.readouterr().err


def test_a_bad_tokens_file_is_refused_naming_the_line(tmp_path: Path) -> None:
    good = IngestTokens.parse('{"id": "c1", "sha256": "' + "a" * 64 + '", "cameras": ["c1"]}')
    assert [t.token_id for t in good.tokens] == ["c1"]
    with pytest.raises(ValueError, match=r"line 2: cameras: a non-empty list"):
        IngestTokens.parse('# comment\n{"id": "c1", "sha256": "' + "a" * 64 + '", "cameras": []}')
    with pytest.raises(ValueError, match=r"line 1: sha256: the token's SHA-256"):
        IngestTokens.parse('{"id": "c1", "sha256": "secret", "cameras": ["c1"]}')
    with pytest.raises(ValueError, match=r"'c1' is given twice"):
        line = '{"id": "c1", "sha256": "%s", "cameras": ["c1"]}\n'
        IngestTokens.parse(line % ("a" * 64) + line % ("b" * 64))
    with pytest.raises(ValueError, match=r"line 1: tokens of at least 16 characters"):
        IngestTokens.parse("short")


def test_a_token_posts_only_for_its_cameras_and_its_id_is_on_each_read(
    tokens: TokensFile, data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    alpr = sample("openalpr_alpr_group.json")
    alpr_camera = f"{AGENT}-{alpr['camera_id']}"
    cameras = ("--camera", "cam-elm-01", "--camera", "cam-oak-02", "--camera", alpr_camera)
    mine = tokens.add(*cameras, "--agent", "ag")
    with TestClient(create_app(_settings(data_dir, tokens.path), redis_url)) as api:
        api.headers["X-Plateflow-Token"] = mine
        # A token_id in the body is not believed: the authenticated token's id is recorded.
        ok = api.post("/v1/reads", json=[read(token_id="forged"), read(camera="cam-oak-02")])
        assert ok.status_code == 202, ok.text
        assert {r["token_id"] for r in all_reads(redis_client)} == {"ag"}
        # The careful path (a read with alternates) and a vendor door record it too.
        careful = read(candidates=[{"plate": "ABC1235", "confidence": 0.5}], token_id="x")
        assert api.post("/v1/reads", json=careful).status_code == 202
        assert api.post("/v1/ingest/openalpr", json=alpr).status_code == 202
        stored = all_reads(redis_client)
        assert len(stored) == 4 and {r["token_id"] for r in stored} == {"ag"}

        # One read of another camera: the whole batch is refused, the camera named.
        batch = [
            read(plate="NEW0001"),
            read(camera="cam-pine-09", plate="NEW0002"),
            read(plate="Q"),
        ]
        refused = api.post("/v1/reads", json=batch)
        assert refused.status_code == 403
        detail = refused.json()["detail"]
        assert "'cam-pine-09'" in detail and "'ag'" in detail
        assert "nothing of this request was stored" in detail
        assert all_reads(redis_client) == stored  # nothing of it was written
        letters = dead_letters(redis_client)
        assert len(letters) == 1  # the foreign read, with its reason; not its batch mates
        assert orjson.loads(letters[0]["raw"])["camera_id"] == "cam-pine-09"
        assert letters[0]["reason"] == (
            "camera_id: ingest token 'ag' may not post for camera 'cam-pine-09'"
        )
        # The vendor doors check the same way.
        foreign = api.post("/v1/ingest/openalpr", json=alpr | {"camera_id": 77})
        assert foreign.status_code == 403 and f"'{AGENT}-77'" in foreign.json()["detail"]
        metrics = api.get("/metrics").text
        assert 'plateflow_api_auth_failures_total{kind="ingest",reason="camera"} 2.0' in metrics


def test_tokens_reload_without_a_restart(
    tokens: TokensFile, data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    path = tokens.path  # absent at start: ingest is closed until it appears
    server = _Api(_settings(data_dir, path), redis_url)
    url = f"http://127.0.0.1:{server.port}/v1/reads"

    def post(token: str, camera: str = "cam-elm-01") -> int:
        resp = httpx.post(url, json=read(camera=camera), headers={"X-Plateflow-Token": token})
        return resp.status_code

    def soon(token: str, want: int) -> None:
        deadline = time.monotonic() + 10
        while (got := post(token)) != want:
            assert time.monotonic() < deadline, f"still {got}, not {want}"
            time.sleep(0.2)

    try:
        assert post("z" * 32) == 401
        first = tokens.add("--camera", "cam-elm-01")
        soon(first, 202)
        second = tokens.add("--camera", "cam-oak-02")
        soon(second, 403)  # known now, and bound to its own camera
        assert post(second, "cam-oak-02") == 202
        assert tokens.run("revoke", "cam-elm-01") == 0
        soon(first, 401)
        # A broken file keeps the tokens in force (logged), rather than opening or closing all.
        path.write_text(path.read_text() + "{not json\n")
        time.sleep(1.5)
        assert post(second, "cam-oak-02") == 202
        assert post(first) == 401
    finally:
        server.stop()
    assert {r["token_id"] for r in all_reads(redis_client)} == {"cam-elm-01", "cam-oak-02"}
