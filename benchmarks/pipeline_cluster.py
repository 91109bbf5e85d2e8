"""The pipeline benchmark's cluster mode: N real ``plateflow run`` processes, each started with
the environment a flow pod gets (process id from ``BYTEWAX_POD_NAME``, peers on loopback
addresses), each building its own index from hotlist files.

Timing starts when the first process reports a processed read on its ``/metrics`` and ends
when the last process exits (drain mode: a partition ends once its stream is read to the end),
so interpreter start, index builds and the Timely handshake are left out, as the in-process
mode leaves out its index build.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from matchers import Hotlist

STATEFULSET = "plateflow-flow"


def write_hotlist_files(lists: list[Hotlist], directory: Path) -> list[Path]:
    """Each list as a CSV plus its policy file (the format ``PLATEFLOW_HOTLIST_FILES`` loads)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for hotlist in lists:
        path = directory / f"{hotlist.name}.csv"
        lines = ["plate,state,reason,case_number"]
        lines += [
            f"{e.plate},{e.state or ''},{e.reason or 'listed'},{e.case_number or ''}"
            for e in hotlist.entries
        ]
        path.write_text("\n".join(lines) + "\n")
        policy = {"category": hotlist.category, **hotlist.policy.to_dict()}
        path.with_suffix(".policy.json").write_bytes(orjson.dumps(policy))
        paths.append(path)
    return paths


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reads_processed(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as rsp:
            text = rsp.read().decode()
    except OSError:
        return 0.0
    found = re.search(r"^plateflow_flow_reads_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def run_cluster(
    processes: int,
    redis_url: str,
    data_dir: Path,
    hotlist_files: list[Path],
    partitions: int,
    workdir: Path,
    timeout_s: float = 1800.0,
    workers_per_process: int = 1,
) -> dict[str, Any]:
    """Run ``processes`` drained flow processes (of ``workers_per_process`` Bytewax workers
    each) over the streams already loaded; return the timing. Raises RuntimeError (with the
    processes' log tails) if one fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    addresses = ";".join(f"127.0.0.{10 + i}:{port}" for i in range(processes))
    metrics_ports = [_free_port() for _ in range(processes)]
    script = Path(sys.executable).parent / "plateflow"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "plateflow.cli"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLATEFLOW_", "BYTEWAX_"))}
    procs = []
    logs = []
    for i in range(processes):
        env = base | {
            "BYTEWAX_POD_NAME": f"{STATEFULSET}-{i}",
            "BYTEWAX_STATEFULSET_NAME": STATEFULSET,
            "BYTEWAX_ADDRESSES": addresses,
            "BYTEWAX_WORKERS_PER_PROCESS": str(workers_per_process),
            "BYTEWAX_DATAFLOW_API_ENABLED": "true",
            "BYTEWAX_DATAFLOW_API_PORT": str(metrics_ports[i]),
            "BYTEWAX_DATAFLOW_API_CACHE_PATH": str(workdir),
            "PLATEFLOW_CLUSTER_PROCESSES": str(processes),
            "PLATEFLOW_REDIS_URL": redis_url,
            "PLATEFLOW_DATA_DIR": str(data_dir),
            "PLATEFLOW_DATABASE_URL": f"sqlite:///{workdir / 'records.db'}",
            "PLATEFLOW_PARTITIONS": str(partitions),
            "PLATEFLOW_BATCH_SIZE": "200",
            "PLATEFLOW_HOTLIST_FILES": ",".join(str(p) for p in hotlist_files),
            "PLATEFLOW_LOG_LEVEL": "WARNING",
        }
        log = workdir / f"flow-{processes}-{i}.log"
        logs.append(log)
        procs.append(subprocess.Popen([*command, "run", "--drain"], env=env,
                                      stdout=log.open("wb"), stderr=subprocess.STDOUT))  # fmt: skip
    started = time.monotonic()
    first_read = None
    try:
        while any(p.poll() is None for p in procs):
            if any(p.returncode for p in procs):
                break  # a Timely cluster cannot finish without every process: stop the rest
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"{processes} flow processes still running after {timeout_s} s")
            if first_read is None and any(_reads_processed(mp) > 0 for mp in metrics_ports):
                first_read = time.monotonic()
            time.sleep(0.05)
        ended = time.monotonic()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    if any(codes) or first_read is None:
        tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs)
        raise RuntimeError(f"flow processes exited with {codes}:\n{tails}")
    return {"flow_s": ended - first_read, "startup_s": first_read - started}
