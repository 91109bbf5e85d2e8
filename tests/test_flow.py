"""The real flow, run with bytewax.testing, against the real Redis and real Parquet files."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyarrow.dataset as ds
import pytest
import redis
from bytewax.testing import cluster_main, run_main

from dataflow import FlowConfig, FlowOptions, HotlistConfig, IndexHolder, build_flow
from matchers import Entry, Geofences, Hotlist, OcrClasses, Policy
from plateflow.settings import Settings
from sinks import (
    ALERTS_CHANNEL,
    ALERTS_LOG,
    COVERT_CHANNEL,
    COVERT_LOG,
    DEADLETTER_STREAM,
    append_reads,
    stream_key,
)
from sinks import (
    HOTLISTS_CHANGED as HOTLISTS,
)

T0 = 1_795_867_200_000  # 2026-11-28T12:00:00Z

STOLEN = Hotlist(
    name="stolen",
    category="stolen_vehicle",
    policy=Policy(ocr_equivalents=1, priority=1),
    entries=(
        Entry("stolen:7ABC123", "7ABC123", "CA", "Stolen vehicle", "SO-1"),
        Entry("stolen:4XYZ999", "4XYZ999", None, "Stolen plate", "SO-2"),
    ),
)
COVERT = Hotlist(
    name="taskforce",
    category="wanted_vehicle",
    policy=Policy(covert=True),
    entries=(Entry("taskforce:6DEF456", "6DEF456", None, "Notify case agent", "TF-9"),),
)


class Subscriber:
    """A real Redis subscriber collecting every message of the alert channels in a thread."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(ALERTS_CHANNEL, COVERT_CHANNEL)
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.pubsub.get_message(timeout=0.1)
            if msg is not None:
                self.messages.append((msg["channel"].decode(), orjson.loads(msg["data"])))

    def close(self) -> list[tuple[str, dict[str, Any]]]:
        time.sleep(0.3)
        self._stop.set()
        self._thread.join()
        self.pubsub.close()
        self.client.close()
        return self.messages


@pytest.fixture()
def settings(data_dir: Path, redis_url: str) -> Settings:
    return Settings.load({}, data_dir=str(data_dir), partitions="3", cooldown_s="60")


def holder_for(*lists: Hotlist) -> IndexHolder:
    by_name = {h.name: h for h in lists}
    return IndexHolder(lambda: list(by_name.values()), by_name.get, OcrClasses())


def read(i: int, plate: str, camera: str = "cam-1", **extra: Any) -> dict[str, Any]:
    return {
        "read_id": f"r{i}",
        "camera_id": camera,
        "plate": plate,
        "ts": T0 + i * 1000,
        "confidence": 0.9,
        **extra,
    }


def run_drained(settings: Settings, url: str, holder: IndexHolder, **kw: Any) -> None:
    flow = build_flow(
        FlowConfig.from_settings(settings),
        url,
        holder,
        FlowOptions(drain=True, flush_s=0.2),
        kw.pop("geofences", None),
    )
    if kw.get("workers"):
        cluster_main(flow, [], 0, worker_count_per_proc=kw["workers"])
    else:
        run_main(flow)


@contextmanager
def flow_running(
    settings: Settings, url: str, holder: IndexHolder, drain_after_s: float
) -> Iterator[Subscriber]:
    """The flow on a thread while the block feeds it, stopping once every stream is read to
    its end (no sooner than ``drain_after_s``); yields the subscriber that collects its alerts.
    The holder stops after the block."""
    options = FlowOptions(drain=True, drain_after_s=drain_after_s)
    flow = build_flow(FlowConfig.from_settings(settings), url, holder, options)
    sub = Subscriber(url)
    runner = threading.Thread(target=run_main, args=(flow,))
    runner.start()
    try:
        yield sub
    finally:
        runner.join(timeout=60)
        holder.stop()


def parquet_rows(data_dir: Path, kind: str = "reads") -> Any:
    """Read every stored file with pyarrow (an independent reader), hive partitions included."""
    dataset = ds.dataset(data_dir / kind, format="parquet", partitioning="hive")
    return dataset.to_table()


