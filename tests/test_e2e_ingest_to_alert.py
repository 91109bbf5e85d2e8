"""From a camera's webhook to a dispatcher's alert: HTTP ingest, the flow, pub/sub, Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import redis
from fastapi.testclient import TestClient

from api import create_app
from matchers import Entry, Hotlist, Policy
from plateflow.settings import Settings
from tests.test_flow import Subscriber, holder_for, run_drained

DATA = Path(__file__).parent / "data"
TOKEN = "cam-token-0123456789abcdef"


def test_vendor_webhooks_become_alerts_and_stored_reads(
    redis_client: redis.Redis, redis_url: str, data_dir: Path, tmp_path: Path
) -> None:
    settings = Settings.load(
        {},
        data_dir=str(data_dir),
        database_url=f"sqlite:///{tmp_path / 'records.db'}",
        ingest_tokens=TOKEN,
        partitions="2",
    )
    openalpr = json.loads((DATA / "openalpr_alpr_group.json").read_text())
    recognizer = json.loads((DATA / "platerecognizer_stream.json").read_text())
    # the lists hold the vendors' plates: one exact, one as an OCR look-alike (8 ~ B)
    wanted = Hotlist(
        "wanted", "stolen_vehicle", Policy(ocr_equivalents=1),
        (
            Entry("wanted:7TJK20", openalpr["best_plate_number"], None, "Stolen", "SO-1"),
            Entry("wanted:BMZT361", "BMZT361", None, "Stolen plate", "SO-2"),
        ),
    )  # fmt: skip
    headers = {"X-Plateflow-Token": TOKEN}
    with TestClient(create_app(settings, redis_url)) as client:
        first = client.post("/v1/ingest/openalpr", json=openalpr, headers=headers)
        second = client.post("/v1/ingest/platerecognizer", json=recognizer, headers=headers)
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    accepted = first.json()["accepted"] + second.json()["accepted"]
    assert accepted >= 3

    sub = Subscriber(redis_url)
    run_drained(settings, redis_url, holder_for(wanted))
    alerts = {a["read"]["plate"]: a for _, a in sub.close()}
    assert alerts[openalpr["best_plate_number"]]["match"]["kind"] == "exact"
    assert alerts["8MZT361"]["match"]["kind"] == "ocr"
    assert alerts["8MZT361"]["read"]["state"] == "CA"  # region us-ca
    table = ds.dataset(data_dir / "reads", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == accepted
