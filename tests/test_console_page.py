"""The console page as files and headers (no browser): shipped in the package, nothing from
elsewhere, a Content-Security-Policy that allows this origin only, the tile setting."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import create_app
from api._routes_console import CONSOLE_DIR, content_security_policy
from plateflow.errors import SettingsError
from plateflow.settings import Settings
from tests.test_api_support import api_fixture, make_settings  # noqa: F401


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.refs += [v for k, v in found.items() if k in ("src", "href") and v]
        self.inline += [k for k in found if k.startswith("on") or k == "style"]
        if tag == "script" and "src" not in found:
            self.inline.append("script")
        if tag == "style":
            self.inline.append("style")


def test_the_page_and_every_asset_it_names_come_from_this_server(api: TestClient) -> None:
    page = api.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parser = _Refs()
    parser.feed(page.text)
    assert parser.inline == []  # the CSP allows no inline script or style
    assert parser.refs and all(ref.startswith("/console/static/") for ref in parser.refs)
    refs, seen = list(parser.refs), set()
    while refs:
        ref = refs.pop()
        if ref in seen:
            continue
        seen.add(ref)
        asset = api.get(ref)
        assert asset.status_code == 200, ref
        assert asset.headers["content-security-policy"] == page.headers["content-security-policy"]
        assert asset.headers["x-content-type-options"] == "nosniff"
        if ref.endswith(".js") and "/vendor/" not in ref:
            # a module script runs only when served as JavaScript; follow its imports
            assert asset.headers["content-type"].startswith("text/javascript"), ref
            imports = re.findall(r'^(?:import|} from) .*"\./([\w.]+\.js)";$', asset.text, re.M)
            refs += [f"/console/static/{name}" for name in imports]
    assert {"/console/static/live.js", "/console/static/render.js"} <= seen
    # the page's own scripts reach only this origin: no absolute URL anywhere in them
    for path in [*CONSOLE_DIR.glob("*.js"), *CONSOLE_DIR.glob("*.css"), CONSOLE_DIR / "index.html"]:
        assert not re.search(r"https?://", path.read_text()), path.name
    assert api.get("/console/").status_code == 200
    assert api.get("/console/static/%2e%2e/_app.py").status_code == 404


def test_leaflet_is_vendored_unchanged_with_its_licence() -> None:
    vendor = CONSOLE_DIR / "vendor" / "leaflet"
    note = (vendor / "VERSION.txt").read_text()
    assert "Leaflet 1.9.4" in note
    assert "BSD 2-Clause" in (vendor / "LICENSE").read_text()
    lines = [line.split("  ", 1) for line in note.splitlines() if re.match("[0-9a-f]{64} ", line)]
    sums = {name: digest for digest, name in lines}
    assert {"leaflet.js", "leaflet.css", "images/marker-icon.png"} <= set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name


def test_the_policy_allows_this_origin_only(api: TestClient) -> None:
    csp = api.get("/console").headers["content-security-policy"]
    rules = dict(rule.split(" ", 1) for rule in csp.split("; "))
    assert rules["default-src"] == "'none'"
    for kind in ("script-src", "style-src", "connect-src", "font-src"):
        assert rules[kind] == "'self'", kind
    assert rules["img-src"] == "'self' data: blob: https: http:"
    assert rules["media-src"] == "'self' data: blob:"
    assert rules["frame-ancestors"] == "'none'"
    assert api.get("/console").headers["cache-control"] == "no-store"
    config = api.get("/console/config.json").json()
    assert config["tile_url"] == ""
    assert config["urgent_priority_max"] == 1


def test_a_tile_server_and_image_hosts_join_the_image_sources(
    data_dir: Path, redis_url: str
) -> None:
    settings = make_settings(data_dir).replace(
        console_tile_url="https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png",
        console_image_sources=("https://cams.example",),
    )
    csp = content_security_policy(settings)
    images = "img-src 'self' data: blob: https://cams.example https://*.tiles.example.org:8443;"
    assert images in csp
    with TestClient(create_app(settings, redis_url)) as client:
        config = client.get("/console/config.json").json()
    assert config["tile_url"] == "https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("console_tile_url", "ftp://tiles/{z}/{x}/{y}", "http\\(s\\) tile URL template"),
        ("console_tile_url", "https://tiles.example/tile.png", "with \\{z\\}"),
        ("console_tile_url", "https://t.example/{z}/{x}/{y}.png; script-src *", "tile URL"),
        ("console_image_sources", "'unsafe-inline'", "origins like https://"),
        ("console_image_sources", "https://cams.example/path", "origins like https://"),
    ],
)
def test_console_settings_refuse_what_would_widen_the_policy(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=f"setting {name} .*{message}"):
        Settings.load({}, **{name: value})
