"""The public transparency page (427.2.1(g)): the one unauthenticated data route.

``GET /transparency`` (HTML), ``GET /v1/transparency`` (the same figures as JSON) and
``GET /transparency/policy/{version}`` (a posted version of the policy, as published) need no
login and are not audited per request: they show the posted policy, the designees and counts
computed by :func:`service.transparency` under a minimum cell size, never a read, a plate, a
person who searched or a case (427.6). The figures come from the app's
:class:`service.TransparencyCache`, recomputed at most once per
``PLATEFLOW_TRANSPARENCY_REFRESH_S``, so anonymous callers cannot drive the load. With
``PLATEFLOW_TRANSPARENCY_PAGE=false`` every one of them answers 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

import service
from api._errors import Refusal

__all__ = ["PUBLIC_PREFIXES", "router"]

router = APIRouter(tags=["transparency"])

#: Paths anyone may call: a malformed request to them is answered, never audited (an
#: anonymous caller must not be able to write the audit log at will).
PUBLIC_PREFIXES = ("/transparency", "/v1/transparency")

#: The page loads nothing from anywhere: its style is inline and it has no script.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=60",
}
_JSON_HEADERS = {"Cache-Control": "public, max-age=60", "X-Content-Type-Options": "nosniff"}
_PUBLIC = (
    " Public: no login, no justification and no audit record per request. This is the one "
    "unauthenticated data route of the API; it shows aggregates only (counts under the "
    'minimum cell size read `{"fewer_than": N}`), never a plate, a read, a person who '
    "searched, a case number or a confidential list (427.6). 404 when the page is turned off "
    "(`PLATEFLOW_TRANSPARENCY_PAGE=false`)."
)
_OFF: dict[int | str, dict[str, Any]] = {
    404: {"description": "The transparency page is turned off."}
}


def _cache(request: Request) -> service.TransparencyCache:
    if not request.app.state.settings.transparency_page:
        raise Refusal(404, "Not Found")
    cache: service.TransparencyCache = request.app.state.transparency
    return cache


@router.get(
    "/v1/transparency",
    summary="The public transparency figures (JSON)",
    description="The posted ALPR policy and its history, the ALPR administrator and the "
    "custodian of records, the retention period, and counts: reads stored, cameras reporting, "
    "hotlists by category, alerts and dispositions by month, searches by month, justification "
    "and kind, releases, legal holds, purges and the last audits; `notes` says what each "
    "figure counts. Recomputed at most once per `PLATEFLOW_TRANSPARENCY_REFRESH_S`." + _PUBLIC,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **_OFF},
)
async def transparency_json(request: Request) -> Response:
    body, _ = await run_in_threadpool(_cache(request).rendered)
    return Response(body, media_type="application/json", headers=_JSON_HEADERS)


@router.get(
    "/transparency",
    summary="The public transparency page (HTML)",
    description="The figures of `/v1/transparency` as one self-contained page (inline style "
    "and SVG charts, no script, nothing fetched)." + _PUBLIC,
    response_class=HTMLResponse,
    responses=_OFF,
)
async def transparency_page(request: Request) -> HTMLResponse:
    _, html = await run_in_threadpool(_cache(request).rendered)
    return HTMLResponse(html, headers=_PAGE_HEADERS)


@router.get(
    "/transparency/policy/{version}",
    summary="A posted version of the ALPR policy",
    description="The policy document exactly as published (Markdown or PDF)." + _PUBLIC,
    response_class=Response,
    responses={
        200: {"content": {"text/markdown": {}, "application/pdf": {}}},
        404: {"description": "No such version, or the page is turned off."},
    },
)
async def policy_document(request: Request, version: str) -> Response:
    cache = _cache(request)
    if not (version.isascii() and version.isdigit()) or len(version) > 9:
        raise Refusal(404, f"no policy version {version!r}; versions are whole numbers")
    doc = await run_in_threadpool(cache.policy, int(version))
    suffix = "pdf" if doc.media_type == "application/pdf" else "md"
    media = doc.media_type + ("; charset=utf-8" if suffix == "md" else "")
    headers = {
        "Content-Disposition": f'inline; filename="alpr-policy-v{doc.version}.{suffix}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
        "ETag": f'"{doc.sha256}"',
    }
    return Response(doc.content or b"", media_type=media, headers=headers)
