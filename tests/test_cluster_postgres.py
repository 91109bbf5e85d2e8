"""(e) The records database restarted under a running flow cluster: hotlist reloads resume.

A private PostgreSQL (tests/cluster_support.py) is stopped while a change to a list is
announced, so every process's reload fails; once the database is back, the retried reload
succeeds in every process and the new entry alerts on reads in every partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

import records
from plateflow.simulator import Simulator
from sinks import ALERTS_LOG, HOTLISTS_CHANGED, partition_for
from tests import records_support
from tests.cluster_support import (
    PARTITIONS,
    Feeder,
    FlowCluster,
    LocalPostgres,
    LocalRedis,
    metric,
    no_leftover_processes,  # noqa: F401 (autouse)
)
from tests.test_cluster import START_S, partitions_in_log

pytestmark = pytest.mark.timeout(600)

LISTED, ADDED = "7WANTA1", "8WANTB2"


@pytest.fixture()
def postgres() -> Iterator[LocalPostgres]:
    try:
        server = LocalPostgres()
    except RuntimeError as exc:
        pytest.skip(f"a private PostgreSQL cannot be started here: {exc}")
    try:
        yield server.start()
    finally:
        server.remove()


def alerted_partitions(client: redis.Redis, plate: str) -> set[int]:
    alerts = (orjson.loads(f[b"alert"]) for _, f in client.xrange(ALERTS_LOG))
    return {
        partition_for(a["read"]["camera_id"], PARTITIONS)
        for a in alerts
        if a["read"]["plate"] == plate
    }


def test_e_postgres_restarted_hotlist_reloads_resume(
    postgres: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a PostgreSQL records database is written only under an audit key, this one and the
    # flow processes' (they inherit the environment)
    monkeypatch.setenv("PLATEFLOW_AUDIT_KEY", records_support.TEST_AUDIT_KEY)
    records.upgrade(postgres.url)  # what `plateflow db upgrade` does before the pods start
    engine = records_support.connect(postgres.url)
    records.create_hotlist(engine, "wanted", category="wanted_vehicle", user="admin")
    records.add_entry(engine, "wanted", LISTED, user="admin", reason="Felony warrant")
    server = LocalRedis(tmp_path / "redis").start()
    admin = server.client()
    sim = Simulator(
        n_cameras=60, hot_plates=[(LISTED, None), (ADDED, None)], hit_rate=0.05,
        malformed_rate=0.0, seed=5,
    )  # fmt: skip
    feeder = Feeder(server.url("ingest"), sim, rate=2000).start()
    flow = FlowCluster(2, server.url("flow"), tmp_path / "data", postgres.url, tmp_path / "work")
    try:
        flow.start()
        flow.wait_until(
            "alerts on the listed plate", lambda: alerted_partitions(admin, LISTED), START_S
        )
        # entered while the database is up, announced while it is down
        records.add_entry(engine, "wanted", ADDED, user="admin", reason="Missing person")
        engine.dispose()
        postgres.stop()
        admin.publish(HOTLISTS_CHANGED, "wanted")

        def failed_everywhere() -> bool:
            return all(
                metric(flow.metrics(i), "plateflow_flow_hotlist_reloads_total", 'outcome="failed"')
                for i in (0, 1)
            )

        flow.wait_until("every process to fail its reload", failed_everywhere, 60)
        assert not alerted_partitions(admin, ADDED), "alerted before the list could be reloaded"
        postgres.start()
        # the retried reload succeeds in every process: the added plate alerts in every
        # partition, so in both processes' shares
        everywhere = set(range(PARTITIONS))
        flow.wait_until(
            "alerts on the added plate in every partition",
            lambda: alerted_partitions(admin, ADDED) == everywhere,
            120,
        )
        owned = [set(partitions_in_log(flow.log(i))) for i in (0, 1)]
        assert owned[0] and owned[1] and not owned[0] & owned[1]
        for i in (0, 1):
            text = flow.metrics(i)
            assert metric(text, "plateflow_flow_hotlist_reloads_total", 'outcome="ok"') >= 1
        assert flow.running(), "a database restart must not take the flow down"
    finally:
        feeder.stop()
        flow.kill_all()
        admin.close()
        server.stop()
        engine.dispose()
