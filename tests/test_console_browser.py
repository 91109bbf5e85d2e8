"""The dispatch console in a real browser: Debian's Chromium driven by Playwright against the
real API (uvicorn), real Redis and the real records database, alerts published through the
real alert bus (and once through the real flow). Screenshots go to the test's directory;
``PLATEFLOW_TEST_UPDATE_DOCS=1`` also refreshes docs/console.png for the README."""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from playwright.sync_api import Page, Route, expect

from api._routes_console import CONSOLE_DIR
from matchers import Entry, Hotlist, Policy
from sinks import ALERTS_LOG
from tests.console_support import (
    CHROMIUM,
    PASSWORD,
    Console,
    card,
    log_in,
    make_alert,
    open_console,
    received,
    running_console,
)
from tests.stream_support import SseClient
from tests.test_api_support import TOKEN
from tests.test_bench_target import _Api
from tests.test_flow import holder_for, run_drained

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")

TRIBAL = "Tribal lands: contact tribal law enforcement before entering"
OVERDUE = re.compile(r"\boverdue\b")
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    shots = tmp_path_factory.mktemp("screenshots")
    with running_console(tmp, redis_url, shots) as running:
        yield running


@pytest.fixture()
def fresh(console: Console, redis_client: redis.Redis) -> Console:
    """The console on an emptied Redis (no alerts left from another test)."""
    return console


def _wait_live(page: Page) -> None:
    """Until the first connection's replay is over (live alerts make sound from then on)."""
    page.wait_for_function("() => !window.plateflowConsole.quiet")


