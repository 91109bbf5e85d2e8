"""Helpers of the dispatch console tests (no tests here): a live API behind a TCP proxy the
tests can cut, Debian's Chromium through Playwright, members who log in, and real alerts
published through :class:`sinks.AlertBus`.

The proxy stands between the browser and the server so a test can drop every connection (and
refuse new ones for a while) without stopping the server or touching the browser: the page
sees exactly what a lost network looks like and reconnects on its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from matchers import Entry, Hotlist, HotlistIndex, Policy, build_alert, validate_read
from plateflow.settings import Settings
from sinks import AlertBus
from tests.people import add_person
from tests.records_support import fresh
from tests.test_api_support import PASSWORD, TOKEN, database_url_in
from tests.test_bench_target import _Api

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "PASSWORD",
    "Console",
    "Proxy",
    "card",
    "console_settings",
    "log_in",
    "make_alert",
    "open_console",
    "received",
    "running_console",
]

CHROMIUM = "/usr/bin/chromium"
#: Debian's Chromium as a test browser: no sandbox (containers), no GPU, nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

#: Members of the console tests: two dispatchers without the covert right, one with it
#: (dispatcher and investigator), and an auditor, who may not receive alerts.
MEMBERS = {
    "dora": ("dispatcher",),
    "dan": ("dispatcher",),
    "cora": ("dispatcher", "investigator"),
    "aud": ("auditor",),
}

#: The test server's settings: a two-second urgent verification deadline (the overdue switch
#: is seen within a test) and a heartbeat every second.
_TEST_SETTINGS = {"verify_urgent_s": "2", "sse_heartbeat_s": "1"}

_counter = itertools.count(1)

# the machine is shared: give the page more than Playwright's 5 s before a check fails
expect.set_options(timeout=10_000)


def console_settings(data_dir: Path, database_url: str, **extra: str) -> Settings:
    # the session's audit key (tests/conftest.py), which a PostgreSQL records database needs
    key = {k: v for k, v in os.environ.items() if k == "PLATEFLOW_AUDIT_KEY"}
    return Settings.load(
        environ=key,
        data_dir=str(data_dir),
        ingest_tokens=TOKEN,
        partitions="2",
        database_url=database_url,
        **{**_TEST_SETTINGS, **extra},
    )


class Proxy:
    """A TCP proxy on a free port to ``target``; :meth:`cut` drops every open connection and
    refuses new ones (accepted, then closed at once) until :meth:`restore`."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.down = False
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._open -= {src, dst}

    def cut(self) -> None:
        self.down = True
        with self._lock:
            live = list(self._open)
        for s in live:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self._stop = True
        self.cut()
        self.listener.close()


@dataclasses.dataclass
class Console:
    """The running API (behind :attr:`proxy`), its Redis and records, and a browser."""

    api: Any
    proxy: Proxy
    redis: redis.Redis
    engine: Any
    settings: Settings
    browser: Browser
    shots: Path
    redis_url: str
    #: cookies of one open session per username (see :func:`open_console`)
    sessions: dict[str, list[dict[str, str]]] = dataclasses.field(default_factory=dict)

    @property
    def url(self) -> str:
        """Where the browser goes: the proxy in front of the server."""
        return self.proxy.url

    @property
    def api_url(self) -> str:
        """The server itself, for HTTP-level checks."""
        return f"http://127.0.0.1:{self.api.port}"

    def publish(self, *alerts: dict[str, Any], cooldown_s: float = 0) -> list[dict[str, Any]]:
        bus = AlertBus(self.redis, cooldown_s=cooldown_s)
        return bus.publish(list(alerts))

    def context(self) -> BrowserContext:
        return self.browser.new_context(viewport={"width": 1400, "height": 900})

    def shot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path))
        return path


