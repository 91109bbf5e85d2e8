"""The app factory: one FastAPI application per call, its clients in ``app.state``.

No module-level state besides the Prometheus metrics: tests build as many apps as they like,
each with its own settings, Redis client and database engine, and ``plateflow serve`` builds
exactly one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

import plateflow
import service
from api._access import ANONYMOUS, SESSION_COOKIE, client_of
from api._auth_ingest import TokenSource
from api._errors import ApiError, Refusal, refusal_response, service_error_response
from api._ingest_docs import add_ingest_docs
from api._ingest_writer import StreamWriter
from api._metrics import MetricsMiddleware
from api._routes_cases import router as cases_router
from api._routes_console import add_console
from api._routes_dispositions import router as dispositions_router
from api._routes_hotlists import router as hotlists_router
from api._routes_ingest import IngestLane
from api._routes_ops import router as ops_router
from api._routes_people import router as people_router
from api._routes_records import router as records_router
from api._routes_store import router as store_router
from api._routes_stream import router as stream_router
from api._routes_transparency import PUBLIC_PREFIXES
from api._routes_transparency import router as transparency_router
from plateflow.errors import PlateflowError
from plateflow.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["create_app"]

_DESCRIPTION = """\
The HTTP face of plateflow, an ALPR back end run under a written ALPR policy.

* **Camera ingest** (`/v1/reads`, `/v1/ingest/openalpr`, `/v1/ingest/platerecognizer`):
  authenticated by an ingest token (`X-Plateflow-Token`), never by a member's login.
* **Session** (`/v1/auth/*`): log in with username and password; send the token as
  `Authorization: Bearer <token>`. A browser logs in with `"cookie": true` instead and sends
  `X-CSRF-Token` (the `csrf_token` of the login) with every POST, PUT and DELETE.
* **Alert stream** (`/v1/alerts/stream`): Server-Sent Events with exact resume by
  `Last-Event-ID`.
* **Everything else** returns or changes ALPR data or records and needs a logged-in, permitted
  user with current training **and a justification**: `case_number`, `event_number` or a
  `description` (query string, or the top level of a JSON body). Refusals are 401 (no login),
  403 (role or training; the message says which) and 422 (missing justification; `field` names
  it). Every attempt, allowed or refused, is written to the hash-chained audit log first.
* **Stored reads** (`/v1/search/*`, `/v1/holds`, `/v1/evidence/*`): plate history, partial
  plates, canvass and past-read matching, a page at a time (`next_cursor`); legal holds and
  evidence exports with a verifiable manifest and chain of custody (427.3(d), 427.4).
* **Dispositions** (`/v1/alerts/{alert_id}/disposition`, `/v1/alerts/dispositions`,
  `/v1/dispositions/lists`): claim, verify, confirm, reject, dismiss and undo a hit (427.3(g)),
  each step audited and broadcast; no justification asked (the alert is the reason).
* **Operations** (`/healthz`, `/metrics`): no ALPR data.
* **The public transparency page** (`/transparency`, `/v1/transparency`,
  `/transparency/policy/{version}`): the **one unauthenticated data route**. It needs no login
  and shows the posted ALPR policy, its designees and aggregate counts only (a count under the
  minimum cell size reads "fewer than N"), never a plate, a read, a person or a case
  (427.2.1(g), 427.6); cached and recomputed on a schedule, 404 when turned off.

Every refusal is a JSON object `{"detail": "...", "field": "..."}` whose sentence names the fix.
"""

_UNAUDITED_PREFIXES = ("/v1/reads", "/v1/ingest/", *PUBLIC_PREFIXES)


def _audit_invalid(request: Request, detail: str) -> None:
    """Record a request refused for its shape (422) by whoever sent it."""
    door: service.Door = request.app.state.door
    username = ANONYMOUS
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        token = request.cookies.get(SESSION_COOKIE, "")
    if token.strip():
        try:
            username = door.session_user(token.strip()).username
        except service.Unauthenticated:
            username = ANONYMOUS
    route = request.scope.get("route")
    action = f"{request.method} {getattr(route, 'path', request.url.path)}"
    kind = "login" if request.url.path.startswith("/v1/auth/") else "inquiry"
    door.record_attempt(
        username,
        action[:64],
        kind,
        "failed",
        f"invalid request: {detail}",
        {"path": request.url.path},
        client_of(request),
    )


class _PlateflowApp(FastAPI):
    """FastAPI behind the camera ingest's own lane (:class:`~api._routes_ingest.IngestLane`),
    which serves the ingest paths before any of FastAPI's layers and passes the rest on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lane = IngestLane(super().__call__, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._lane(scope, receive, send)


