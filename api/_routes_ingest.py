"""Camera ingest endpoints: canonical reads, OpenALPR agent and Plate Recognizer Stream webhooks.

Each request: authenticate the ingest token, read the body (at most :data:`MAX_BODY_BYTES`),
decode it, split vendor payloads into per-read items, then :func:`api.ingest_objects` in a
worker thread (the Redis client is synchronous). The answer is 202 with the accepted count and
every rejected item's index and reason; rejected items are also in ``plateflow:deadletter``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
import redis
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api._auth_ingest import require_ingest_token
from api._ingest import MAX_BODY_BYTES, MAX_READS_PER_REQUEST, Converter, ingest_objects
from api._schemas import ErrorBody
from api._vendors import (
    VendorItems,
    json_from_multipart,
    openalpr_items,
    openalpr_read,
    platerecognizer_items,
    platerecognizer_read,
)
from matchers.reads import validate_read

log = logging.getLogger(__name__)

__all__ = ["IngestResponse", "router"]


class RejectedItem(BaseModel):
    index: int = Field(description="Position of the item in the request (0-based).")
    reason: str = Field(description="`field: what is wrong and how to fix it`.")


class IngestResponse(BaseModel):
    accepted: int = Field(description="Reads validated and written to the read streams.")
    rejected: list[RejectedItem] = Field(
        description="Items rejected and sent to the dead-letter stream, with the reason."
    )
    ignored: int = Field(
        0, description="Vendor messages that carry no read (heartbeats, other events)."
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not JSON (or has no `json` field)."},
    401: {"model": ErrorBody, "description": "No ingest token, an unknown one, or none set up."},
    413: {"model": ErrorBody, "description": "Body or read count over the per-request limit."},
    422: {"model": ErrorBody, "description": "JSON that is neither an object nor an array."},
    503: {"model": ErrorBody, "description": "Redis is unavailable; nothing stored, retry."},
}

_READ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Read",
    "description": "A canonical read (ARCHITECTURE.md 'Read'); unknown fields are ignored.",
    "required": ["camera_id", "plate", "ts", "confidence"],
    "properties": {
        "read_id": {"type": "string", "description": "Unique; derived when absent."},
        "camera_id": {"type": "string"},
        "plate": {"type": "string", "description": "2-10 letters/digits once normalised."},
        "ts": {
            "oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}],
            "description": "RFC 3339 with offset, or epoch milliseconds.",
        },
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "state": {"type": "string", "description": "Two-letter state or province."},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "candidates": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"plate": {"type": "string"}, "confidence": {"type": "number"}},
            },
        },
        "agency": {"type": "string"},
        "image_ref": {"type": "string"},
    },
}

_OPENALPR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "OpenALPR agent message",
    "description": "An `alpr_group`, `alpr_results` or `heartbeat` message (or an array).",
    "properties": {
        "data_type": {"type": "string", "enum": ["alpr_group", "alpr_results", "heartbeat"]},
        "agent_uid": {"type": "string"},
        "camera_id": {"type": "integer"},
        "epoch_start": {"type": "integer", "description": "Epoch milliseconds."},
        "best_plate_number": {"type": "string"},
        "best_confidence": {"type": "number", "minimum": 0, "maximum": 100},
        "best_region": {"type": "string", "example": "us-ma"},
        "best_uuid": {"type": "string"},
        "gps_latitude": {"type": "number"},
        "gps_longitude": {"type": "number"},
        "candidates": {"type": "array", "items": {"type": "object"}},
    },
}

_PLATERECOGNIZER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Plate Recognizer Stream webhook",
    "properties": {
        "hook": {"type": "object", "properties": {"event": {"type": "string"}}},
        "data": {
            "type": "object",
            "properties": {
                "camera_id": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
                "results": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}


def _body_doc(schema: dict[str, Any], multipart: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": {"oneOf": [schema, {"type": "array", "items": schema}]}}
    }
    if multipart:
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "required": ["json"],
                "properties": {
                    "json": {"type": "string", "description": "The webhook JSON."},
                    "upload": {"type": "string", "format": "binary"},
                },
            }
        }
    return {"requestBody": {"required": True, "content": content}}


router = APIRouter(tags=["ingest"], dependencies=[Depends(require_ingest_token)])


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"the body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body exceeds the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes, content_type: str) -> Any:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        try:
            body = json_from_multipart(body, content_type)
        except ValueError as exc:
            msg = f"multipart body without the webhook JSON: {exc}; send it in a field 'json'"
            raise HTTPException(400, msg) from exc
    if not body.strip():
        raise HTTPException(400, "the body is empty: send a JSON object or a JSON array")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"the body is not valid JSON ({exc}); send application/json"
        raise HTTPException(400, msg) from exc


def _as_items(payload: Any) -> VendorItems:
    if isinstance(payload, dict):
        return VendorItems([payload])
    return VendorItems(list(payload))


async def _ingest(
    request: Request,
    source: str,
    split: Callable[[Any], VendorItems],
    convert: Converter,
) -> IngestResponse:
    payload = _decode(await _read_body(request), request.headers.get("content-type", ""))
    if not isinstance(payload, (dict, list)):
        kind = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
            type(payload), "null"
        )
        raise HTTPException(422, f"the body must be a JSON object or array, got {kind}")
    split_items = split(payload)
    if len(split_items.items) > MAX_READS_PER_REQUEST:
        msg = (
            f"{len(split_items.items)} reads in one request; the limit is "
            f"{MAX_READS_PER_REQUEST:,}: split the batch"
        )
        raise HTTPException(413, msg)
    client: redis.Redis = request.app.state.ingest_redis
    partitions: int = request.app.state.settings.partitions
    try:
        result = await run_in_threadpool(
            ingest_objects,
            client,
            split_items.items,
            partitions,
            source,
            convert=convert,
            ignored=split_items.ignored,
        )
    except redis.RedisError as exc:
        log.error("ingest %s: Redis failed: %s", source, exc)
        raise HTTPException(
            503, "the read store (Redis) is unavailable; nothing was stored: retry later"
        ) from exc
    return IngestResponse(
        accepted=result.accepted,
        rejected=[RejectedItem(index=r.index, reason=r.reason) for r in result.rejected],
        ignored=result.ignored,
    )


@router.post(
    "/v1/reads",
    status_code=202,
    response_model=IngestResponse,
    responses=_ERRORS,
    summary="Ingest canonical reads",
    description=(
        "One canonical read or a JSON array of up to 10,000. Valid reads go to the "
        "partitioned read streams; each invalid one is answered with its index and reason "
        "and kept in the dead-letter stream."
    ),
    openapi_extra=_body_doc(_READ_SCHEMA),
)
async def post_reads(request: Request) -> IngestResponse:
    return await _ingest(request, "api:reads", _as_items, validate_read)


@router.post(
    "/v1/ingest/openalpr",
    status_code=202,
    response_model=IngestResponse,
    responses=_ERRORS,
    summary="OpenALPR agent webhook",
    description=(
        "The OpenALPR agent's HTTP POST (`upload_address`): `alpr_group` messages are one "
        "read each, `alpr_results` one per result, heartbeats are ignored. Confidences are "
        "percentages, `epoch_start` epoch milliseconds, `best_region` like `us-ma`."
    ),
    openapi_extra=_body_doc(_OPENALPR_SCHEMA),
)
async def post_openalpr(request: Request) -> IngestResponse:
    return await _ingest(request, "api:openalpr", openalpr_items, openalpr_read)


@router.post(
    "/v1/ingest/platerecognizer",
    status_code=202,
    response_model=IngestResponse,
    responses=_ERRORS,
    summary="Plate Recognizer Stream webhook",
    description=(
        "A Plate Recognizer Stream webhook, as JSON or as multipart/form-data with the JSON "
        "in the `json` field (the `upload` image is not stored). One read per entry of "
        "`data.results`; events other than `recognition` are ignored."
    ),
    openapi_extra=_body_doc(_PLATERECOGNIZER_SCHEMA, multipart=True),
)
async def post_platerecognizer(request: Request) -> IngestResponse:
    return await _ingest(
        request, "api:platerecognizer", platerecognizer_items, platerecognizer_read
    )
