"""The supervisor of the embedded Redis: ``python -m plateflow._redis_keeper --dir D …``.

Started by the first plateflow process that needs the embedded Redis, in a session of its own
(so a Ctrl-C meant for one terminal's command does not stop a server another command still
uses). It starts ``redis-server``, then every :data:`POLL_S` seconds asks whether any process
still holds a lease (:mod:`plateflow._redis_files`); when none does it stops the server cleanly
(the AOF is flushed) and exits. So the server lives exactly as long as its last user, whether
that user exited, raised, was stopped by SIGTERM/SIGINT/SIGHUP or was killed with SIGKILL.

The server is started with Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``):
if this supervisor is itself killed with SIGKILL, the kernel sends the server SIGTERM, which it
handles as a clean shutdown. A server that dies while leases are held (a crash, an OOM kill) is
started again on the same socket from its AOF, so the processes using it reconnect.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import redis

from plateflow._redis_files import (
    EMBEDDED_USERS,
    EmbeddedRedisError,
    RedisFiles,
    exclusive,
    live_leases,
    load_credentials,
    write_private,
)

log = logging.getLogger("plateflow.redis_keeper")

#: Seconds between two checks of the leases (and of the server's health).
POLL_S = 0.2
#: Restarts of a crashed server allowed in :data:`_RESTART_WINDOW_S` before giving up.
_MAX_RESTARTS = 5
_RESTART_WINDOW_S = 60.0
_PR_SET_PDEATHSIG = 1


def server_args(binary: str, files: RedisFiles, sock: str, fsync: str, aof: bool) -> list[str]:
    """The ``redis-server`` command line: Unix socket only, ACL file, AOF in the data dir."""
    return [
        binary,
        "--port", "0",
        "--unixsocket", sock,
        "--unixsocketperm", "700",
        "--dir", str(files.directory.resolve()),
        "--aclfile", str(files.aclfile.resolve()),
        "--appendonly", "yes" if aof else "no",
        "--appendfilename", "appendonly.aof",
        "--appendfsync", fsync,
        # The AOF is the durable copy; periodic RDB snapshots would only add disk writes.
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
        "--logfile", str(files.redis_log.resolve()),
    ]  # fmt: skip


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: nothing to import after
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class Keeper:
    """One supervised ``redis-server`` for the data directory ``files.directory``."""

    def __init__(self, files: RedisFiles, fsync: str, binary: str) -> None:
        self.files = files
        self.fsync = fsync
        self.binary = binary
        self.sock_dir = tempfile.mkdtemp(prefix="plateflow-redis-")
        self.sock = os.path.join(self.sock_dir, "redis.sock")
        password = load_credentials(files)["admin"]
        self.admin = redis.Redis(
            unix_socket_path=self.sock, username=EMBEDDED_USERS["admin"], password=password,
            socket_timeout=10, socket_connect_timeout=2,
        )  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self._restarts: list[float] = []

    # -- the server ------------------------------------------------------------------------------

    def _answers(self) -> bool:
        try:
            return bool(self.admin.ping())
        except (redis.RedisError, OSError):
            return False

    def start_server(self) -> None:
        """Start ``redis-server`` and wait until it answers; migrate an RDB-only data dir."""
        # A data dir from before AOF has only dump.rdb: starting with AOF on would ignore it and
        # begin empty, so load the RDB first and switch AOF on at runtime (Redis then writes the
        # AOF from the loaded data).
        migrate = (self.files.directory / "dump.rdb").exists() and not self.files.has_aof()
        args = server_args(self.binary, self.files, self.sock, self.fsync, aof=not migrate)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock)
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent(), cwd=self.files.directory
        )
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.proc.poll() is not None:
                msg = (
                    f"redis-server exited at start with code {self.proc.returncode}; "
                    f"see {self.files.redis_log}"
                )
                raise EmbeddedRedisError(msg)
            if time.monotonic() > deadline:
                msg = f"redis-server did not answer within 30 s; see {self.files.redis_log}"
                raise EmbeddedRedisError(msg)
            time.sleep(0.02)
        if migrate:
            log.warning(
                "turning AOF on for %s (its data was in dump.rdb only)", self.files.directory
            )
            self.admin.config_set("appendonly", "yes")
            self._wait_for_rewrite(deadline=time.monotonic() + 120)
        self._write_state()
        log.info("redis-server %d on %s (AOF fsync %s)", self.proc.pid, self.sock, self.fsync)

    def _wait_for_rewrite(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            info = self.admin.info("persistence")
            if (
                info.get("aof_enabled") == 1
                and not info.get("aof_rewrite_in_progress")
                and not info.get("aof_rewrite_scheduled")
            ):
                return
            time.sleep(0.05)
        msg = f"the first AOF rewrite did not finish within 120 s; see {self.files.redis_log}"
        raise EmbeddedRedisError(msg)

    def _write_state(self) -> None:
        assert self.proc is not None
        state = {
            "socket": self.sock, "socket_dir": self.sock_dir, "keeper_pid": os.getpid(),
            "server_pid": self.proc.pid, "fsync": self.fsync,
        }  # fmt: skip
        write_private(self.files.state, json.dumps(state))

    def stop_server(self) -> None:
        """SHUTDOWN (Redis flushes the AOF), then wait; SIGTERM, then SIGKILL, as fallbacks."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.admin.shutdown()
            except (redis.RedisError, OSError) as exc:
                log.warning("SHUTDOWN failed (%s); sending SIGTERM", exc)
                self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log.error("redis-server %d ignored SHUTDOWN for 30 s; killing it", self.proc.pid)
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def _restart_allowed(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < _RESTART_WINDOW_S]
        self._restarts.append(now)
        return len(self._restarts) <= _MAX_RESTARTS

    # -- the watch ---------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        try:
            self.start_server()
            while not self.stopping:
                time.sleep(POLL_S)
                assert self.proc is not None
                if self.proc.poll() is not None and not self.stopping:
                    log.error(
                        "redis-server exited unexpectedly (code %s); see %s",
                        self.proc.returncode, self.files.redis_log,
                    )  # fmt: skip
                    if not live_leases(self.files) or not self._restart_allowed():
                        return 1
                    self.start_server()  # from the AOF, on the same socket
                if not live_leases(self.files):
                    # Decide under the lock, so nobody joins a server that is going away.
                    with exclusive(self.files.lock, timeout_s=60):
                        if not live_leases(self.files):
                            self._finish()
                            return 0
            with exclusive(self.files.lock, timeout_s=60):
                self._finish()
            return 0
        finally:
            self._finish()

    def _finish(self) -> None:
        self.stop_server()
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self.files.state.read_text()).get("keeper_pid") == os.getpid():
                self.files.state.unlink()
        shutil.rmtree(self.sock_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plateflow._redis_keeper")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--fsync", choices=("everysec", "always"), default="everysec")
    parser.add_argument("--binary", required=True)
    args = parser.parse_args(argv)
    # Everything the server and this supervisor create (AOF, RDB, logs) is 0600: the AOF holds
    # every read still in the streams.
    os.umask(0o077)
    files = RedisFiles(args.dir)
    logging.basicConfig(
        filename=files.keeper_log, level=logging.INFO,
        format="%(asctime)s keeper %(process)d %(levelname)s %(message)s",
    )  # fmt: skip
    try:
        return Keeper(files, args.fsync, args.binary).run()
    except EmbeddedRedisError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