def create_app(
    settings: Settings,
    redis_url: str,
    *,
    engine: Engine | None = None,
    ingest_redis_url: str | None = None,
) -> FastAPI:
    """Build the API for ``settings`` talking to the Redis at ``redis_url``.

    The Redis client (hiredis parser when installed) lives in ``app.state.redis``, the records
    database engine (``settings.effective_database_url``, tables created if missing, unless an
    ``engine`` is given) in ``app.state.engine``; both are closed when the app shuts down. The
    camera ingest writes through its own asynchronous client, ``app.state.ingest_writer``,
    connected with ``ingest_redis_url`` (the ingest's own ACL user, which may write the read
    streams; the API's user may not) or, when that is None, ``redis_url``. Raises
    :class:`ApiError` if a Redis URL cannot be parsed.
    """
    try:
        client = redis.Redis.from_url(redis_url, health_check_interval=30)
        # the alert stream's blocking reads, one pooled connection per open stream
        streams_client = redis.asyncio.Redis.from_url(redis_url)
        redis.Redis.from_url(ingest_redis_url or redis_url).close()  # parse it now, not later
    except ValueError as exc:
        msg = f"cannot use the Redis URL for the API ({exc}); check PLATEFLOW_REDIS_URL"
        raise ApiError(msg) from exc
    writer = StreamWriter(ingest_redis_url or redis_url)
    owns_engine = engine is None
    # the ingest path reads the settings; every person's act goes through the door, which
    # gets only the fields it uses
    door = service.Door.open(
        settings.effective_database_url,
        service.ServiceConfig.pick(settings),
        redis=client,
        redis_async=streams_client,
        engine=engine,
    )
    db = door.engine

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await app.state.ingest_writer.close()
            await streams_client.aclose()
            app.state.redis.close()
            if owns_engine:
                app.state.engine.dispose()

    app = _PlateflowApp(
        title="plateflow",
        version=plateflow.__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.redis = client
    app.state.ingest_writer = writer
    app.state.ingest_tokens = TokenSource(settings.ingest_tokens)
    app.state.engine = db
    app.state.door = door
    app.state.transparency = service.TransparencyCache(door, settings.transparency_refresh_s)

    def database_probe() -> None:
        with db.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    app.state.health_probes = {"database": database_probe}
    app.add_middleware(MetricsMiddleware)  # the ingest lane, in front, times its own
    app.add_exception_handler(Refusal, refusal_response)
    app.add_exception_handler(PlateflowError, service_error_response)

    @app.exception_handler(redis.RedisError)
    async def redis_unavailable(request: Request, exc: redis.RedisError) -> JSONResponse:
        log.error("Redis failed on %s %s: %s", request.method, request.url.path, exc)
        detail = "the read store (Redis) is unavailable; nothing was changed: retry later"
        return JSONResponse({"detail": detail}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: list[dict[str, Any]] = jsonable_encoder(exc.errors())
        parts = []
        for err in errors:
            loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query"))
            parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
        detail = "; ".join(parts) or "invalid request"
        first = errors[0].get("loc", ()) if errors else ()
        field = str(first[-1]) if first else None
        if not request.url.path.startswith(_UNAUDITED_PREFIXES):
            try:
                await run_in_threadpool(_audit_invalid, request, detail)
            except PlateflowError:
                log.exception("could not audit an invalid request to %s", request.url.path)
                return JSONResponse({"detail": "the audit log could not be written"}, 503)
        return JSONResponse({"detail": detail, "field": field, "errors": errors}, 422)

    app.include_router(people_router)
    app.include_router(hotlists_router)
    app.include_router(stream_router)
    app.include_router(records_router)
    app.include_router(store_router)
    app.include_router(cases_router)
    app.include_router(dispositions_router)
    app.include_router(ops_router)
    app.include_router(transparency_router)
    add_console(app)
    fastapi_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_ingest_docs(fastapi_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    log.info(
        "API built: %d partitions, %d ingest token(s)%s, database %s",
        settings.partitions,
        len(settings.ingest_tokens),
        f" from {settings.ingest_tokens.path} (re-read when it changes)"
        if settings.ingest_tokens.path
        else "",
        db.url.get_backend_name(),
    )
    return app