@pytest.fixture()
def traffic(redis_client: redis.Redis, settings: Settings) -> Iterator[list[dict[str, Any]]]:
    reads = [read(i, f"1AAA{i:03d}", camera=f"cam-{i % 7}") for i in range(300)]
    reads += [
        read(1000, "7ABC123", state="CA"),  # exact
        read(1001, "7A8C123", camera="cam-2", state="CA"),  # one OCR substitution (B -> 8)
        read(1002, "6DEF456", camera="cam-3"),  # covert
        read(1003, "4XYZ999", camera="cam-4", lat=38.58, lon=-121.1),  # inside the geofence
    ]
    append_reads(redis_client, reads, settings.partitions)
    # malformed: not JSON, a read without a plate, confidence as a percentage
    redis_client.xadd(stream_key(0), {b"data": b"{not json"})
    redis_client.xadd(stream_key(1), {b"data": orjson.dumps({"camera_id": "c", "ts": T0})})
    redis_client.xadd(
        stream_key(2), {b"data": orjson.dumps(read(5000, "ABC123") | {"confidence": 93})}
    )
    yield reads


GEOFENCE = Path(__file__).parent.parent / "plateflow" / "samples" / "geofences.geojson"


def test_flow_end_to_end(
    redis_client: redis.Redis, redis_url: str, settings: Settings, traffic: list[dict[str, Any]]
) -> None:
    sub = Subscriber(redis_url)
    run_drained(
        settings,
        redis_url,
        holder_for(STOLEN, COVERT),
        geofences=Geofences.from_json(GEOFENCE.read_bytes()),
    )
    messages = sub.close()

    general = [a for ch, a in messages if ch == ALERTS_CHANNEL]
    covert = [a for ch, a in messages if ch == COVERT_CHANNEL]
    assert sorted((a["read"]["plate"], a["match"]["kind"]) for a in general) == [
        ("4XYZ999", "exact"), ("7A8C123", "ocr"), ("7ABC123", "exact"),
    ]  # fmt: skip
    assert [a["read"]["plate"] for a in covert] == ["6DEF456"]
    for alert in general + covert:
        assert alert["verify_before_action"] is True
        assert "427.3(g)" in alert["advisories"][0]
    ocr = next(a for a in general if a["match"]["kind"] == "ocr")
    assert ocr["match"]["substitutions"] and ocr["entry"]["case_number"] == "SO-1"
    fenced = next(a for a in general if a["read"]["plate"] == "4XYZ999")
    assert any("tribal law enforcement" in adv for adv in fenced["advisories"])
    assert redis_client.xlen(ALERTS_LOG) == 3 and redis_client.xlen(COVERT_LOG) == 1

    dead = redis_client.xrange(DEADLETTER_STREAM)
    reasons = sorted(fields[b"reason"].decode().split(":")[0] for _, fields in dead)
    assert reasons == ["confidence", "payload", "plate"]

    table = parquet_rows(settings.data_dir)
    assert table.num_rows == len(traffic)
    assert sorted(table.column("read_id").to_pylist()) == sorted(r["read_id"] for r in traffic)
    assert set(table.column("date").to_pylist()) == {"2026-11-28"}
    for name in ("camera_id", "plate", "ts", "confidence", "state", "lat", "lon", "candidates"):
        assert name in table.column_names
    alerts_table = parquet_rows(settings.data_dir, "alerts")
    assert sorted(alerts_table.column("alert_id").to_pylist()) == sorted(
        a["alert_id"] for a in general + covert
    )


