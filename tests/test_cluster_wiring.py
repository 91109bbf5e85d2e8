"""Cluster wiring as pure functions: process id and peers from a pod's environment, and the
partition check (no processes started here; tests/test_cluster.py runs real ones)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataflow import DataflowError, check_partitions, cluster_addresses, resolve_cluster

POD = {"BYTEWAX_POD_NAME": "plateflow-flow-2", "BYTEWAX_STATEFULSET_NAME": "plateflow-flow"}


def test_addresses_from_replicas_service_and_namespace() -> None:
    assert cluster_addresses(3, "plateflow-flow", "plateflow-flow-peers", "alpr", 9999) == [
        "plateflow-flow-0.plateflow-flow-peers.alpr.svc.cluster.local:9999",
        "plateflow-flow-1.plateflow-flow-peers.alpr.svc.cluster.local:9999",
        "plateflow-flow-2.plateflow-flow-peers.alpr.svc.cluster.local:9999",
    ]
    # without a namespace: the pod's DNS search path resolves its own namespace
    assert cluster_addresses(1, "flow", "peers", port=2101) == ["flow-0.peers:2101"]


@pytest.mark.parametrize("bad", ["Flow", "flow_1", "", "-flow", "x" * 64])
def test_addresses_refuse_names_that_are_not_dns_labels(bad: str) -> None:
    with pytest.raises(DataflowError, match="not a DNS label"):
        cluster_addresses(2, bad, "peers")


def test_pod_environment_gives_process_id_and_derived_peers() -> None:
    cfg = resolve_cluster(
        POD, cluster_processes=3, cluster_service="plateflow-flow", cluster_namespace="alpr"
    )
    assert cfg.process_id == 2 and cfg.processes == 3 and cfg.total_workers == 3
    assert cfg.addresses is not None
    assert cfg.addresses[2] == "plateflow-flow-2.plateflow-flow.alpr.svc.cluster.local:9999"


def test_bytewax_variables_come_before_the_derived_peers(tmp_path: Path) -> None:
    hostfile = tmp_path / "hosts"
    hostfile.write_text("10.0.0.1:9999\n\n10.0.0.2:9999\n")
    env = POD | {"BYTEWAX_HOSTFILE_PATH": str(hostfile), "BYTEWAX_STATEFULSET_NAME": "x"}
    env["BYTEWAX_POD_NAME"] = "x-1"
    cfg = resolve_cluster(env, cluster_processes=2, cluster_service="ignored")
    assert (cfg.process_id, cfg.addresses) == (1, ("10.0.0.1:9999", "10.0.0.2:9999"))
    env = {"BYTEWAX_PROCESS_ID": "0", "BYTEWAX_ADDRESSES": "a:1;b:1;c:1",
           "BYTEWAX_WORKERS_PER_PROCESS": "2"}  # fmt: skip
    cfg = resolve_cluster(env)
    assert (cfg.process_id, cfg.processes, cfg.total_workers) == (0, 3, 6)
    # the CLI's -i/-a/-w win over everything
    cfg = resolve_cluster(env, process_id=1, addresses=["h:1", "h:2"], workers_per_process=1)
    assert (cfg.process_id, cfg.addresses, cfg.total_workers) == (1, ("h:1", "h:2"), 2)


def test_no_cluster_environment_is_one_process() -> None:
    cfg = resolve_cluster({})
    assert (cfg.process_id, cfg.addresses, cfg.total_workers) == (None, None, 1)


@pytest.mark.parametrize(
    ("env", "kwargs", "message"),
    [
        (POD, {"cluster_processes": 2, "cluster_service": "s"}, "outside the cluster of 2"),
        ({"BYTEWAX_ADDRESSES": "a:1;b:1"}, {}, "no process id"),
        ({"BYTEWAX_PROCESS_ID": "1"}, {}, "no peers"),
        (POD, {"cluster_processes": 3}, "PLATEFLOW_CLUSTER_SERVICE"),
        (
            {"BYTEWAX_POD_NAME": "other-0", "BYTEWAX_STATEFULSET_NAME": "plateflow-flow"},
            {},
            "is not 'plateflow-flow-<ordinal>'",
        ),
        (
            {"BYTEWAX_ADDRESSES": "a:1;b:1", "BYTEWAX_PROCESS_ID": "0"},
            {"cluster_processes": 3},
            "PLATEFLOW_CLUSTER_PROCESSES is 3 but 2",
        ),
        ({"BYTEWAX_PROCESS_ID": "zero"}, {}, "BYTEWAX_PROCESS_ID must be a whole number"),
        (
            {"BYTEWAX_HOSTFILE_PATH": "/nonexistent/hosts", "BYTEWAX_PROCESS_ID": "0"},
            {},
            "cannot read BYTEWAX_HOSTFILE_PATH",
        ),
    ],
)
def test_inconsistent_cluster_settings_are_refused_by_name(
    env: dict[str, str], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(DataflowError, match=message):
        resolve_cluster(env, **kwargs)  # type: ignore[arg-type]


def test_partitions_must_cover_the_workers(caplog: pytest.LogCaptureFixture) -> None:
    check_partitions(12, 3)
    check_partitions(12, 12)
    with pytest.raises(DataflowError, match="4 flow workers but only 3 stream partitions"):
        check_partitions(3, 4)
    with caplog.at_level(logging.WARNING, logger="dataflow._cluster"):
        check_partitions(12, 5)
    assert "do not divide evenly among 5 workers" in caplog.text


def test_default_partitions_divide_among_common_cluster_sizes() -> None:
    from plateflow.settings import Settings

    partitions = Settings.load({}).partitions
    assert all(partitions % workers == 0 for workers in (1, 2, 3, 4, 6))


def test_run_refuses_more_workers_than_partitions_before_starting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATEFLOW_", "BYTEWAX_"))}
    env |= {"PLATEFLOW_PARTITIONS": "2", "PLATEFLOW_DATA_DIR": str(tmp_path),
            "PLATEFLOW_REDIS_URL": "redis://127.0.0.1:1/0"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "plateflow.cli", "run", "-w", "3"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "3 flow workers but only 2 stream partitions" in done.stderr + done.stdout
