"""Operational endpoints: health for orchestrators, metrics for Prometheus.

Neither returns ALPR data (427.6): health says which dependency is down by error class only,
metrics are counts. Both are unauthenticated so probes and scrapers need no credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.concurrency import run_in_threadpool

from api._schemas import HealthResponse
from sinks import job_metrics

log = logging.getLogger(__name__)

__all__ = ["router"]

router = APIRouter(tags=["operations"])


def _check(name: str, probe: Callable[[], object]) -> str:
    try:
        probe()
    except Exception as exc:  # a health probe reports every failure, whatever its kind
        log.warning("health check %s failed: %s", name, exc)
        return type(exc).__name__
    return "ok"


@router.get(
    "/healthz",
    response_model=HealthResponse,
    summary="Liveness and readiness",
    description="Pings Redis and the records database; 503 if either fails.",
    responses={503: {"model": HealthResponse, "description": "A dependency is down."}},
)
async def healthz(request: Request) -> JSONResponse:
    client: redis.Redis = request.app.state.redis
    probes: dict[str, Callable[[], object]] = {"redis": client.ping}
    probes.update(getattr(request.app.state, "health_probes", {}))
    checks = {name: await run_in_threadpool(_check, name, fn) for name, fn in probes.items()}
    ok = all(v == "ok" for v in checks.values())
    body = HealthResponse(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="The process's Prometheus registry in the text exposition format.",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    # the periodic jobs' outcomes (sinks.job_metrics) live in the data directory, not in this
    # process: they are read at each scrape
    body = generate_latest(REGISTRY) + job_metrics(request.app.state.settings.data_dir)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
