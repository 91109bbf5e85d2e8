"""Small crash-safe file operations shared by the store, retention and evidence code.

Every file they create is mode 0600 and every directory 0700 (:data:`FILE_MODE`,
:data:`DIR_MODE`), set explicitly so the process's umask does not matter: reads are personal
data (Civil Code 1798.90.51) and no other account on the host may read them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "atomic_file",
    "atomic_write_bytes",
    "create_exclusive",
    "fsync_dir",
    "locked",
    "open_private",
    "private_dir",
    "read_json",
    "temp_for",
]

#: Mode of every data file (Parquet, indexes, sidecars, logs, evidence): this user only.
FILE_MODE = 0o600
#: Mode of every data directory.
DIR_MODE = 0o700

_OPEN_FLAGS = {
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "xb": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "a+b": os.O_RDWR | os.O_CREAT | os.O_APPEND,
}


def private_dir(directory: Path) -> Path:
    """``directory`` and any missing parents created with mode 0700; an existing one this
    user owns is narrowed to 0700 (what others could read before stays theirs to have read,
    nothing new becomes readable). Returns ``directory``."""
    missing = []
    at = Path(directory)
    while not at.exists():
        missing.append(at)
        at = at.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another writer made it first
            level.mkdir(mode=DIR_MODE)
    info = os.stat(directory)
    if info.st_uid == os.getuid() and info.st_mode & 0o777 != DIR_MODE:
        os.chmod(directory, DIR_MODE)
    return Path(directory)


def open_private(path: Path, mode: str = "wb") -> IO[bytes]:
    """``open(path, mode)`` for ``wb``, ``xb``, ``ab`` or ``a+b``, the file created (or, when it
    exists, set) with mode 0600 whatever the umask."""
    fd = os.open(path, _OPEN_FLAGS[mode], FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, mode)


def temp_for(path: Path) -> Path:
    """The temporary name ``path`` is written under before it is renamed into place. Hidden
    (leading dot) and deterministic, so scans skip it and a retry overwrites a leftover."""
    return path.with_name(f".{path.name}.tmp")


def fsync_dir(directory: Path) -> None:
    """Make a rename or create inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, *, fsync: bool = True, sync_dir: bool = False) -> Iterator[IO[bytes]]:
    """A binary handle on :func:`temp_for` ``(path)``; when the block ends without an error the
    file is flushed, fsynced (``fsync``) and renamed over ``path``, so a reader sees the whole
    new file or the old one. ``sync_dir`` also makes the rename durable. The parent directory
    is created if missing."""
    private_dir(path.parent)
    temp = temp_for(path)
    with open_private(temp, "wb") as handle:
        yield handle
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temp, path)
    if fsync and sync_dir:
        fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` all or nothing: temp file, fsync, rename, fsync the directory."""
    with atomic_file(path, fsync=fsync, sync_dir=True) as handle:
        handle.write(data)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` only if it does not exist (complete or not at all).

    Returns False when the file was already there: a hard link fails on an existing name, so
    two writers racing to create the same sidecar never overwrite each other (or a hold)."""
    if path.exists():
        return False
    private_dir(path.parent)
    # pid and thread: two workers of one process may race to create the same sidecar
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    with open_private(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    return True


def read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) across processes for read-modify-write updates."""
    private_dir(lock_file.parent)
    with open_private(lock_file, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
