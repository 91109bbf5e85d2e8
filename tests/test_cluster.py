"""The flow as a cluster of real processes (tests/cluster_support.py): each started with the
flow StatefulSet's command and its pod's environment, against a private Redis that carries the
dev overlay's ACL users (the flow runs as user ``flow``, cameras write as ``ingest``).

(a) 2 and 3 processes store every read once and publish the alert ids one process publishes;
(b) ``kill -9`` of one process: the others exit, the restarted cluster loses nothing and stores
nothing twice, alerts repeat only with their ids; (c) 2 -> 3 -> 2 processes while cameras keep
sending; (d) Redis restarted under the running cluster, AOF on; (f) the data volume full:
nothing is committed past unwritten reads, and the flow catches up once there is room.
(e), PostgreSQL restarted, is in tests/test_cluster_postgres.py.
"""

from __future__ import annotations

import collections
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from plateflow.simulator import Simulator
from sinks import OFFSETS_KEY, stream_key
from tests.cluster_support import (
    PARTITIONS,
    Feeder,
    FillableVolume,
    FlowCluster,
    LocalRedis,
    caught_up,
    copy_streams,
    hotlist_csv,
    logged_alert_ids,
    metric,
    metric_sum,
    no_leftover_processes,  # noqa: F401 (autouse)
    preload,
    stored_read_ids,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)

HOT = [f"{i}HOT{i:03d}" for i in range(1, 60)]
START_S = 180  # a process imports, builds its index and meets its peers; the machine is shared


def traffic(seed: int) -> Simulator:
    return Simulator(
        n_cameras=48, hot_plates=[(p, None) for p in HOT], hit_rate=0.01, malformed_rate=0.0,
        seed=seed,
    )  # fmt: skip


@pytest.fixture()
def hotlists(tmp_path: Path) -> tuple[Path, ...]:
    return (hotlist_csv(tmp_path / "stolen.csv", HOT),)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[LocalRedis]:
    local = LocalRedis(tmp_path / "redis").start()
    yield local
    local.stop()


@pytest.fixture()
def admin(server: LocalRedis) -> Iterator[redis.Redis]:
    client = server.client()
    yield client
    client.close()


def cluster(
    n: int, server: LocalRedis, tmp_path: Path, hotlists: tuple[Path, ...], **kw: object
) -> FlowCluster:
    return FlowCluster(
        n,
        server.url("flow"),
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'records.db'}",
        tmp_path / "work",
        hotlists,
        **kw,  # type: ignore[arg-type]
    )


def one_process_alert_ids(
    source: redis.Redis, tmp_path: Path, hotlists: tuple[Path, ...]
) -> list[str]:
    """The alert ids a single process publishes for the same stream entries."""
    reference = LocalRedis(tmp_path / "reference-redis").start()
    try:
        client = reference.client()
        copy_streams(source, client)
        ref = cluster(1, reference, tmp_path / "reference", hotlists, drain=True).start()
        assert ref.wait(START_S + 120) == [0], ref.logs()
        return logged_alert_ids(client)
    finally:
        reference.stop()


def partitions_in_log(log: str) -> list[int]:
    """The partitions a flow process built, from its log (the source logs each one)."""
    return sorted({int(p) for p in re.findall(r"plateflow:reads:(\d+)\s+starts after", log)})


def assert_stored_once(data_dir: Path, accepted: list[str], sent: list[str] | None = None) -> None:
    stored = stored_read_ids(data_dir)
    counts = collections.Counter(stored)
    twice = [rid for rid, n in counts.items() if n > 1]
    assert not twice, f"{len(twice)} reads stored more than once, e.g. {twice[:3]}"
    missing = set(accepted) - set(counts)
    assert not missing, f"{len(missing)} accepted reads never stored, e.g. {sorted(missing)[:3]}"
    if sent is not None:
        assert set(counts) <= set(sent), "stored reads that were never sent"


