"""Data files are this account's only (427.6): every file the store, compaction, holds,
evidence and the embedded Redis create is 0600 under 0700 directories, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

import records
import service
import sinks
from plateflow.embedded import EmbeddedRedis
from tests.test_api_support import PASSWORD, add_member

DAY = date(2026, 3, 1)


@pytest.fixture()
def open_umask() -> Iterator[None]:
    before = os.umask(0o002)  # group-writable, world-readable unless the code sets modes
    try:
        yield
    finally:
        os.umask(before)


def _modes(root: Path) -> dict[str, int]:
    found = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        if path.is_socket():
            continue
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def _loose(root: Path) -> dict[str, str]:
    return {
        name: oct(mode)
        for name, mode in _modes(root).items()
        if mode != (0o700 if (root / name).is_dir() or name == str(root) else 0o600)
    }


def test_store_compaction_holds_and_evidence_write_private_files(
    tmp_path: Path, open_umask: None
) -> None:
    data_dir = tmp_path / "data"
    store = sinks.ReadStore(data_dir, fsync=False)
    at = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=timezone.utc)
    reads = [
        {"read_id": f"r{i}", "camera_id": "c1", "plate": f"ABC{i:03d}", "confidence": 0.9,
         "ts": int((at + timedelta(minutes=i)).timestamp() * 1000)}
        for i in range(5)
    ]  # fmt: skip
    store.write_reads(0, "1-0", reads)
    store.write_reads(1, "2-0", reads[:2])
    assert store.compact("reads", DAY) is not None
    store.place_hold("C-1", ["r1", "r2"], by="det", at=at, start=at, end=at + timedelta(hours=1))
    store.export_evidence("C-1", data_dir / "evidence" / "x1", by="sgt", at=at)
    store.purge(at + timedelta(days=800), by="cron")
    assert _loose(data_dir) == {}


def test_the_embedded_redis_keeps_its_files_private(tmp_path: Path, open_umask: None) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    try:
        server.start()
    finally:
        server.stop()
    assert _loose(tmp_path / "redis") == {}


def test_an_evidence_export_by_the_service_lands_in_a_private_directory(
    engine: Engine, tmp_path: Path, open_umask: None
) -> None:
    data_dir = tmp_path / "data"
    door = service.Door(engine, service.ServiceConfig(data_dir=data_dir))
    at = datetime.now(timezone.utc) - timedelta(hours=1)
    read = {"read_id": "r1", "camera_id": "c1", "plate": "ABC123", "confidence": 0.9,
            "ts": int(at.timestamp() * 1000)}  # fmt: skip
    door.store.write_reads(0, "1-0", [read])
    door.store.place_hold("C-1", ["r1"], by="det", at=at, start=at, end=at + timedelta(minutes=1))
    add_member(engine, "ivy", "investigator")
    token = records.login(engine, "ivy", PASSWORD).token
    why = service.Justification(case_number="C-1")
    ivy = door.enter(service.Acts.EVIDENCE_EXPORT, token, why=why, client="test")
    export = service.export_evidence(door, ivy)
    assert export.directory.parent == data_dir / "evidence"
    assert _loose(data_dir) == {}
