"""The README's first command, run as a user would: ``plateflow demo``, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import redis
from fastapi.testclient import TestClient

from api import create_app
from plateflow.settings import Settings
from tests.test_flow import Subscriber


def test_demo_publishes_alerts_and_stores_every_read(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}
    env["PLATEFLOW_REDIS_URL"] = redis_url
    env["PLATEFLOW_DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
    sub = Subscriber(redis_url)
    proc = subprocess.run(
        [sys.executable, "-m", "plateflow.cli", "demo", "--duration", "4", "--rate", "1500"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    messages = sub.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "plateflow demo summary" in proc.stdout
    assert len(messages) >= 5, proc.stdout[-2000:]
    kinds = {a["match"]["kind"] for _, a in messages}
    assert "exact" in kinds
    table = ds.dataset(tmp_path / "plateflow-data" / "reads", partitioning="hive").to_table()
    sent = int(next(line for line in proc.stdout.splitlines() if "reads sent" in line)
               .split("│")[2].strip().replace(",", ""))  # fmt: skip
    dead = int(redis_client.xlen("plateflow:deadletter"))
    assert table.num_rows + dead == sent
    assert len(set(table.column("read_id").to_pylist())) == table.num_rows
    # the newcomer's next step: the public page, served on the demo's data and records
    assert "/transparency" in proc.stdout
    settings = Settings.load(
        environ={},
        data_dir=str(tmp_path / "plateflow-data"),
        database_url=env["PLATEFLOW_DATABASE_URL"],
    )
    with TestClient(create_app(settings, redis_url)) as client:
        page = client.get("/v1/transparency").json()
        html = client.get("/transparency").text
    assert page["reads"]["total"] == table.num_rows
    assert page["policy"]["current"]["title"].startswith("Automated License Plate Readers")
    assert page["designees"]["current"]["administrator"]["name"] == "Alex Sample"
    assert "Alex Sample" in html and "427.4 Retention" in html
