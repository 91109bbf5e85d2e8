"""Cluster wiring: which Bytewax process this is, who its peers are, and whether the stream
partitions can be shared out evenly.

A flow pod of a Kubernetes StatefulSet runs ``plateflow run`` unchanged. Its process id and its
peers come from the pod's environment, with Bytewax's own variables first (so a Bytewax user's
habits carry over) and plateflow's settings as the StatefulSet-native way:

* process id: ``-i``, else ``BYTEWAX_PROCESS_ID``, else ``BYTEWAX_POD_NAME`` minus
  ``BYTEWAX_STATEFULSET_NAME-`` (``plateflow-flow-2`` -> 2);
* peers: ``-a``, else ``BYTEWAX_ADDRESSES``, else the lines of ``BYTEWAX_HOSTFILE_PATH``, else
  :func:`cluster_addresses` from ``PLATEFLOW_CLUSTER_PROCESSES`` (the StatefulSet's replicas,
  copied into the environment by a kustomize replacement), ``PLATEFLOW_CLUSTER_SERVICE`` (the
  headless service), ``PLATEFLOW_CLUSTER_NAMESPACE`` and ``PLATEFLOW_CLUSTER_PORT``;
* workers per process: ``-w``, else ``BYTEWAX_WORKERS_PER_PROCESS``, else 1.

Everything here is pure (the environment is passed in), so tests call it without a cluster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dataflow._errors import DataflowError

log = logging.getLogger(__name__)

#: Bytewax's variables this module reads (the names bytewax.run and its helm chart use).
BYTEWAX_ENV = (
    "BYTEWAX_PROCESS_ID",
    "BYTEWAX_ADDRESSES",
    "BYTEWAX_POD_NAME",
    "BYTEWAX_STATEFULSET_NAME",
    "BYTEWAX_HOSTFILE_PATH",
    "BYTEWAX_WORKERS_PER_PROCESS",
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class ClusterConfig:
    """How this process joins the flow cluster.

    ``addresses`` is ``None`` for a single process; else one ``host:port`` per process, in
    process-id order, this process's own address at index ``process_id``.
    """

    process_id: int | None = None
    addresses: tuple[str, ...] | None = None
    workers_per_process: int = 1

    @property
    def processes(self) -> int:
        return len(self.addresses) if self.addresses else 1

    @property
    def total_workers(self) -> int:
        return self.processes * self.workers_per_process


def cluster_addresses(
    processes: int,
    statefulset: str,
    service: str,
    namespace: str = "",
    port: int = 9999,
    domain: str = "cluster.local",
) -> list[str]:
    """The peer addresses of a StatefulSet's pods behind a headless service.

    ``cluster_addresses(3, "plateflow-flow", "plateflow-flow", "alpr")`` ->
    ``["plateflow-flow-0.plateflow-flow.alpr.svc.cluster.local:9999", …-1…, …-2…]``. Without a
    namespace the names are ``pod.service`` and resolve through the pod's DNS search path (its
    own namespace). The headless service must publish not-ready addresses: Timely connects to
    every peer before any pod can be ready.
    """
    if processes < 1:
        msg = f"a cluster needs at least one process, got {processes}"
        raise DataflowError(msg)
    for what, name in (("StatefulSet", statefulset), ("service", service)):
        if not _DNS_LABEL.match(name):
            msg = (
                f"{what} name {name!r} is not a DNS label (lower-case letters, digits and '-', "
                "at most 63); set BYTEWAX_STATEFULSET_NAME / PLATEFLOW_CLUSTER_SERVICE to the "
                "names in the manifests"
            )
            raise DataflowError(msg)
    suffix = f".{namespace}.svc.{domain}" if namespace else ""
    return [f"{statefulset}-{i}.{service}{suffix}:{port}" for i in range(processes)]


def process_id_from_pod(pod_name: str, statefulset: str) -> int:
    """``plateflow-flow-2`` of StatefulSet ``plateflow-flow`` -> 2."""
    prefix = f"{statefulset}-"
    ordinal = pod_name[len(prefix) :] if pod_name.startswith(prefix) else ""
    if not ordinal.isdigit():
        msg = (
            f"pod name {pod_name!r} (BYTEWAX_POD_NAME) is not '{prefix}<ordinal>'; "
            f"BYTEWAX_STATEFULSET_NAME must be the StatefulSet's name (it is {statefulset!r})"
        )
        raise DataflowError(msg)
    return int(ordinal)


def resolve_cluster(
    environ: Mapping[str, str],
    *,
    process_id: int | None = None,
    addresses: list[str] | None = None,
    workers_per_process: int | None = None,
    cluster_processes: int = 1,
    cluster_service: str = "",
    cluster_namespace: str = "",
    cluster_port: int = 9999,
) -> ClusterConfig:
    """This process's place in the cluster, from the CLI values (given first) and the
    environment (see the module docstring for the order). Raises :class:`DataflowError` naming
    the variable to fix when the pieces do not fit together."""
    workers = workers_per_process
    if workers is None:
        workers = _int_env(environ, "BYTEWAX_WORKERS_PER_PROCESS") or 1
    if workers < 1:
        msg = f"workers per process must be at least 1, got {workers} (-w, or the variable "
        msg += "BYTEWAX_WORKERS_PER_PROCESS)"
        raise DataflowError(msg)
    pid = process_id if process_id is not None else _int_env(environ, "BYTEWAX_PROCESS_ID")
    statefulset = environ.get("BYTEWAX_STATEFULSET_NAME", "")
    if pid is None and environ.get("BYTEWAX_POD_NAME") and statefulset:
        pid = process_id_from_pod(environ["BYTEWAX_POD_NAME"], statefulset)
    peers = _peers(environ, addresses, statefulset, cluster_processes, cluster_service,
                   cluster_namespace, cluster_port)  # fmt: skip
    if peers is None:
        if pid not in (None, 0):
            msg = (
                f"process id {pid} given but no peers: set -a / BYTEWAX_ADDRESSES, "
                "BYTEWAX_HOSTFILE_PATH, or PLATEFLOW_CLUSTER_PROCESSES with "
                "PLATEFLOW_CLUSTER_SERVICE"
            )
            raise DataflowError(msg)
        return ClusterConfig(None, None, workers)
    if cluster_processes > 1 and len(peers) != cluster_processes:
        msg = (
            f"PLATEFLOW_CLUSTER_PROCESSES is {cluster_processes} but {len(peers)} peer "
            "addresses are given; make them agree (the StatefulSet's replicas)"
        )
        raise DataflowError(msg)
    if pid is None:
        msg = (
            f"{len(peers)} peer addresses but no process id: set -i / BYTEWAX_PROCESS_ID, or "
            "BYTEWAX_POD_NAME with BYTEWAX_STATEFULSET_NAME"
        )
        raise DataflowError(msg)
    if not 0 <= pid < len(peers):
        msg = (
            f"process id {pid} is outside the cluster of {len(peers)} processes (0 to "
            f"{len(peers) - 1}); scale the StatefulSet and PLATEFLOW_CLUSTER_PROCESSES together"
        )
        raise DataflowError(msg)
    return ClusterConfig(pid, tuple(peers), workers)


def _peers(
    environ: Mapping[str, str],
    addresses: list[str] | None,
    statefulset: str,
    processes: int,
    service: str,
    namespace: str,
    port: int,
) -> list[str] | None:
    if addresses:
        return list(addresses)
    if environ.get("BYTEWAX_ADDRESSES"):
        return [a.strip() for a in environ["BYTEWAX_ADDRESSES"].split(";") if a.strip()]
    if environ.get("BYTEWAX_HOSTFILE_PATH"):
        path = Path(environ["BYTEWAX_HOSTFILE_PATH"])
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            msg = f"cannot read BYTEWAX_HOSTFILE_PATH {path}: {exc}"
            raise DataflowError(msg) from exc
        return [line.strip() for line in lines if line.strip()]
    if processes > 1:
        if not service or not statefulset:
            msg = (
                f"PLATEFLOW_CLUSTER_PROCESSES is {processes}: the peers need "
                "PLATEFLOW_CLUSTER_SERVICE (the headless service) and BYTEWAX_STATEFULSET_NAME"
            )
            raise DataflowError(msg)
        return cluster_addresses(processes, statefulset, service, namespace, port)
    return None


def _int_env(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        msg = f"{name} must be a whole number, got {raw!r}"
        raise DataflowError(msg) from exc


def check_partitions(partitions: int, total_workers: int) -> None:
    """Refuse more workers than stream partitions (a worker would sit idle while its peers
    fall behind); warn when the partitions do not divide evenly among the workers (Bytewax
    0.21.1 stalls the lighter workers, upstream PR #556)."""
    if total_workers > partitions:
        msg = (
            f"{total_workers} flow workers but only {partitions} stream partitions: each "
            f"partition is read by one worker, so raise PLATEFLOW_PARTITIONS to a multiple of "
            f"{total_workers} (drain the streams first) or run fewer processes/workers"
        )
        raise DataflowError(msg)
    if partitions % total_workers:
        log.warning(
            "%d stream partitions do not divide evenly among %d workers: some workers own one "
            "more partition than others and the lighter ones stall (Bytewax PR #556); use a "
            "multiple of %d",
            partitions,
            total_workers,
            total_workers,
        )
