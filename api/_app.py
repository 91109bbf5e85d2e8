"""The app factory: one FastAPI application per call, its clients in ``app.state``.

No module-level state besides the Prometheus metrics: tests build as many apps as they like,
each with its own settings and Redis client, and ``plateflow serve`` builds exactly one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import plateflow
from api._errors import ApiError
from api._metrics import MetricsMiddleware
from api._routes_ingest import router as ingest_router
from api._routes_ops import router as ops_router
from plateflow.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["create_app"]

_DESCRIPTION = """\
The HTTP face of plateflow, an ALPR back end run under a written ALPR policy.

* **Camera ingest** (`/v1/reads`, `/v1/ingest/openalpr`, `/v1/ingest/platerecognizer`):
  authenticated by an ingest token (`X-Plateflow-Token`), never by a member's login.
* **Operations** (`/healthz`, `/metrics`): no ALPR data.

Every refusal is a JSON object `{"detail": "..."}` whose sentence names the fix.
"""


def create_app(settings: Settings, redis_url: str) -> FastAPI:
    """Build the API for ``settings`` talking to the Redis at ``redis_url``.

    The Redis client (hiredis parser when installed) lives in ``app.state.redis`` and is closed
    when the app shuts down; ``app.state.settings`` holds the settings. Raises
    :class:`ApiError` if the URL cannot be parsed.
    """
    try:
        client = redis.Redis.from_url(redis_url, health_check_interval=30)
    except ValueError as exc:
        msg = f"cannot use the Redis URL for the API ({exc}); check PLATEFLOW_REDIS_URL"
        raise ApiError(msg) from exc

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            app.state.redis.close()

    app = FastAPI(
        title="plateflow",
        version=plateflow.__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.redis = client
    app.state.health_probes = {}
    app.add_middleware(MetricsMiddleware)

    @app.exception_handler(redis.RedisError)
    async def redis_unavailable(request: Request, exc: redis.RedisError) -> JSONResponse:
        log.error("Redis failed on %s %s: %s", request.method, request.url.path, exc)
        detail = "the read store (Redis) is unavailable; nothing was changed: retry later"
        return JSONResponse({"detail": detail}, status_code=503)

    app.include_router(ingest_router)
    app.include_router(ops_router)
    log.info("API built: %d partitions, %d ingest token(s)",
             settings.partitions, len(settings.ingest_tokens))
    return app