def test_login_shows_hits_with_why_they_matched(fresh: Console) -> None:
    page = fresh.context().new_page()
    page.goto(fresh.url + "/console")
    page.fill("#login input[name=username]", "dora")
    page.fill("#login input[name=password]", "not-her-password")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("wrong password")
    expect(page.locator("#app")).to_be_hidden()
    page.context.close()

    page = open_console(fresh, "dora", form=True)
    image = fresh.url + "/console/static/vendor/leaflet/images/marker-icon.png"
    ocr = make_alert("7A8C123", "7ABC123", priority=0, ocr_equivalents=1,
                     advisories=(TRIBAL,), image_ref=image)  # fmt: skip
    fuzzy = make_alert("7ABC12", "7ABC123", priority=5, differences=1, state="prefer",
                       entry_state="NV", camera="cam-hwy-50", lat=38.57, lon=-121.45)  # fmt: skip
    partial = make_alert("6XYZ999", "6XY*", priority=1, hotlist="major-incident")
    exact = make_alert("4GHJ567", priority=2)
    first = fresh.publish(exact, cooldown_s=300)[0]
    fresh.publish(ocr, fuzzy, partial)
    again = make_alert("4GHJ567", priority=2, camera="cam-oak-02", lat=38.59, lon=-121.5)
    (sighting,) = fresh.publish(again, cooldown_s=300)
    assert sighting["sighting_of"] == first["alert_id"]

    expect(page.locator(".card")).to_have_count(4)  # the sighting sits under its first alert
    order = page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.priority)")
    assert order == ["0", "1", "2", "5"]
    c = card(page, ocr)
    expect(c.locator(".plate.read")).to_have_text("7A8C123")
    expect(c.locator(".plate.entry")).to_have_text("7ABC123")
    expect(c.locator(".why")).to_have_text("OCR look-alike: 8 read for B at position 3")
    for text in ("stolen (stolen_vehicle)", "Stolen 2026-11-30", "SO-26-0042", "93%",
                 "cam-elm-01", "38.58160, -121.49440", "Verify this hit through CLETS/NCIC",
                 TRIBAL):  # fmt: skip
        expect(c).to_contain_text(text)
    expect(c.locator("img.shot")).to_have_attribute("src", image)
    assert c.locator("img.shot").evaluate("img => img.complete && img.naturalWidth > 0")
    f = card(page, fuzzy)
    expect(f.locator(".why")).to_contain_text("Fuzzy: 1 difference (delete 3 at 6)")
    expect(f.locator(".mismatch")).to_have_text("State mismatch: read CA, entry NV")
    expect(card(page, partial).locator(".why")).to_have_text(
        "Partial plate: pattern 6XY* matched 6XYZ999"
    )
    e = card(page, first)
    expect(e.locator(".why")).to_have_text("Exact match")
    expect(e.locator(".sightings summary")).to_have_text("1 sighting since")
    expect(e.locator(".sightings li")).to_contain_text("cam-oak-02")
    # the map draws every hit and each camera, on a plain background (no tile URL set)
    assert page.locator("path.hit-marker").count() == 5
    assert page.locator("path.camera-marker").count() == 3
    assert page.locator(".leaflet-tile").count() == 0
    page.keyboard.press("j")
    expect(card(page, ocr)).to_have_class(re.compile(r"\bselected\b"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(card(page, partial)).to_have_class(re.compile(r"\bselected\b"))
    assert page.errors == []  # type: ignore[attr-defined]
    fresh.shot(page, "hits")
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    assert page.evaluate("() => fetch('/v1/auth/me').then(r => r.status)") == 401


def test_a_tile_server_gives_the_map_a_base_layer(fresh: Console) -> None:
    tiles = "http://tiles.test/{z}/{x}/{y}.png"
    api = _Api(fresh.settings.replace(console_tile_url=tiles), fresh.redis_url)
    try:
        page = fresh.context().new_page()
        asked: list[str] = []
        png = (CONSOLE_DIR / "vendor/leaflet/images/layers.png").read_bytes()

        def tile(route: Route) -> None:
            asked.append(route.request.url)
            route.fulfill(status=200, content_type="image/png", body=png)

        page.route("http://tiles.test/**", tile)
        log_in(page, f"http://127.0.0.1:{api.port}", "dora")
        (alert,) = fresh.publish(make_alert("4TIL001"))
        expect(card(page, alert)).to_have_count(1)
        expect(page.locator("img.leaflet-tile-loaded").first).to_be_visible()
        assert asked and all(url.startswith("http://tiles.test/") for url in asked)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        api.stop()


def test_an_alert_from_the_real_flow_appears(fresh: Console) -> None:
    page = open_console(fresh, "dora")
    wanted = Hotlist(
        "wanted", "stolen_vehicle", Policy(ocr_equivalents=1, priority=1),
        (Entry("wanted:8MZT361", "8MZT361", None, "Stolen plate", "SO-2"),),
    )  # fmt: skip
    reads = [
        {"camera_id": "cam-elm-01", "plate": "BMZT361", "ts": "2026-12-03T09:00:00Z",
         "confidence": 0.88, "lat": 38.58, "lon": -121.49},
        {"camera_id": "cam-elm-01", "plate": "1AAA000", "ts": "2026-12-03T09:00:01Z",
         "confidence": 0.9},
    ]  # fmt: skip
    request = urllib.request.Request(
        fresh.url + "/v1/reads",
        data=orjson.dumps(reads),
        headers={"X-Plateflow-Token": TOKEN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202
    run_drained(fresh.settings, fresh.redis_url, holder_for(wanted))
    hit = page.locator(".card", has_text="BMZT361")
    expect(hit).to_have_count(1)
    expect(hit.locator(".plate.entry")).to_have_text("8MZT361")
    expect(hit.locator(".why")).to_have_text("OCR look-alike: B read for 8 at position 1")
    expect(hit.locator(".prio")).to_have_text("P1")


@pytest.mark.parametrize("username", ["dora", "cora"])
def test_a_dropped_connection_resumes_with_each_alert_exactly_once(
    fresh: Console, username: str
) -> None:
    """dora resumes on the general log's id; cora (covert right) on both logs' ids at once."""
    page = open_console(fresh, username)
    sees_covert = username == "cora"

    def batch(prefix: str, n: int) -> list[dict[str, Any]]:
        made = [
            make_alert(f"{prefix}{i:02d}", priority=i % 3, covert=i % 2 == 1,
                       hotlist="covert-ops" if i % 2 else "stolen")
            for i in range(n)
        ]  # fmt: skip
        return fresh.publish(*made)

    def shown(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a for a in alerts if sees_covert or not a["hotlist"]["covert"]]

    before = batch("5KLM0", 3)
    for alert in shown(before):
        expect(card(page, alert)).to_have_count(1)
    fresh.proxy.cut()
    try:
        expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        missed = batch("5KLM1", 6)
    finally:
        fresh.proxy.restore()
    for alert in shown(missed):
        expect(card(page, alert)).to_have_count(1, timeout=15_000)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    late = batch("5KLM2", 2)
    for alert in shown(late):
        expect(card(page, alert)).to_have_count(1)
    counts = received(page)
    # the reconnect sent Last-Event-ID: nothing seen before the cut came again, nothing missed
    everything = shown(before + missed + late)
    assert counts == {a["alert_id"]: 1 for a in everything}
    expect(page.locator(".card")).to_have_count(len(everything))
    assert page.evaluate("() => window.plateflowConsole.connects") == 1  # the browser's own retry


def _choose(page: Page, option_index: int = 0, text: str = "") -> None:
    dialog = page.locator("#ask")
    expect(dialog).to_be_visible()
    if dialog.locator("#ask-choice-label").is_visible():
        value = dialog.locator("#ask-choice option").nth(option_index).get_attribute("value")
        dialog.locator("#ask-choice").select_option(value)
    if text:
        dialog.locator("#ask-text").fill(text)
    dialog.locator("#ask-ok").click()
    expect(dialog).to_be_hidden()


def test_a_second_console_sees_a_claim_and_a_disposition_live(fresh: Console) -> None:
    dora = open_console(fresh, "dora")
    dan = open_console(fresh, "dan")
    (alert,) = fresh.publish(make_alert("2DEF456", priority=1))
    mine, theirs = card(dora, alert), card(dan, alert)
    expect(theirs).to_have_count(1)
    mine.click()
    dora.keyboard.press("c")
    expect(theirs).to_have_attribute("data-state", "claimed")
    expect(theirs.locator(".disp")).to_contain_text("dora")
    # dan cannot act on dora's claim: the server says who holds it
    theirs.click()
    dan.keyboard.press("d")
    expect(theirs.locator(".card-error")).to_contain_text("dora")
    dora.keyboard.press("v")
    expect(theirs).to_have_attribute("data-state", "verifying")
    expect(theirs.locator(".countdown")).to_be_visible()
    dora.keyboard.press("y")
    _choose(dora, 0, "stopped at Elm and 5th")
    expect(theirs).to_have_attribute("data-state", "confirmed")
    expect(theirs.locator(".disp")).to_contain_text("action:")
    dora.keyboard.press("u")
    _choose(dora, text="confirmed the wrong hit")
    expect(theirs).to_have_attribute("data-state", "verifying")
    dora.keyboard.press("r")
    _choose(dora, 0)
    expect(theirs).to_have_attribute("data-state", "rejected")
    expect(mine).to_have_attribute("data-state", "rejected")
    fresh.shot(dan, "second-console")


def test_no_covert_alert_reaches_a_user_without_the_right(fresh: Console) -> None:
    cora = open_console(fresh, "cora")
    dora = open_console(fresh, "dora")
    (secret,) = fresh.publish(make_alert("9SPY001", hotlist="covert-ops", covert=True))
    (plain,) = fresh.publish(make_alert("9PUB001"))
    expect(card(cora, secret)).to_have_count(1)
    expect(card(cora, plain)).to_have_count(1)
    expect(card(cora, secret).locator(".covert")).to_have_text("COVERT")
    expect(card(dora, plain)).to_have_count(1)
    assert secret["alert_id"] not in received(dora)
    expect(dora.locator(".covert")).to_have_count(0)

    # and at the HTTP level: the covert stream is refused, the general one never carries it
    assert _replayed(fresh, "dora", {"covert": "true"}) is None
    seen = _replayed(fresh, "dora", {})
    assert seen is not None and plain["alert_id"] in seen and secret["alert_id"] not in seen
    assert secret["alert_id"] in (_replayed(fresh, "cora", {"covert": "true"}) or [])


def _replayed(console: Console, username: str, params: dict[str, str]) -> list[str] | None:
    """The alert ids a bearer-token SSE client gets in the replay (up to the dispositions
    snapshot), or None when the stream is refused with 403."""
    with httpx.Client(base_url=console.api_url, timeout=10) as http:
        body = {"username": username, "password": PASSWORD}
        token = http.post("/v1/auth/login", json=body).json()["token"]
    url = console.api_url + "/v1/alerts/stream"
    client = SseClient(url, headers={"Authorization": f"Bearer {token}"}, params=params)
    try:
        if client.status == 403:
            return None
        assert client.status == 200
        return [e.json()["alert_id"] for e in client.until("dispositions") if e.event == "alert"]
    finally:
        client.close()


def test_the_verification_deadline_turns_overdue(fresh: Console) -> None:
    page = open_console(fresh, "dora")
    (alert,) = fresh.publish(make_alert("1URG001", priority=0))
    c = card(page, alert)
    c.click()
    page.keyboard.press("c")
    expect(c).to_have_attribute("data-state", "claimed")
    page.keyboard.press("v")
    expect(c.locator(".countdown")).to_contain_text("left to verify")
    expect(c).not_to_have_class(OVERDUE)
    expect(c).to_have_class(OVERDUE, timeout=10_000)
    expect(c.locator(".countdown")).to_contain_text("OVERDUE by")
    expect(page.locator("#summary")).to_have_text("1 open · 1 overdue")
    fresh.shot(page, "overdue")


def test_mute_never_silences_priority_zero_or_one(fresh: Console) -> None:
    page = open_console(fresh, "dora")
    _wait_live(page)
    page.keyboard.press("m")
    expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
    alerts = fresh.publish(*(make_alert(f"3MUT00{p}", priority=p) for p in (0, 1, 2, 5)))
    for alert in alerts:
        expect(card(page, alert)).to_have_count(1)
    page.click("#mute")
    (after,) = fresh.publish(make_alert("3MUT009", priority=7))
    expect(card(page, after)).to_have_count(1)
    sounds = page.evaluate("() => window.plateflowConsole.sounds")
    played = {s["priority"]: s["played"] for s in sounds}
    assert played == {0: True, 1: True, 2: False, 5: False, 7: True}


def test_a_gap_after_trimming_reloads_the_list(fresh: Console) -> None:
    page = open_console(fresh, "dora")
    old = fresh.publish(*(make_alert(f"8OLD00{i}") for i in range(3)))
    for alert in old:
        expect(card(page, alert)).to_have_count(1)
    fresh.proxy.cut()
    try:
        expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        new = fresh.publish(*(make_alert(f"8NEW00{i}") for i in range(3)))
        ids = [entry_id for entry_id, _ in fresh.redis.xrange(ALERTS_LOG)]
        fresh.redis.xtrim(ALERTS_LOG, minid=ids[4])  # the first missed alert is gone too
    finally:
        fresh.proxy.restore()
    expect(page.locator("#notice")).to_contain_text("trimmed", timeout=15_000)
    for alert in new[1:]:
        expect(card(page, alert)).to_have_count(1)
    for alert in [*old, new[0]]:
        expect(card(page, alert)).to_have_count(0)
    assert page.evaluate("() => window.plateflowConsole.gaps") == 1
    fresh.shot(page, "gap")


def test_screenshot_for_the_readme(fresh: Console) -> None:
    page = open_console(fresh, "cora")
    alerts = [
        make_alert("7ABC123", priority=2, camera="cam-i80-03", lat=38.602, lon=-121.47),
        make_alert("6XYZ999", "6XY*", priority=1, hotlist="major-incident",
                   camera="cam-j-st-01", lat=38.578, lon=-121.488),
        make_alert("7A8C123", "7ABC123", priority=0, ocr_equivalents=1, hotlist="ncic-stolen",
                   advisories=(TRIBAL,), camera="cam-hwy-50", lat=38.566, lon=-121.455),
        make_alert("9SPY001", hotlist="covert-ops", covert=True, priority=3,
                   camera="cam-oak-02", lat=38.59, lon=-121.51),
    ]  # fmt: skip
    fresh.publish(*alerts)
    expect(page.locator(".card")).to_have_count(4)
    card(page, alerts[2]).click()
    page.keyboard.press("c")
    expect(card(page, alerts[2])).to_have_attribute("data-state", "claimed")
    page.keyboard.press("v")
    expect(card(page, alerts[2])).to_have_attribute("data-state", "verifying")
    card(page, alerts[1]).click()
    page.keyboard.press("c")
    expect(card(page, alerts[1])).to_have_attribute("data-state", "claimed")
    card(page, alerts[2]).click()
    shot = fresh.shot(page, "console")
    if os.environ.get("PLATEFLOW_TEST_UPDATE_DOCS"):
        shutil.copy(shot, DOCS / "console.png")
