"""``plateflow ingest FILE`` and ``plateflow serve`` against the real Redis.

The commands are driven through their own argparse registration (``plateflow._cli_api``) with
every setting's flag (``tests.cli_support.parser_of``), so these tests do not depend on every
other subcommand module.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from plateflow import _cli_api
from plateflow.cli import settings_from_args
from tests.cli_support import parser_of
from tests.test_api_support import all_reads, dead_letters

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[1]


def run_cli(argv: list[str]) -> int:
    args = parser_of(_cli_api).parse_args(argv)
    code: int = args.handler(args, settings_from_args(args))
    return code


@pytest.fixture(autouse=True)
def _redis_from_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite's Redis URL may carry a password (the embedded admin user): never a flag.
    monkeypatch.setenv("PLATEFLOW_REDIS_URL", redis_url)


def common(redis_url: str, data_dir: Path) -> list[str]:
    return ["--data-dir", str(data_dir), "--partitions", "4"]


def test_ingest_file_reports_bad_lines_and_dead_letters_them(
    redis_client: redis.Redis,
    redis_url: str,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_cli(
        ["ingest", str(DATA / "reads_mixed.jsonl"), "--batch", "2", *common(redis_url, data_dir)]
    )
    assert code == 1
    output = capsys.readouterr().out
    assert "3 reads ingested from 6 lines into 4 partitions; 3 rejected" in output
    assert "line 3: plate: 'X' normalises to 'X'" in output
    assert "line 4: line: not JSON" in output
    assert "line 5: confidence: 93 is outside 0..1" in output
    reads = {r["plate"]: r for r in all_reads(redis_client)}
    assert set(reads) == {"ABC1234", "7XYZ119", "4GHT221"}
    assert reads["4GHT221"]["read_id"] == "given-id-7"
    dead = dead_letters(redis_client)
    assert len(dead) == 3
    assert {d["source"] for d in dead} == {"file:reads"}
    assert "this line is not JSON" in [d["raw"] for d in dead]


def test_ingest_clean_file_in_batches(
    redis_client: redis.Redis, redis_url: str, data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "reads.jsonl"
    lines = [
        json.dumps(
            {
                "camera_id": f"cam-{i % 7}",
                "plate": f"TST{i:04d}",
                "ts": 1795867200000 + i,
                "confidence": 0.8,
            }
        )
        for i in range(2_500)
    ]
    # a line may also carry a camera batch (a JSON array)
    lines.append(
        json.dumps(
            [
                {"camera_id": "cam-x", "plate": "ARR001", "ts": 1795867200000, "confidence": 0.5},
                {"camera_id": "cam-x", "plate": "ARR002", "ts": 1795867200001, "confidence": 0.5},
            ]
        )
    )
    path.write_text("\n".join(lines) + "\n")
    assert run_cli(["ingest", str(path), "--batch", "1000", *common(redis_url, data_dir)]) == 0
    plates = sorted(r["plate"] for r in all_reads(redis_client))
    assert len(plates) == 2_502 and plates[0] == "ARR001"
    assert dead_letters(redis_client) == []


def test_ingest_vendor_file(
    redis_client: redis.Redis,
    redis_url: str,
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "agent.jsonl"
    messages = [
        json.loads((DATA / n).read_text())
        for n in (
            "openalpr_alpr_group.json",
            "openalpr_heartbeat.json",
            "openalpr_alpr_results.json",
        )
    ]
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    code = run_cli(["ingest", str(path), "--format", "openalpr", *common(redis_url, data_dir)])
    assert code == 1  # the one-letter plate of the alpr_results frame
    output = capsys.readouterr().out
    assert "2 reads ingested from 3 lines" in output and "1 messages without a read" in output
    assert "line 3: results[].plate" in output
    assert sorted(r["plate"] for r in all_reads(redis_client)) == ["7TJK20", "8BFX514"]


def test_ingest_missing_file_and_bad_batch(
    redis_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["ingest", str(data_dir / "nope.jsonl"), *common(redis_url, data_dir)]) == 2
    assert "no file at" in capsys.readouterr().out
    path = DATA / "reads_mixed.jsonl"
    assert run_cli(["ingest", str(path), "--batch", "0", *common(redis_url, data_dir)]) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_SERVE = (
    "import sys\n"
    "from plateflow import _cli_api\n"
    "from plateflow.cli import settings_from_args\n"
    "from tests.cli_support import parser_of\n"
    "a = parser_of(_cli_api).parse_args(sys.argv[1:])\n"
    "sys.exit(a.handler(a, settings_from_args(a)))\n"
)


def test_serve_runs_the_api_with_a_generated_token(
    redis_client: redis.Redis, redis_url: str, data_dir: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}
    env["COLUMNS"] = "200"
    env["PLATEFLOW_REDIS_URL"] = redis_url
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SERVE,
            "serve",
            "--generate-ingest-token",
            "--api-port",
            str(port),
            *common(redis_url, data_dir),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        token = None
        deadline = time.monotonic() + 20
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = re.search(r"ingest token for this run: (\S+)", line)
            token = found.group(1) if found else None
        assert token, "serve did not print its generated token"
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health.status_code == 200
        resp = httpx.post(
            f"{base}/v1/reads",
            json={
                "camera_id": "cam-live",
                "plate": "LIVE01",
                "ts": 1795867200000,
                "confidence": 0.9,
            },
            headers={"X-Plateflow-Token": token},
        )
        assert resp.status_code == 202 and resp.json()["accepted"] == 1
        assert [r["plate"] for r in all_reads(redis_client)] == ["LIVE01"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