def test_replay_from_start_gives_same_alert_ids_and_no_duplicate_rows(
    redis_client: redis.Redis, redis_url: str, settings: Settings, traffic: list[dict[str, Any]]
) -> None:
    holder = holder_for(STOLEN, COVERT)
    sub = Subscriber(redis_url)
    run_drained(settings, redis_url, holder)
    first = sub.close()
    files_before = sorted(p.name for p in (settings.data_dir / "reads").rglob("*.parquet"))

    redis_client.delete("plateflow:offsets")  # forget progress: the flow re-reads from the start
    sub = Subscriber(redis_url)
    run_drained(settings, redis_url, holder)
    second = sub.close()

    assert sorted(a["alert_id"] for _, a in second) == sorted(a["alert_id"] for _, a in first)
    assert all(a["sighting_of"] is None for _, a in second)  # a replay is not a new sighting
    table = parquet_rows(settings.data_dir)
    ids = table.column("read_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(traffic)
    files_after = sorted(p.name for p in (settings.data_dir / "reads").rglob("*.parquet"))
    assert files_after == files_before


def test_restart_resumes_after_committed_offset(
    redis_client: redis.Redis, redis_url: str, settings: Settings, traffic: list[dict[str, Any]]
) -> None:
    holder = holder_for(STOLEN)
    run_drained(settings, redis_url, holder)
    more = [read(2000 + i, f"2BBB{i:03d}", camera=f"cam-{i % 5}") for i in range(50)]
    more.append(read(2100, "7ABC123", camera="cam-9", state="CA"))
    append_reads(redis_client, more, settings.partitions)
    sub = Subscriber(redis_url)
    run_drained(settings, redis_url, holder)
    messages = sub.close()
    # only the new read alerts, and as a sighting of the first alert (cooldown 60 s)
    assert [(a["read"]["read_id"], bool(a["sighting_of"])) for _, a in messages] == [
        ("r2100", True)
    ]
    ids = parquet_rows(settings.data_dir).column("read_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(traffic) + len(more)


def test_two_workers_store_every_read_once(
    redis_client: redis.Redis, redis_url: str, settings: Settings, traffic: list[dict[str, Any]]
) -> None:
    sub = Subscriber(redis_url)
    run_drained(settings, redis_url, holder_for(STOLEN, COVERT), workers=2)
    messages = sub.close()
    assert len(messages) == 4
    ids = parquet_rows(settings.data_dir).column("read_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(traffic)


def test_hot_reload_alerts_on_an_entry_added_while_reads_flow(
    redis_client: redis.Redis, redis_url: str, settings: Settings
) -> None:
    lists = {"stolen": STOLEN}
    holder = IndexHolder(lambda: list(lists.values()), lists.get, OcrClasses())
    holder.listen(redis_url)
    with flow_running(settings, redis_url, holder, drain_after_s=6.0) as sub:
        feeder = redis.Redis.from_url(redis_url)
        sent: list[dict[str, Any]] = []
        added_at = None
        for i in range(40):
            if i == 10:
                entry = Entry("stolen:9NEW001", "9NEW001", None, "Just reported", "SO-77")
                lists["stolen"] = Hotlist(
                    "stolen", STOLEN.category, STOLEN.policy, (*STOLEN.entries, entry), 2
                )
                feeder.publish("plateflow:hotlists:changed", "stolen")
                added_at = time.time()
            batch = [read(3000 + i * 10 + k, f"5CCC{i:02d}{k}") for k in range(9)]
            batch.append(read(3000 + i * 10 + 9, "9NEW001", camera="cam-8"))
            append_reads(feeder, batch, settings.partitions)
            sent += batch
            time.sleep(0.1)
        feeder.close()
    messages = sub.close()
    hits = [a for _, a in messages if a["entry"]["plate"] == "9NEW001"]
    assert hits, "the entry added under the running flow never alerted"
    assert added_at is not None
    assert hits[0]["emitted_at"] / 1000 - added_at < 5.0
    ids = parquet_rows(settings.data_dir).column("read_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(sent)  # no read lost while the index was swapped


def test_flow_metrics_are_served_by_the_bytewax_api_server(
    redis_client: redis.Redis,
    redis_url: str,
    settings: Settings,
    traffic: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import urllib.request

    from dataflow import run_flow

    monkeypatch.setenv("BYTEWAX_DATAFLOW_API_ENABLED", "true")
    bodies: list[str] = []

    def scrape() -> None:
        deadline = time.time() + 8
        while time.time() < deadline and not bodies:
            try:
                with urllib.request.urlopen("http://127.0.0.1:3030/metrics", timeout=1) as rsp:
                    body = rsp.read().decode()
                if "plateflow_flow_reads_total" in body and "plateflow_flow_match_seconds" in body:
                    bodies.append(body)
            except OSError:
                time.sleep(0.2)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    run_flow(
        settings,
        redis_url,
        holder=holder_for(STOLEN, COVERT),
        options=FlowOptions(drain=True, drain_after_s=4.0, flush_s=0.2),
    )
    scraper.join()
    assert bodies, "no plateflow metrics on http://127.0.0.1:3030/metrics"
    assert 'plateflow_flow_reads_rejected_total{reason="confidence"}' in bodies[0]


def test_hot_reload_from_the_records_database(
    redis_client: redis.Redis, redis_url: str, settings: Settings, database_url: str
) -> None:
    """The production path: a list in the records database, changed with ``records.add_entry``
    (which announces the change) while the flow runs with ``make_holder``."""
    import records
    from dataflow import make_holder
    from tests import records_support

    engine = records_support.fresh(database_url)
    records.create_hotlist(
        engine, "wanted", category="wanted_vehicle", user="admin", policy={"ocr_equivalents": 1}
    )
    settings = settings.replace(database_url=database_url)
    holder = make_holder(HotlistConfig.from_settings(settings), redis_url)
    with flow_running(settings, redis_url, holder, drain_after_s=5.0) as sub:
        for i in range(30):
            if i == 5:
                records.add_entry(
                    engine, "wanted", "8WANTE0", user="admin", reason="Felony warrant",
                    case_number="W-1", notify=lambda name: redis_client.publish(HOTLISTS, name),
                )  # fmt: skip
            append_reads(redis_client, [read(4000 + i, "8WANTED")], settings.partitions)
            time.sleep(0.1)
    engine.dispose()
    hits = [a for _, a in sub.close() if a["hotlist"]["name"] == "wanted"]
    assert (
        hits and hits[0]["match"]["kind"] == "ocr"
    )  # 8WANTED ~ 8WANTE0 (D and 0 are OCR look-alikes)


def test_streams_are_trimmed_once_stored_and_past_the_keep_time(
    redis_client: redis.Redis, redis_url: str, settings: Settings, traffic: list[dict[str, Any]]
) -> None:
    run_drained(settings, redis_url, holder_for(STOLEN))
    before = sum(redis_client.xlen(stream_key(p)) for p in range(settings.partitions))
    assert before > 0  # the default keeps a day of stream for replay

    redis_client.delete("plateflow:offsets")
    trimmed = settings.replace(stream_keep_s=0)
    run_drained(trimmed, redis_url, holder_for(STOLEN))
    after = [redis_client.xlen(stream_key(p)) for p in range(settings.partitions)]
    assert all(n <= 1 for n in after), after  # only each partition's committed entry remains
    ids = parquet_rows(settings.data_dir).column("read_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(traffic)


def test_an_alternate_plate_hits_and_the_read_keeps_its_alternates(
    redis_client: redis.Redis, redis_url: str, settings: Settings
) -> None:
    """A camera's second guess is matched for a list that asks for it, and stored with the read,
    beside a batch of reads without alternates."""
    alternates = Hotlist(
        name="amber",
        category="amber_alert",
        policy=Policy(candidates=True, priority=0),
        entries=(Entry("amber:8KLM321", "8KLM321", None, "Amber alert", "AA-1"),),
    )
    second_guess = [{"plate": "8KLM321", "confidence": 0.41}]
    reads = [read(i, f"2BBB{i:03d}") for i in range(50)]
    reads.append(read(100, "8KLN321", confidence=0.7, candidates=second_guess))
    append_reads(redis_client, reads, settings.partitions)
    sub = Subscriber(redis_url)
    run_drained(settings, redis_url, holder_for(alternates))
    (alert,) = [a for ch, a in sub.close() if ch == ALERTS_CHANNEL]
    assert alert["read"]["plate"] == "8KLN321" and alert["entry"]["plate"] == "8KLM321"
    assert alert["read"]["candidates"] == second_guess
    table = parquet_rows(settings.data_dir)
    ids, found = table.column("read_id").to_pylist(), table.column("candidates").to_pylist()
    stored = dict(zip(ids, found, strict=True))
    assert len(stored) == len(reads)
    assert stored["r100"] == [{"plate": "8KLM321", "confidence": pytest.approx(0.41)}]
    assert stored["r0"] == []
