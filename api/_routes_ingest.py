"""Camera ingest endpoints: canonical reads, OpenALPR agent and Plate Recognizer Stream webhooks.

Each request: authenticate the ingest token, read the body (at most :data:`MAX_BODY_BYTES`),
decode it with orjson, split vendor payloads into per-read items, validate them
(:func:`api.prepare_batch`), then write the reads and dead letters through the app's
group-commit :class:`~api._ingest_writer.StreamWriter`. The answer is 202 with the accepted
count and every rejected item's index and reason, sent only once Redis acknowledged the write;
rejected items are also in ``plateflow:deadletter``. A read of a camera the token may not post
for refuses the whole request with 403 naming the cameras (those reads dead-lettered, nothing
else written): see :mod:`api._auth_ingest`. Every stored read records the token's id
(``token_id``).

This is the hot path of the whole system (every read of every camera passes here), so the
endpoints are raw ASGI apps that :class:`IngestLane` dispatches in front of FastAPI rather than
FastAPI operations: FastAPI's routing, dependency resolution and response validation cost about
ten times what a whole one-read ingest does (measured: ~290 us against ~1 us of dispatch here).
The validation is the matchers' own (:func:`matchers.reads.validate_read`), so nothing is lost
by skipping pydantic; the OpenAPI description is added by :mod:`api._ingest_docs`.

A client that disconnects before its body arrived gets nothing and is logged at DEBUG: a camera
losing its link is routine, not a server error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
import redis
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api._auth_ingest import (
    INGEST_TOKEN_HEADER,
    TokenRefusal,
    authenticate_ingest,
    camera_refusal,
    foreign_cameras,
)
from api._ingest import (
    MAX_BODY_BYTES,
    MAX_READS_PER_REQUEST,
    Converter,
    PreparedBatch,
    ingest_async,
    prepare_batch,
    refuse_async,
)
from api._ingest_writer import StreamWriter
from api._metrics import MetricsMiddleware
from api._vendors import (
    VendorItems,
    json_from_multipart,
    openalpr_items,
    openalpr_read,
    platerecognizer_items,
    platerecognizer_read,
)
from matchers.reads import validate_read
from sinks import ordinary_reads

log = logging.getLogger(__name__)

__all__ = ["INGEST_PATHS", "IngestEndpoint", "IngestLane"]

#: Batches with more items are validated in a worker thread, so one camera's 10,000-read upload
#: does not hold the event loop (and every other camera's request) for tens of milliseconds.
INLINE_ITEMS = 500

_JSON_HEADERS = [(b"content-type", b"application/json")]


class _Answer(Exception):
    """An early answer (4xx/5xx) with a JSON ``{"detail": ...}`` body."""

    def __init__(self, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []


class _Disconnected(Exception):
    """The client went away before its body arrived."""


async def _send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, declared: bytes | None) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _Answer(413, f"the body is {declared.decode()} bytes; the limit is {MAX_BODY_BYTES}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False) and not chunks:
            if len(chunk) > MAX_BODY_BYTES:
                raise _Answer(413, f"the body exceeds the limit of {MAX_BODY_BYTES} bytes")
            return chunk  # the common case: the whole body in one message
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Answer(413, f"the body exceeds the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _decode(body: bytes, content_type: str) -> Any:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        try:
            body = json_from_multipart(body, content_type)
        except ValueError as exc:
            msg = f"multipart body without the webhook JSON: {exc}; send it in a field 'json'"
            raise _Answer(400, msg) from exc
    if not body.strip():
        raise _Answer(400, "the body is empty: send a JSON object or a JSON array")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"the body is not valid JSON ({exc}); send application/json"
        raise _Answer(400, msg) from exc
    if not isinstance(payload, (dict, list)):
        kind = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
            type(payload), "null"
        )
        raise _Answer(422, f"the body must be a JSON object or array, got {kind}")
    return payload


def _as_items(payload: Any) -> VendorItems:
    if isinstance(payload, dict):
        return VendorItems([payload])
    return VendorItems(list(payload))


class IngestEndpoint:
    """One ingest door as a raw ASGI app: ``path`` (also the route template the request metrics
    show), ``source`` labels it, ``split`` cuts a body into per-read items and ``convert`` turns
    one item into a canonical read.

    Reads ``settings`` and ``ingest_writer`` from the app's state (``scope["app"]``), so one
    endpoint object serves any number of apps.
    """

    def __init__(
        self, path: str, source: str, split: Callable[[Any], VendorItems], convert: Converter
    ) -> None:
        self.path = path
        self.source = source
        self.split = split
        self.convert = convert
        # Canonical reads only: a body of ordinary reads is decoded and checked in one step.
        self.fast = ordinary_reads if convert is validate_read else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body = await self._handle(scope, receive)
        except _Answer as answer:
            body = orjson.dumps({"detail": answer.detail})
            await _send_json(send, answer.status, body, answer.headers)
            return
        except _Disconnected:
            log.debug("ingest %s: the client disconnected before its body arrived", self.source)
            return
        await _send_json(send, status, body, [])

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        state = scope["app"].state
        token = authorization = content_type = declared = None
        for name, value in scope["headers"]:
            if name == b"x-plateflow-token":
                token = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        found = authenticate_ingest(
            token, authorization, state.ingest_tokens.current(), client=peer, path=scope["path"]
        )
        if isinstance(found, TokenRefusal):
            raise _Answer(401, found.detail, [(b"www-authenticate", INGEST_TOKEN_HEADER.encode())])
        body = await _read_body(receive, declared)
        batch, ignored = await self._prepare(body, content_type or "", found.token_id)
        writer: StreamWriter = state.ingest_writer
        foreign = foreign_cameras(found, batch.good)
        if foreign:
            detail = camera_refusal(found, foreign, peer, scope["path"])
            await refuse_async(writer, batch, set(foreign), found.token_id, self.source)
            raise _Answer(403, detail)
        try:
            result = await ingest_async(
                writer, batch, state.settings.partitions, self.source, ignored=ignored
            )
        except (redis.RedisError, OSError) as exc:
            log.error("ingest %s: Redis failed: %s", self.source, exc)
            raise _Answer(
                503, "the read store (Redis) is unavailable; nothing was stored: retry later"
            ) from exc
        return 202, orjson.dumps(result.as_dict())

    async def _prepare(
        self, body: bytes, content_type: str, token_id: str
    ) -> tuple[PreparedBatch, int]:
        """The validated batch of a body, each read stamped with the ``token_id`` that posted
        it (whatever the body said), and how many vendor messages carried no read."""
        good = self.fast(body, token_id) if self.fast is not None else None
        if good is not None:
            _check_count(len(good))
            return PreparedBatch(good, [], [], len(good)), 0
        split = self.split(_decode(body, content_type))
        _check_count(len(split.items))
        if len(split.items) > INLINE_ITEMS:
            batch = await run_in_threadpool(prepare_batch, split.items, self.convert, 0, token_id)
        else:
            batch = prepare_batch(split.items, self.convert, 0, token_id)
        return batch, split.ignored


def _check_count(count: int) -> None:
    if count > MAX_READS_PER_REQUEST:
        msg = (
            f"{count} reads in one request; the limit is {MAX_READS_PER_REQUEST:,}: split the batch"
        )
        raise _Answer(413, msg)


#: path -> (metric and dead-letter source, splitter, converter) of each ingest door.
INGEST_PATHS: dict[str, tuple[str, Callable[[Any], VendorItems], Converter]] = {
    "/v1/reads": ("api:reads", _as_items, validate_read),
    "/v1/ingest/openalpr": ("api:openalpr", openalpr_items, openalpr_read),
    "/v1/ingest/platerecognizer": (
        "api:platerecognizer",
        platerecognizer_items,
        platerecognizer_read,
    ),
}


class IngestLane:
    """ASGI app in front of the whole FastAPI app: serves the ingest paths itself and passes
    everything else on (lifespan included) to ``app``.

    In front of FastAPI's middleware stack (server errors, telemetry, body limit, the user
    middleware), not inside it: on a 100-read request those layers cost more than the token
    check. ``owner`` is the app whose ``state`` the endpoints read (``scope["app"]``, as
    Starlette would set it). A ``POST`` to one of :data:`INGEST_PATHS` goes to its
    :class:`IngestEndpoint`; another method there is answered 405. The lane times its requests
    in the request metrics itself (:class:`~api._metrics.MetricsMiddleware`), labelled with the
    endpoint's path (``scope["route"]``).
    """

    def __init__(self, app: ASGIApp, owner: Any) -> None:
        self.app = app
        self.owner = owner
        self.doors = {path: IngestEndpoint(path, *door) for path, door in INGEST_PATHS.items()}
        self._metered = MetricsMiddleware(self._serve)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = self.doors.get(scope["path"]) if scope["type"] == "http" else None
        if door is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.owner
        scope["route"] = door
        await self._metered(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            body = orjson.dumps({"detail": f"{scope['method']} is not allowed here: POST reads"})
            await _send_json(send, 405, body, [(b"allow", b"POST")])
            return
        await scope["route"](scope, receive, send)
