"""The bare ingest endpoint the HTTP benchmark measures plateflow against.

The least a Python ingest can do and still be an ingest: a Starlette route that reads the body,
decodes it with orjson, and appends it with one ``XADD`` through ``redis.asyncio`` (hiredis
parser), answering 202 once Redis acknowledged. No token, no validation, no dead letters, no
metrics: the gap between this and plateflow is the price of those.

    PLATEFLOW_BENCH_REDIS_URL=redis://127.0.0.1:6390/0 \\
        uvicorn benchmarks._bare:create_app --factory --port 8801
"""

from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

#: Where the bare endpoint writes; never the plateflow read streams.
STREAM_PREFIX = "bench:bare:"
PARTITIONS = 4


def create_app() -> Starlette:
    """The bare app; Redis from ``PLATEFLOW_BENCH_REDIS_URL``."""
    url = os.environ.get("PLATEFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = aioredis.Redis.from_url(url)

    async def reads(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        first = payload[0] if isinstance(payload, list) and payload else payload
        camera = first.get("camera_id", "") if isinstance(first, dict) else ""
        key = f"{STREAM_PREFIX}{zlib.crc32(str(camera).encode()) % PARTITIONS}"
        await client.xadd(key, {"data": orjson.dumps(payload)})
        count = len(payload) if isinstance(payload, list) else 1
        return Response(b'{"accepted":%d}' % count, 202, media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    return Starlette(routes=[Route("/v1/reads", reads, methods=["POST"])], lifespan=lifespan)
