"""The embedded Redis lives exactly as long as its last user, and keeps what it acknowledged.

Real processes: ``plateflow serve``, ``run`` and ``demo`` started on embedded defaults (the
``PLATEFLOW_*`` environment is stripped, so this holds in CI too), stopped with SIGTERM, SIGINT,
SIGHUP or killed with SIGKILL; the process table is then searched for a ``redis-server`` whose
working directory is this test's data directory (Redis changes into its ``dir`` at start), so
other suites' servers on this machine are never counted.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from plateflow.simulator import Simulator

T0 = 1_795_867_200_000
TOKEN = "lifecycle-test-token-0123456789"


def redis_servers(redis_dir: Path) -> list[int]:
    """Pids of redis-server processes working in ``redis_dir``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(entry.path, "comm").read_text().strip()
            cwd = os.readlink(os.path.join(entry.path, "cwd"))
        except OSError:
            continue
        if comm == "redis-server" and Path(cwd) == redis_dir.resolve():
            found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _default_hangup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


class Cli:
    """Starts ``plateflow`` commands on one data directory with embedded defaults."""

    def __init__(self, data_dir: Path, tmp_path: Path) -> None:
        self.data_dir = data_dir
        self.redis_dir = data_dir / "redis"
        self.tmp_path = tmp_path
        self.port = free_port()
        self._logs: list[IO[bytes]] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}
        self.env |= {
            "PLATEFLOW_DATA_DIR": str(data_dir),
            "PLATEFLOW_PARTITIONS": "2",
            "PLATEFLOW_API_PORT": str(self.port),
            "PLATEFLOW_INGEST_TOKENS": TOKEN,
            "PLATEFLOW_LOG_LEVEL": "WARNING",
        }

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"{args[0]}-{len(self.procs)}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "plateflow.cli", *args],
            env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            # as from a terminal, even when the suite itself runs under nohup (SIGHUP ignored,
            # which a child would inherit)
            preexec_fn=_default_hangup,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "plateflow.cli", *args],
            env=self.env, capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.procs.index(proc)
        name = f"{proc.args[3]}-{index}.log"  # type: ignore[index]
        return (self.tmp_path / name).read_text(errors="replace")[-3000:]

    def server(self, timeout: float = 60) -> int:
        """Wait until exactly one redis-server runs for this data dir and answers; its pid."""
        wait_for(lambda: len(redis_servers(self.redis_dir)) == 1, timeout, "one redis-server")
        wait_for(lambda: (self.redis_dir / "embedded.json").is_file(), timeout, "server state")
        return redis_servers(self.redis_dir)[0]

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        for log in self._logs:
            log.close()


@pytest.fixture()
def cli(data_dir: Path, tmp_path: Path) -> Cli:
    runner = Cli(data_dir, tmp_path)
    yield runner  # type: ignore[misc]
    runner.close()
    # Whatever the test did, it must not leave a server behind for the next one.
    wait_for(lambda: not redis_servers(runner.redis_dir), 20, "redis-server stopped at teardown")


def stored_read_ids(data_dir: Path) -> list[str]:
    if not (data_dir / "reads").is_dir():
        return []
    table = ds.dataset(data_dir / "reads", format="parquet", partitioning="hive").to_table(
        columns=["read_id"]
    )
    return [str(x) for x in table.column("read_id").to_pylist()]


def stored_count(data_dir: Path) -> int:
    """How many reads are stored, while a flow may be writing (a file it is still writing is
    not readable yet: count again later)."""
    try:
        return len(stored_read_ids(data_dir))
    except (pa.ArrowInvalid, OSError):
        return -1


COMMANDS = {
    "serve": ("serve",),
    "run": ("run",),
    "demo": ("demo", "--duration", "120", "--rate", "200", "--cameras", "5", "--quiet"),
}
CASES = [(cmd, sig) for cmd in COMMANDS for sig in ("SIGTERM", "SIGINT", "SIGKILL")]
CASES.append(("serve", "SIGHUP"))


@pytest.mark.parametrize(("command", "signame"), CASES)
def test_stopping_the_only_user_stops_its_redis(cli: Cli, command: str, signame: str) -> None:
    proc = cli.start(*COMMANDS[command])
    cli.server()
    if command == "serve":
        wait_for(cli.healthy, 60, "the API answering")
    else:
        time.sleep(1.0)  # well inside the command's main loop
    socket_dir = Path(json.loads((cli.redis_dir / "embedded.json").read_text())["socket_dir"])
    assert socket_dir.is_dir()
    assert proc.poll() is None, cli.output(proc)

    proc.send_signal(getattr(signal, signame))
    proc.wait(timeout=60)
    wait_for(lambda: not redis_servers(cli.redis_dir), 20, f"redis-server gone after {signame}")
    wait_for(lambda: not socket_dir.exists(), 10, "socket directory removed")
    assert not (cli.redis_dir / "embedded.json").exists()