@pytest.mark.parametrize("processes", [2, 3])
def test_a_n_processes_store_every_read_once_with_one_process_alert_ids(
    processes: int, server: LocalRedis, admin: redis.Redis, tmp_path: Path,
    hotlists: tuple[Path, ...],
) -> None:  # fmt: skip
    accepted = preload(admin, traffic(processes), 60_000)
    flow = cluster(processes, server, tmp_path, hotlists).start()
    # each process serves its own /metrics on its own port, with its share of the partitions
    share = 12 // processes
    for i in range(processes):
        flow.wait_until(
            f"process {i} to own {share} partitions",
            lambda i=i: metric(flow.metrics(i), "plateflow_flow_partitions_owned") == share,
            START_S,
        )
    flow.wait_until("the flow to catch up", lambda: caught_up(admin), 120)
    flow.stop()
    # each partition read by exactly one process, an equal share each
    owned = [partitions_in_log(flow.log(i)) for i in range(processes)]
    assert sorted(p for share in owned for p in share) == list(range(12)), owned
    assert [len(share) for share in owned] == [12 // processes] * processes

    assert_stored_once(tmp_path / "data", accepted)
    alert_ids = logged_alert_ids(admin)
    assert alert_ids, "no alerts: the test traffic has hot plates"
    assert len(alert_ids) == len(set(alert_ids)), "an alert was published twice"
    assert sorted(alert_ids) == sorted(one_process_alert_ids(admin, tmp_path, hotlists))


def test_b_kill_9_of_one_process_then_restart_loses_and_duplicates_nothing(
    server: LocalRedis, admin: redis.Redis, tmp_path: Path, hotlists: tuple[Path, ...]
) -> None:
    accepted = preload(admin, traffic(7), 400_000)
    # a commit every 5,000 reads a partition: the kill lands while most reads are still unread
    flow = cluster(2, server, tmp_path, hotlists, extra_env={"PLATEFLOW_FLUSH_READS": "5000"})
    flow.start()
    flow.wait_until("a first committed offset", lambda: admin.hlen("plateflow:offsets"), START_S)
    flow.kill(1, signal.SIGKILL)
    # Timely is all-or-nothing: the survivor notices its peer is gone and exits on its own
    codes = flow.wait(90)
    assert codes[1] == -signal.SIGKILL and codes[0] != 0, codes
    assert not caught_up(admin), "the flow had finished before the kill; nothing was tested"

    flow.drain = True
    flow.start()
    assert flow.wait(START_S + 180) == [0, 0], flow.logs()
    assert_stored_once(tmp_path / "data", accepted)
    alert_ids = logged_alert_ids(admin)
    reference = one_process_alert_ids(admin, tmp_path, hotlists)
    # alerts published before the kill and not yet committed are published again: same ids
    assert set(alert_ids) == set(reference)
    assert len(reference) == len(set(reference))


def test_c_rescale_2_3_2_while_cameras_keep_sending(
    server: LocalRedis, admin: redis.Redis, tmp_path: Path, hotlists: tuple[Path, ...]
) -> None:
    feeder = Feeder(server.url("ingest"), traffic(11), rate=4000).start()
    try:
        for processes in (2, 3, 2):
            flow = cluster(processes, server, tmp_path, hotlists).start()
            before = len(feeder.accepted)

            def progressed(flow: FlowCluster = flow, before: int = before) -> bool:
                return flow.running() and len(stored_read_ids(tmp_path / "data")) > before

            wait_for(f"{processes} processes to store new reads", progressed, START_S, every=1.0)
            time.sleep(3)
            assert flow.running(), flow.logs()
            flow.stop()  # a rescale is stop and start: a Timely cluster cannot change size
    finally:
        feeder.stop()
    assert feeder.failures == 0
    flow = cluster(2, server, tmp_path, hotlists, drain=True).start()
    assert flow.wait(START_S + 120) == [0, 0], flow.logs()
    assert caught_up(admin)
    assert_stored_once(tmp_path / "data", feeder.accepted)
    assert set(logged_alert_ids(admin)) == set(one_process_alert_ids(admin, tmp_path, hotlists))


def test_d_redis_restarted_mid_stream_with_aof_loses_nothing_accepted(
    server: LocalRedis, admin: redis.Redis, tmp_path: Path, hotlists: tuple[Path, ...]
) -> None:
    feeder = Feeder(server.url("ingest"), traffic(13), rate=4000).start()
    flow = cluster(2, server, tmp_path, hotlists).start()
    try:
        wait_for("the flow to store reads", lambda: stored_read_ids(tmp_path / "data"), START_S)
        server.restart(down_s=2.0)  # SIGTERM: Redis writes its AOF and exits; then it starts
        admin = server.client()
        accepted_at_restart = len(feeder.accepted)
        wait_for(
            "cameras to be accepted again",
            lambda: len(feeder.accepted) > accepted_at_restart + 4000,
            60,
        )
        assert flow.running(), "a Redis restart must not take the flow down\n" + flow.logs()
        wait_for("the flow to store reads sent after the restart",
                 lambda: set(feeder.accepted[accepted_at_restart:][:2000])
                 <= set(stored_read_ids(tmp_path / "data")), 120, every=1.0)  # fmt: skip
        # the source, the sink or both waited Redis out, in place
        retried = sum(metric_sum(flow.metrics(i), "plateflow_flow_retries_total") for i in (0, 1))
        assert retried > 0, "the flow never saw Redis go away"
    finally:
        feeder.stop()
    assert feeder.failures > 0, "the feeder never saw Redis go away"
    wait_for("the flow to catch up", lambda: caught_up(admin), 120, every=1.0)
    flow.stop()
    assert_stored_once(tmp_path / "data", feeder.accepted, feeder.sent)
    admin.close()


def test_f_data_volume_full_commits_nothing_unwritten_and_catches_up(
    server: LocalRedis, admin: redis.Redis, tmp_path: Path, hotlists: tuple[Path, ...]
) -> None:
    volume = FillableVolume(tmp_path / "data")
    sim = traffic(17)
    flow = cluster(2, server, tmp_path, hotlists)
    try:
        accepted = preload(admin, sim, 20_000)
        flow.start()
        flow.wait_until("the first reads stored", lambda: stored_read_ids(volume.path), START_S)
        volume.fill()
        accepted += preload(admin, sim, 40_000)

        def stalled() -> bool:
            return all(
                metric(flow.metrics(i), "plateflow_flow_stalled", 'stage="parquet"') == 1
                for i in (0, 1)
            )

        flow.wait_until(f"both processes to stall on the data volume ({volume.how})", stalled, 120)
        before = admin.hgetall(OFFSETS_KEY)
        time.sleep(3)
        assert admin.hgetall(OFFSETS_KEY) == before, (
            "an offset moved while nothing could be written"
        )
        # no offset is past a read that is not in Parquet
        stored = set(stored_read_ids(volume.path, volume.reads_dir))
        for partition in range(PARTITIONS):
            offset = before.get(str(partition).encode())
            entries = admin.xrange(stream_key(partition), max=offset) if offset else []
            committed = {r["read_id"] for _, f in entries for r in orjson.loads(f[b"data"])}
            assert committed <= stored, f"partition {partition}: committed reads not stored"
        assert not caught_up(admin)

        volume.free()
        flow.wait_until("the flow to catch up once there is room", lambda: caught_up(admin), 180)
        assert all(
            metric(flow.metrics(i), "plateflow_flow_stalled", 'stage="parquet"') == 0
            for i in (0, 1)
        )
        flow.stop()
        assert_stored_once(volume.path, accepted)
    finally:
        flow.kill_all()
        volume.close()
