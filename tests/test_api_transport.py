"""Transport: ``plateflow serve`` over HTTPS with a certificate made here, and X-Forwarded-For
believed only from the allowed proxies (the audit log's client). Real uvicorn, real sockets."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import redis
import sqlalchemy.exc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

import records
from api import create_app
from plateflow.errors import SettingsError
from plateflow.settings import Settings
from tests.people import add_person
from tests.test_api_cli import ROOT, _free_port
from tests.test_api_support import PARTITIONS, TOKEN, all_reads, read

PASSWORD = "Correct-Stapler-7-Horse"
FORGED = "203.0.113.9"


def _self_signed(folder: Path, stem: str = "api") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, mode 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"plateflow test {stem}")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class _Serve:
    """``plateflow serve`` in its own process with ``env`` added (stopped by its handle)."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.port = _free_port()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}
        self.log = tmp / f"serve-{self.port}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "plateflow.cli", "serve", "--api-port", str(self.port)],
                cwd=ROOT,
                env=clean | {"PLATEFLOW_LOG_LEVEL": "WARNING"} | env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, url: str, **kwargs: object) -> httpx.Response:
        deadline = time.monotonic() + 30
        while True:
            try:
                return httpx.get(url, timeout=2, **kwargs)  # type: ignore[arg-type]
            except httpx.TransportError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "serve did not answer: " + self.log.read_text()
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


@pytest.fixture(name="database")
def database_fixture(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    engine = records.connect(url)
    records.reset_schema(engine)
    add_person(engine, "dora", ["dispatcher"], password=PASSWORD, by="setup")
    engine.dispose()
    yield url


def _login_client(database: str, base: str, **kwargs: object) -> str | None:
    """Log in through ``base`` with a forged X-Forwarded-For; the client the audit log kept."""
    resp = httpx.post(
        f"{base}/v1/auth/login",
        json={"username": "dora", "password": PASSWORD},
        headers={"X-Forwarded-For": FORGED},
        **kwargs,  # type: ignore[arg-type]
    )
    assert resp.status_code == 200, resp.text
    engine = records.connect(database)
    try:
        logins = [r for r in records.read_audit(engine) if r.username == "dora"]
    finally:
        engine.dispose()
    return logins[-1].client


def test_https_and_the_forwarded_client_from_an_allowed_proxy(
    tmp_path: Path, database: str, redis_url: str, redis_client: redis.Redis
) -> None:
    cert, key = _self_signed(tmp_path)
    env = {
        "PLATEFLOW_REDIS_URL": redis_url,
        "PLATEFLOW_DATABASE_URL": database,
        "PLATEFLOW_DATA_DIR": str(tmp_path / "data"),
        "PLATEFLOW_TLS_CERT_FILE": str(cert),
        "PLATEFLOW_TLS_KEY_FILE": str(key),
        "PLATEFLOW_FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    server = _Serve(env, tmp_path)
    base = f"https://127.0.0.1:{server.port}"
    try:
        health = server.wait(f"{base}/healthz", verify=ssl.create_default_context(cafile=cert))
        assert health.status_code == 200 and health.url.scheme == "https"
        with pytest.raises(httpx.TransportError):  # nothing is served in clear
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=2)
        with pytest.raises(httpx.ConnectError):  # and the certificate is checked
            httpx.get(f"{base}/healthz", timeout=2)
        # The proxy (here, 127.0.0.1) is allowed: the client behind it is recorded.
        assert (
            _login_client(database, base, verify=ssl.create_default_context(cafile=cert)) == FORGED
        )
    finally:
        server.stop()


def test_a_forged_forwarded_for_from_a_peer_not_allowed_is_ignored(
    tmp_path: Path, database: str, redis_url: str, redis_client: redis.Redis
) -> None:
    common = {
        "PLATEFLOW_REDIS_URL": redis_url,
        "PLATEFLOW_DATABASE_URL": database,
        "PLATEFLOW_DATA_DIR": str(tmp_path / "data"),
    }
    # No allow-list (the default) and an allow-list without our address: the peer is recorded.
    for extra in ({}, {"PLATEFLOW_FORWARDED_ALLOW_IPS": "192.0.2.10,10.0.0.0/8"}):
        server = _Serve(common | extra, tmp_path)
        base = f"http://127.0.0.1:{server.port}"
        try:
            assert server.wait(f"{base}/healthz").status_code == 200
            assert _login_client(database, base) == "127.0.0.1"
        finally:
            server.stop()


def test_tls_needs_both_files_and_the_allow_list_names_addresses(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with pytest.raises(SettingsError, match="tls_cert_file is set but tls_key_file is not"):
        Settings.load({"PLATEFLOW_TLS_CERT_FILE": str(cert)})
    settings = Settings.load(tls_cert_file=str(cert), tls_key_file=str(key))
    assert (settings.tls_cert_file, settings.tls_key_file) == (cert, key)
    with pytest.raises(SettingsError, match=r"forwarded_allow_ips .*'proxy\.local' is neither"):
        Settings.load({"PLATEFLOW_FORWARDED_ALLOW_IPS": "10.0.0.5,proxy.local"})


class _TlsRedis:
    """A TLS front for the test Redis that asks for a client certificate (Redis's
    ``tls-auth-clients yes``), as a TLS-enabled Redis would: the machine's Redis has no TLS."""

    def __init__(self, backend: str, server: tuple[Path, Path], client_ca: Path) -> None:
        self._backend = urlsplit(backend)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=client_ca)
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._context.load_cert_chain(*server)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, ca: Path, cert: tuple[Path, Path] | None) -> str:
        query = {"ssl_ca_certs": str(ca), "ssl_cert_reqs": "required"}
        if cert is not None:
            query |= {"ssl_certfile": str(cert[0]), "ssl_keyfile": str(cert[1])}
        auth = self._backend.netloc.rsplit("@", 1)[0] + "@" if "@" in self._backend.netloc else ""
        return f"rediss://{auth}127.0.0.1:{self.port}/0?{urlencode(query)}"

    def _open_backend(self) -> socket.socket:
        if self._backend.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(self._backend.path)
            return sock
        return socket.create_connection((self._backend.hostname, self._backend.port or 6379))

    def _accept(self) -> None:
        while True:
            conn, _ = self._listener.accept()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            conn.close()
            return
        backend = self._open_backend()
        with tls, backend:
            pair = {tls: backend, backend: tls}
            while True:
                ready, _, _ = select.select([tls, backend], [], [], 30)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
                while tls.pending():  # decrypted bytes select() cannot see
                    backend.sendall(tls.recv(65536))


