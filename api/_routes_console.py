"""The dispatch console page, ``/console``: one HTML page, its script, styles and vendored
Leaflet, all shipped in the package (``api/console/``) so it works on a closed network.

The page holds no ALPR data of its own: it logs in (``POST /v1/auth/login`` with
``"cookie": true``), then reads alerts and dispositions from ``GET /v1/alerts/stream`` like any
other client, so every access goes through the same guarded, audited routes. These routes are
therefore unauthenticated, like ``/healthz``: they serve code, not data. Every response carries
a Content-Security-Policy that lets the page load scripts, styles and connections from this
origin only; images may also come from the map tile server (``PLATEFLOW_CONSOLE_TILE_URL``)
and the camera image hosts (``PLATEFLOW_CONSOLE_IMAGE_SOURCES``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

import plateflow
from plateflow.settings import Settings

__all__ = ["CONSOLE_DIR", "add_console", "content_security_policy"]

#: The page's files (package data).
CONSOLE_DIR = Path(__file__).resolve().parent / "console"

router = APIRouter(include_in_schema=False)


def tile_source(tile_url: str) -> str | None:
    """The CSP source of a tile URL template: its origin, a ``{s}`` subdomain as ``*``."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "x-s-x"))
    return f"{parts.scheme}://{parts.netloc}".replace("x-s-x", "*")


def content_security_policy(settings: Settings) -> str:
    """Only this origin for scripts, styles, connections and sounds; images also from the
    tile server and the configured image sources; no framing, no plugins, no base change."""
    images = ["'self'", "data:", "blob:", *settings.console_image_sources]
    tiles = tile_source(settings.console_tile_url)
    if tiles:
        images.append(tiles)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(dict.fromkeys(images))}",
            "connect-src 'self'",
            "media-src 'self' data: blob:",
            "font-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _headers(request: Request, *, cache: bool) -> dict[str, str]:
    return {
        "Content-Security-Policy": request.app.state.console_csp,
        "X-Content-Type-Options": "nosniff",
        # image and tile hosts never learn the console's address
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "public, max-age=300" if cache else "no-store",
    }


@router.get("/console")
@router.get("/console/")
def console_page(request: Request) -> FileResponse:
    return FileResponse(
        CONSOLE_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers=_headers(request, cache=False),
    )


@router.get("/console/config.json")
def console_config(request: Request) -> JSONResponse:
    """What the page needs to know of the settings (nothing secret, no ALPR data); priorities
    up to ``urgent_priority_max`` are urgent, and their sound is never muted."""
    settings: Settings = request.app.state.settings
    body: dict[str, Any] = {
        "version": plateflow.__version__,
        "tile_url": settings.console_tile_url,
        "urgent_priority_max": settings.urgent_priority_max,
    }
    return JSONResponse(body, headers=_headers(request, cache=False))


class _Assets(StaticFiles):
    """The page's static files with the console's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Any:
        response = await super().get_response(path, scope)
        response.headers.update(_headers(Request(scope), cache=True))
        return response


def add_console(app: FastAPI) -> None:
    """Serve the console on ``app``: the page, its config and ``/console/static/*``."""
    app.state.console_csp = content_security_policy(app.state.settings)
    app.include_router(router)
    app.mount("/console/static", _Assets(directory=CONSOLE_DIR), name="console-static")
