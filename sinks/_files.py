"""Small crash-safe file operations shared by the store, retention and evidence code."""

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
    "atomic_file",
    "atomic_write_bytes",
    "create_exclusive",
    "fsync_dir",
    "locked",
    "read_json",
    "temp_for",
]


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
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_for(path)
    with open(temp, "wb") as handle:
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
    path.parent.mkdir(parents=True, exist_ok=True)
    # pid and thread: two workers of one process may race to create the same sidecar
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    with open(temp, "wb") as handle:
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
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