def test_redis_over_tls_with_a_client_certificate(
    tmp_path: Path, data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    server, client = _self_signed(tmp_path, "redis"), _self_signed(tmp_path, "client")
    front = _TlsRedis(redis_url, server, client_ca=client[0])
    url = front.url(server[0], client)
    settings = Settings.load(
        environ={}, data_dir=str(data_dir), ingest_tokens=TOKEN, partitions=str(PARTITIONS)
    )
    # Both clients of the API (the API's own and the ingest's asynchronous writer) over TLS.
    with TestClient(create_app(settings, url, ingest_redis_url=url)) as api:
        assert api.get("/healthz").json()["checks"]["redis"] == "ok"
        resp = api.post("/v1/reads", json=read(), headers={"X-Plateflow-Token": TOKEN})
        assert resp.status_code == 202, resp.text
    assert [r["camera_id"] for r in all_reads(redis_client)] == ["cam-elm-01"]
    # Without its client certificate a service is refused at the handshake: nothing stored.
    bare = front.url(server[0], None)
    with TestClient(create_app(settings, bare, ingest_redis_url=bare)) as api:
        resp = api.post(
            "/v1/reads", json=read(plate="NOCERT1"), headers={"X-Plateflow-Token": TOKEN}
        )
        assert resp.status_code == 503
    assert front.refused >= 1 and len(all_reads(redis_client)) == 1


def test_postgresql_sslmode_in_the_url_reaches_the_driver() -> None:
    url = os.environ.get("PLATEFLOW_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("needs PLATEFLOW_DATABASE_URL naming a PostgreSQL server")
    settings = Settings.load({"PLATEFLOW_DATABASE_URL": url + "?sslmode=require"})
    assert settings.effective_database_url.endswith("?sslmode=require")
    try:
        engine = records.connect(settings.effective_database_url)
    except sqlalchemy.exc.OperationalError as exc:
        # A server without TLS is refused rather than used in clear.
        assert "server does not support SSL, but SSL was required" in str(exc)
        return
    try:
        with engine.connect() as conn:
            pid = "pg_backend_pid()"
            used = conn.exec_driver_sql(f"SELECT ssl FROM pg_stat_ssl WHERE pid = {pid}").scalar()
        assert used is True  # a server with TLS: the connection is encrypted
    finally:
        engine.dispose()
