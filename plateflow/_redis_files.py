"""The embedded Redis's files in ``{data_dir}/redis/``, and the locks that let processes share it.

Every process that uses the embedded Redis (``demo``, ``run``, ``serve``, ``ingest``…) holds a
*lease*: a file under ``leases/`` on which it keeps an exclusive ``flock``. The kernel drops the
lock when the process ends, however it ends (SIGKILL included), so "is anyone still using this
server?" is answered by trying to lock each lease, with no pid bookkeeping and no pid reuse
problem. The supervisor (:mod:`plateflow._redis_keeper`) stops the server when no lease is held.

``embedded.lock`` serialises the two decisions that must not interleave: a process joining (or
starting) the server, and the supervisor deciding that the last user is gone and stopping it.

Files (all in the data directory, so they survive restarts; secrets are 0600):

* ``appendonly.aof`` (Redis 6) or ``appendonlydir/`` (Redis 7): the AOF, loaded at every start;
* ``embedded.json``: the running server's socket, supervisor pid and server pid;
* ``credentials.json``: the generated passwords of the ACL users, ``users.acl``: the ACL file;
* ``redis.log`` and ``keeper.log``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plateflow.errors import PlateflowError

log = logging.getLogger(__name__)

#: The ACL user names of the embedded Redis, by role. ``admin`` is the supervisor's (and the
#: tests'); the three services get only what ARCHITECTURE.md "Redis" gives them.
EMBEDDED_USERS = {
    "admin": "plateflow-admin",
    "ingest": "plateflow-ingest",
    "flow": "plateflow-flow",
    "api": "plateflow-api",
}


class EmbeddedRedisError(PlateflowError):
    """The embedded Redis could not be started, joined or stopped."""


class _InDirectory:
    """A file of :class:`RedisFiles`, named in its directory: ``files.lock`` is
    ``files.directory / "embedded.lock"``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, files: RedisFiles, owner: type[RedisFiles] | None = None) -> Path:
        return files.directory / self.name


@dataclass(frozen=True)
class RedisFiles:
    """The paths of one embedded Redis, all under ``directory`` (``{data_dir}/redis``)."""

    directory: Path

    lock = _InDirectory("embedded.lock")
    leases = _InDirectory("leases")
    state = _InDirectory("embedded.json")
    credentials = _InDirectory("credentials.json")
    aclfile = _InDirectory("users.acl")
    redis_log = _InDirectory("redis.log")
    keeper_log = _InDirectory("keeper.log")

    def has_aof(self) -> bool:
        """True when an AOF from an earlier run exists (either Redis version's layout)."""
        return (self.directory / "appendonly.aof").exists() or (
            self.directory / "appendonlydir"
        ).is_dir()

    def prepare(self) -> None:
        """Create the directory, readable by this user only (it holds the AOF and passwords)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.leases.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            self.directory.chmod(0o700)
            self.leases.chmod(0o700)


@contextlib.contextmanager
def exclusive(path: Path, timeout_s: float) -> Iterator[None]:
    """Hold ``flock(LOCK_EX)`` on ``path`` for the block; wait at most ``timeout_s``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    msg = (
                        f"another plateflow process has held {path} for more than "
                        f"{timeout_s:.0f} s while starting or stopping the embedded Redis; "
                        "wait for it, or stop it and start again"
                    )
                    raise EmbeddedRedisError(msg) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class Lease:
    """One process's claim on the shared server: an exclusively locked file under ``leases/``.

    The file is locked under a temporary name and only then renamed to ``*.lease``, so the
    supervisor never sees a lease that exists but is not yet locked."""

    def __init__(self, files: RedisFiles) -> None:
        name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = files.leases / f".{name}.tmp"
        self.path = files.leases / f"{name}.lease"
        self._fd: int | None = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(tmp, self.path)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def live_leases(files: RedisFiles) -> int:
    """How many leases are held; a lease nobody holds (its process died) is removed."""
    held = 0
    for path in files.leases.glob("*.lease"):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # released between the listing and the open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held += 1
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        finally:
            os.close(fd)
    return held


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by this user only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_state(files: RedisFiles) -> dict[str, Any] | None:
    """The running server's record, or None when there is none (or it is unreadable)."""
    try:
        state: dict[str, Any] = json.loads(files.state.read_text())
    except (OSError, ValueError):
        return None
    return state


def load_credentials(files: RedisFiles) -> dict[str, str]:
    """The passwords of :data:`EMBEDDED_USERS`, generated (0600) on first use and kept, so a
    process that joins a running server, or a restart, uses the same ones."""
    try:
        found: dict[str, str] = json.loads(files.credentials.read_text())
        if set(found) >= set(EMBEDDED_USERS):
            return found
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("replacing unreadable %s: %s", files.credentials, exc)
    passwords = {role: secrets.token_hex(32) for role in EMBEDDED_USERS}
    write_private(files.credentials, json.dumps(passwords))
    return passwords


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runs_in(pid: int, directory: Path) -> bool:
    """True when process ``pid`` is a redis-server working in ``directory`` (Linux /proc; Redis
    changes into its ``dir`` at start, so this tells an orphan of ours from any other server)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return comm.startswith("redis-server") and cwd == directory.resolve()