def make_alert(
    read_plate: str,
    entry_plate: str | None = None,
    *,
    hotlist: str = "stolen",
    priority: int = 2,
    covert: bool = False,
    camera: str = "cam-elm-01",
    lat: float | None = 38.5816,
    lon: float | None = -121.4944,
    read_state: str | None = "CA",
    entry_state: str | None = "CA",
    advisories: tuple[str, ...] = (),
    image_ref: str | None = None,
    **policy: Any,
) -> dict[str, Any]:
    """A real alert: the read matched against a one-entry list by :class:`HotlistIndex` and
    built by :func:`matchers.build_alert`, each with a fresh read id."""
    n = next(_counter)
    entry_plate = entry_plate or read_plate
    entry = Entry(
        f"{hotlist}:{entry_plate}", entry_plate, entry_state, "Stolen 2026-11-30", "SO-26-0042",
        "setup",
    )  # fmt: skip
    lists = [Hotlist(hotlist, "stolen_vehicle", Policy(priority=priority, covert=covert, **policy),
                     (entry,))]  # fmt: skip
    now = int(time.time() * 1000)
    read = validate_read(
        {
            "read_id": f"r-console-{n}-{now}",
            "camera_id": camera,
            "plate": read_plate,
            "ts": now,
            "confidence": 0.93,
            "state": read_state,
            "lat": lat,
            "lon": lon,
            "image_ref": image_ref,
        }
    )
    (found,) = HotlistIndex.build(lists).match_batch([read["plate"]], [read["state"]], [now])
    assert found, f"{read_plate} does not match {entry_plate} under {policy}"
    return build_alert(read, found[0], list(advisories), now)


def add_members(engine: Any) -> None:
    for username, roles in MEMBERS.items():
        add_person(engine, username, roles, password=PASSWORD, name=f"Test {username}")


@contextlib.contextmanager
def running_console(tmp: Path, redis_url: str, shots: Path, **settings: str) -> Iterator[Console]:
    url = database_url_in(tmp)
    engine = fresh(url)
    add_members(engine)
    data_dir = tmp / "data"
    data_dir.mkdir(exist_ok=True)
    config = console_settings(data_dir, url, **settings)
    api = _Api(config, redis_url)
    proxy = Proxy(api.port)
    client = redis.Redis.from_url(redis_url)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield Console(api, proxy, client, engine, config, browser, shots, redis_url)
            finally:
                browser.close()
    finally:
        proxy.close()
        api.stop()
        client.close()
        engine.dispose()


def open_console(console: Console, username: str, *, form: bool = False) -> Page:
    """A new browser context showing ``username``'s list: logged in through the form, or
    (faster: one password check per user and module) with the cookies of a cached session,
    which is also how the page comes back after a reload."""
    if form:
        return log_in(console.context().new_page(), console.url, username)
    if username not in console.sessions:
        with httpx.Client(base_url=console.api_url, timeout=10) as http:
            body = {"username": username, "password": PASSWORD, "cookie": True}
            resp = http.post("/v1/auth/login", json=body)
            assert resp.status_code == 200, resp.text
            console.sessions[username] = [
                {"name": c.name, "value": c.value or "", "url": console.url}
                for c in http.cookies.jar
            ]
    context = console.context()
    context.add_cookies(console.sessions[username])  # type: ignore[arg-type]
    page = _watch(context.new_page())
    page.goto(console.url + "/console")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return page


def _watch(page: Page) -> Page:
    """``page.errors`` collects script errors and Content-Security-Policy violations."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.errors = errors  # type: ignore[attr-defined]
    return page


def log_in(page: Page, base_url: str, username: str, why: str = "") -> Page:
    """Open the console at ``base_url`` in ``page`` and log in through the form."""
    _watch(page)
    page.goto(base_url + "/console")
    page.fill("#login input[name=username]", username)
    page.fill("#login input[name=password]", PASSWORD)
    if why:
        page.fill("#login input[name=why]", why)
    page.click("#login button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return page


def card(page: Page, alert: dict[str, Any]) -> Any:
    return page.locator(f'.card[data-alert-id="{alert["alert_id"]}"]')


def received(page: Page) -> dict[str, int]:
    """How many `alert` events carried each alert id, as the page counted them."""
    found: dict[str, int] = page.evaluate("() => ({...window.plateflowConsole.received})")
    return found