def test_two_processes_share_one_server_and_the_survivor_keeps_working(
    cli: Cli, tmp_path: Path
) -> None:
    serve = cli.start("serve")
    first = cli.server()
    wait_for(cli.healthy, 60, "the API answering")
    flow = cli.start("run")
    # The flow has joined when it holds its lease (one locked file per user in redis/leases/).
    leases = cli.redis_dir / "leases"
    wait_for(lambda: len(list(leases.glob("*.lease"))) == 2, 60, "the flow joining the server")
    assert redis_servers(cli.redis_dir) == [first], "a second server was started"

    serve.send_signal(signal.SIGKILL)  # the process that started the server
    serve.wait(timeout=30)
    time.sleep(1.5)  # several supervisor checks
    assert redis_servers(cli.redis_dir) == [first], "the server stopped while the flow uses it"
    assert flow.poll() is None, cli.output(flow)

    reads = Simulator(malformed_rate=0.0, seed=5).reads(500, ts_ms=T0)
    path = tmp_path / "reads.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in reads))
    done = cli.run("ingest", str(path))
    assert done.returncode == 0, done.stdout.decode()[-2000:]
    assert redis_servers(cli.redis_dir) == [first]
    wait_for(lambda: stored_count(cli.data_dir) == len(reads), 90, "the flow stored them")
    assert sorted(stored_read_ids(cli.data_dir)) == sorted(r["read_id"] for r in reads)

    flow.send_signal(signal.SIGTERM)  # the last user: now the server goes
    flow.wait(timeout=60)
    wait_for(lambda: not redis_servers(cli.redis_dir), 20, "redis-server gone with its last user")


def _post(cli: Cli, batch: list[dict[str, object]]) -> bool:
    """POST a batch of reads; True when the API acknowledged it (202, all accepted)."""
    try:
        answer = httpx.post(
            f"http://127.0.0.1:{cli.port}/v1/reads",
            content=orjson.dumps(batch),
            headers={"X-Plateflow-Token": TOKEN, "Content-Type": "application/json"},
            timeout=10,
        )
    except httpx.HTTPError:
        return False
    if answer.status_code != 202:
        assert answer.status_code == 503, answer.text  # Redis down: refused, nothing promised
        return False
    assert answer.json()["accepted"] == len(batch)
    return True


#: With ``everysec`` Redis may answer a write before it reaches the AOF while a background fsync
#: is slow, for up to 2 s of its one-second clock: the README's bound, with a margin.
EVERYSEC_LOSS_BOUND_S = 4.0


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_redis_killed_before_the_flow_stored_acknowledged_reads(cli: Cli, fsync: str) -> None:
    cli.env["PLATEFLOW_EMBEDDED_REDIS_FSYNC"] = fsync
    cli.env["PLATEFLOW_BATCH_SIZE"] = "5"  # the flow trails the ingest: reads wait in Redis
    serve = cli.start("serve")
    server = cli.server()
    wait_for(cli.healthy, 60, "the API answering")
    flow = cli.start("run")
    sim = Simulator(malformed_rate=0.0, seed=9)
    acked: list[tuple[float, str]] = []  # (time of the 202, read id)
    sent = 0

    def ingest_for(seconds: float, at_least: int = 0, bound_s: float = 60.0) -> None:
        # At least ``seconds``, and on until ``at_least`` reads are acknowledged (a loaded
        # machine acknowledges fewer per second), within ``bound_s``.
        nonlocal sent
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds or (
            len(acked) < at_least and elapsed < bound_s
        ):
            batch = sim.reads(50, ts_ms=T0 + sent * 1000)
            sent += len(batch)
            if _post(cli, batch):
                now = time.monotonic()
                acked.extend((now, str(r["read_id"])) for r in batch)

    ingest_for(6.0, at_least=1200)
    killed_at = time.monotonic()
    os.kill(server, signal.SIGKILL)
    wait_for(lambda: server not in redis_servers(cli.redis_dir), 10, "redis-server killed")
    ingest_for(3.0)  # the supervisor starts it again from the AOF; the ingest carries on
    assert len(redis_servers(cli.redis_dir)) == 1, "the killed server was not started again"
    for proc in (flow, serve):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    wait_for(lambda: not redis_servers(cli.redis_dir), 20, "everything stopped")

    # Everything restarted: the flow, on the same data directory, to the end of the streams.
    done = cli.run("run", "--drain", timeout=240)
    assert done.returncode == 0, done.stdout.decode()[-3000:]
    counts = collections.Counter(stored_read_ids(cli.data_dir))
    twice = [k for k, n in counts.items() if n > 1]
    assert not twice, f"{len(twice)} reads stored more than once"
    lost = [(t, rid) for t, rid in acked if rid not in counts]
    if fsync == "always":
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged reads lost"
    else:
        early = [rid for t, rid in lost if t < killed_at - EVERYSEC_LOSS_BOUND_S or t > killed_at]
        assert not early, f"{len(early)} acknowledged reads lost outside the fsync window"
    assert len(acked) > 1000, "too few reads acknowledged for the test to mean anything"
