"""Real processes for the cluster tests (no tests here): a private Redis that a test may
restart, and a flow cluster of N local processes, each started with the flow StatefulSet's own
command and the environment its pod gets (tests/k8s_support.py), with only what a laptop must
change: peers on distinct loopback addresses (127.0.0.10+i) instead of pod DNS names, local
ports for the metrics server, and the URLs of the local Redis and database.

Every wait is bounded: a Timely process retries its peers forever, so nothing here waits on a
process without a deadline, and every process started is killed at the end.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow.dataset as ds
import pytest
import redis

from plateflow.simulator import Simulator
from sinks import ALERTS_LOG, COVERT_LOG, OFFSETS_KEY, append_reads, stream_key
from tests.k8s_support import K8S, flow_command, flow_pod_env

REDIS_SERVER = "/usr/bin/redis-server"
#: The dev overlay's Redis users; the test adds an administrator for its own inspection.
ACL_FILE = K8S / "overlays" / "dev" / "users.acl"
ADMIN = ("admin", "admin-test-only-password")
PARTITIONS = 12  # the ConfigMap's PLATEFLOW_PARTITIONS


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (redis.RedisError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class LocalRedis:
    """A ``redis-server`` of this test alone (never the machine's): TCP on a free port, AOF on,
    the dev overlay's ACL file, in ``directory``; :meth:`restart` keeps port and data."""

    def __init__(self, directory: Path, *, appendfsync: str = "everysec") -> None:
        self.directory = directory
        self.port = free_port()
        self.appendfsync = appendfsync
        self._proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        acl = ACL_FILE.read_text()
        acl += f"\nuser {ADMIN[0]} on >{ADMIN[1]} ~* &* +@all\n"
        (directory / "users.acl").write_text(acl)

    def start(self) -> LocalRedis:
        if not Path(REDIS_SERVER).is_file():
            raise RuntimeError(f"{REDIS_SERVER} is missing: apt-get install redis-server")
        self._proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--appendonly", "yes",
             "--appendfsync", self.appendfsync, "--save", "",
             "--aclfile", str(self.directory / "users.acl"), "--protected-mode", "no"],
            stdout=(self.directory / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        proc = self._proc
        wait_for("the private Redis to answer", lambda: self._ping() or _died(proc, self), 20)
        return self

    def _ping(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        finally:
            client.close()

    def url(self, user: str) -> str:
        """The URL a service uses: the dev Secret's user and password, this server's port."""
        if user == ADMIN[0]:
            return f"redis://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{self.port}/0"
        secret = flow_pod_env("dev", 0)["PLATEFLOW_REDIS_URL"] if user == "flow" else None
        if secret is None:
            from tests.k8s_support import render, secret_value

            secret = secret_value(render("dev"), "plateflow-redis", f"{user}-url")
        assert secret is not None
        return re.sub(r"@[^/]+/", f"@127.0.0.1:{self.port}/", secret)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url(ADMIN[0]), socket_timeout=10)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: Redis writes and fsyncs its AOF and exits, as a pod being restarted."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


def _died(proc: subprocess.Popen[bytes], server: LocalRedis) -> bool:
    if proc.poll() is not None:
        log = (server.directory / "redis.log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"redis-server exited with {proc.returncode}:\n{log}")
    return False


def plateflow_command(command: list[str]) -> list[str]:
    """The container's command line with ``plateflow`` resolved to this environment's entry
    point (the same console script the image installs)."""
    script = Path(sys.executable).parent / command[0]
    if script.is_file():
        return [str(script), *command[1:]]
    return [sys.executable, "-m", "plateflow.cli", *command[1:]]


#: Every cluster started, so a test that fails half-way leaves no process behind.
_STARTED: list[FlowCluster] = []


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Kill every flow process a test started, however it ended (import it into a test module:
    it is autouse there)."""
    yield
    while _STARTED:
        _STARTED.pop().kill_all()


@dataclass
class FlowCluster:
    """N flow processes of one cluster, started as the dev overlay's pods would be."""

    processes: int
    redis_url: str
    data_dir: Path
    database_url: str
    workdir: Path
    hotlist_files: tuple[Path, ...] = ()
    drain: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    metrics_ports: list[int] = field(default_factory=list)
    generation: int = 0

    def start(self) -> FlowCluster:
        assert not self.procs, "the cluster is already running"
        _STARTED.append(self)
        self.generation += 1
        timely_port = free_port("127.0.0.10")
        addresses = ";".join(f"127.0.0.{10 + i}:{timely_port}" for i in range(self.processes))
        self.metrics_ports = [free_port() for _ in range(self.processes)]
        command = plateflow_command(flow_command("dev")) + (["--drain"] if self.drain else [])
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PLATEFLOW_", "BYTEWAX_"))}
        for i in range(self.processes):
            cache = self.workdir / f"bytewax-api-{i}"
            cache.mkdir(parents=True, exist_ok=True)
            env = base | flow_pod_env("dev", i) | {
                # what a laptop changes: no pod DNS, one host for every process
                "BYTEWAX_ADDRESSES": addresses,
                "PLATEFLOW_CLUSTER_PROCESSES": str(self.processes),
                "BYTEWAX_DATAFLOW_API_PORT": str(self.metrics_ports[i]),
                "BYTEWAX_DATAFLOW_API_CACHE_PATH": str(cache),
                "PLATEFLOW_REDIS_URL": self.redis_url,
                "PLATEFLOW_DATABASE_URL": self.database_url,
                "PLATEFLOW_DATA_DIR": str(self.data_dir),
                "PLATEFLOW_HOTLIST_FILES": ",".join(str(p) for p in self.hotlist_files),
            } | self.extra_env  # fmt: skip
            log = (self.workdir / f"flow-{self.generation}-{i}.log").open("wb")
            self.procs.append(
                subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            )
        return self

    def log(self, i: int) -> str:
        return (self.workdir / f"flow-{self.generation}-{i}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- process {i}\n{self.log(i)[-3000:]}" for i in range(self.processes))

    def wait(self, timeout: float) -> list[int]:
        """Every process's exit code; fail (and kill them) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                self.kill_all()
                raise AssertionError(
                    f"flow cluster still running after {timeout:.0f} s\n{self.logs()}"
                ) from None
        self.procs = []
        return codes

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        self.procs[i].send_signal(sig)

    def stop(self, timeout: float = 60) -> list[int]:
        """Stop every process as Kubernetes stops a pod (SIGTERM: the flow exits at once; what
        it had not committed is read again by the next start)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(timeout=30)
        self.procs = []

    def metrics(self, i: int) -> str:
        url = f"http://127.0.0.1:{self.metrics_ports[i]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def running(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def wait_until(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        """:func:`wait_for`, failing at once (with the logs) if a process exits meanwhile."""

        def alive_check() -> Any:
            if not self.running():
                codes = [p.poll() for p in self.procs]
                raise AssertionError(f"a flow process exited {codes} before {what}\n{self.logs()}")
            return check()

        return wait_for(what, alive_check, timeout, every=0.5)


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in a Prometheus exposition (0 if absent)."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.M)
    return float(found.group(1)) if found else 0.0


def metric_sum(text: str, name: str) -> float:
    """The sum of every labelled sample of one metric."""
    found = re.findall(r"^" + re.escape(name) + r"(?:\{[^}]*\})? (\S+)$", text, re.M)
    return sum(float(v) for v in found)


class Feeder:
    """Camera traffic in a thread, with the ingest user's credential: every read whose append
    Redis acknowledged is *accepted*; a batch that failed (Redis away) is not retried, and is
    counted as sent (it may or may not have reached the stream)."""

    def __init__(self, url: str, sim: Simulator, rate: float, chunk: int = 200) -> None:
        self.url, self.sim, self.rate, self.chunk = url, sim, rate, chunk
        self.accepted: list[str] = []
        self.sent: list[str] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def _run(self) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)
        interval = self.chunk / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            batch = self.sim.reads(self.chunk)
            self.sent += [r["read_id"] for r in batch]
            try:
                append_reads(client, batch, PARTITIONS, per_entry=50)
            except (redis.RedisError, OSError):
                self.failures += 1
                time.sleep(0.2)
            else:
                self.accepted += [r["read_id"] for r in batch]
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        client.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def preload(client: redis.Redis, sim: Simulator, n: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 10_000):
        batch = sim.reads(min(10_000, n - start))
        append_reads(client, batch, PARTITIONS, per_entry=50)
        ids += [r["read_id"] for r in batch]
    return ids


def stored_read_ids(data_dir: Path, reads_dir: Path | None = None) -> list[str]:
    """Every stored read's id, read back with pyarrow (an independent reader)."""
    reads_dir = reads_dir or data_dir / "reads"
    if not reads_dir.is_dir():
        return []
    dataset = ds.dataset(reads_dir, format="parquet", partitioning="hive")
    return [str(x) for x in dataset.to_table(columns=["read_id"]).column("read_id").to_pylist()]


def logged_alert_ids(client: redis.Redis) -> list[str]:
    ids = []
    for log_key in (ALERTS_LOG, COVERT_LOG):
        for _, fields in client.xrange(log_key):
            ids.append(orjson.loads(fields[b"alert"])["alert_id"])
    return ids


def caught_up(client: redis.Redis) -> bool:
    """Every partition's committed offset is its stream's last entry."""
    committed = client.hgetall(OFFSETS_KEY)
    for p in range(PARTITIONS):
        last = client.xrevrange(stream_key(p), count=1)
        if last and committed.get(str(p).encode()) != last[0][0]:
            return False
    return True


def stream_entries(client: redis.Redis) -> dict[int, list[tuple[bytes, dict[bytes, bytes]]]]:
    return {p: client.xrange(stream_key(p)) for p in range(PARTITIONS)}


def copy_streams(source: redis.Redis, target: redis.Redis) -> None:
    """The read streams, entry for entry (same payloads, same partitions), into ``target``:
    what one process would have been given."""
    for p, entries in stream_entries(source).items():
        pipe = target.pipeline(transaction=False)
        for _, fields in entries:
            pipe.xadd(stream_key(p), fields)
        pipe.execute()


def hotlist_csv(path: Path, plates: Iterable[str]) -> Path:
    """A hotlist file (name = file stem) with an exact + one-OCR-substitution policy."""
    rows = ["plate,state,reason,case_number"]
    rows += [f"{plate},,Stolen vehicle,SO-T-{i}" for i, plate in enumerate(plates)]
    path.write_text("\n".join(rows) + "\n")
    policy = {"category": "stolen_vehicle", "ocr_equivalents": 1, "priority": 1}
    path.with_suffix(".policy.json").write_bytes(orjson.dumps(policy))
    return path


class FillableVolume:
    """A data directory that can be made unwritable for real, as root: a small tmpfs mounted
    there (writes then fail with ENOSPC, like a full volume) that :meth:`fill` fills up and
    :meth:`free` empties. Where mounting is not permitted (no CAP_SYS_ADMIN) the directory's
    ``reads`` folder is swapped for a plain file instead (writes fail with ENOTDIR), which
    chmod could not do for root."""

    def __init__(self, path: Path, size_mb: int = 64) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
        self.mounted = done.returncode == 0
        self.how = "a full tmpfs (ENOSPC)" if self.mounted else "reads/ replaced by a file"

    @property
    def reads_dir(self) -> Path:
        """Where the stored reads are now (set aside while ``reads`` is a file)."""
        away = self.path / ".reads-away"
        return away if away.is_dir() else self.path / "reads"

    def fill(self) -> None:
        if not self.mounted:
            (self.path / "reads").rename(self.path / ".reads-away")
            (self.path / "reads").write_text("not a directory")
            return
        fd = os.open(self.path / ".filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for chunk in (1 << 20, 4096, 1):  # down to the last byte of the last page
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError:
                    pass  # full at this chunk size
        finally:
            os.close(fd)

    def free(self) -> None:
        if not self.mounted:
            (self.path / "reads").unlink()
            (self.path / ".reads-away").rename(self.path / "reads")
            return
        (self.path / ".filler").unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False, timeout=30)
            self.mounted = False


class LocalPostgres:
    """A PostgreSQL cluster of this test alone (the machine's cannot be restarted): Debian's
    binaries, ``initdb`` as the ``postgres`` user in a temporary directory, trust auth on
    127.0.0.1 and a free port. :meth:`stop` and :meth:`start` restart it with its data."""

    def __init__(self) -> None:
        import pwd
        import shutil
        import tempfile

        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found or os.geteuid() != 0 or not shutil.which("runuser"):
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql, or not root")
        self.bin = found[-1].parent
        # /tmp/pytest-of-root is private to root: the server's directory lives beside it
        self.directory = Path(tempfile.mkdtemp(prefix="plateflow-pg-"))
        user = pwd.getpwnam("postgres")
        os.chown(self.directory, user.pw_uid, user.pw_gid)
        self.port = free_port()
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.directory / "data"), "-A", "trust",
            "-U", "postgres", "--no-sync",
        )  # fmt: skip

    def _as_postgres(self, *command: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> LocalPostgres:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-o", options,
            "-l", str(self.directory / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast",
            "-w", "-t", "60", "stop",
        )  # fmt: skip

    def remove(self) -> None:
        import shutil

        try:
            self.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)
