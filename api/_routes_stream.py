"""``GET /v1/alerts/stream``: the live alert stream to consoles, as Server-Sent Events.

The route parses, opens the stream through :func:`service.open_stream` (the checks and the
opening's audit record, before any byte of the stream is sent: a refusal is a plain JSON 4xx)
and sends the chunks of :meth:`service.AlertStream.chunks`, already in the event-stream format
(each live event's bytes are built once for every open stream, and the events ready together
go out in one write). The response is FastAPI's :class:`~fastapi.sse.EventSourceResponse`
returned by the route, not a generator route: its ``finally`` closes the chunk generator however
the response ends (a client that left cancels it while it waits on Redis or on the socket), so
the closing audit record is always written, once, with the alerts delivered; a generator route
would leave that to garbage collection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

import service
from api._access import Guard, bearer, guard, guarded_router, session_token
from service import Acts

__all__ = ["router"]

log = logging.getLogger(__name__)

router = guarded_router("alerts")


class _AuditedEventStream(EventSourceResponse):
    """An event stream whose generator is closed, and the stream's closing audited, when the
    response ends for any reason."""

    def __init__(self, stream: service.AlertStream, events: AsyncIterator[bytes]) -> None:
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._stream = stream
        self._events = events
        self._how = "client disconnected"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except BaseException as exc:
            self._how = f"{type(exc).__name__}"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _close(self) -> None:
        try:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()
            await run_in_threadpool(self._stream.close, self._how)
        except asyncio.CancelledError:
            # the server is stopping and cancels even a shielded wait: write it here (once: a
            # close already running in its thread makes this a no-op and finishes on its own)
            self._stream.close("server stopped")
            raise
        except Exception:
            log.exception("could not audit the close of alert stream %s", self._stream.id)


_EVENTS_DOC = (
    "`retry: 3000`, then `event: alert` (the alert as published, plus `log_id` and `covert`; "
    "`id:` is the cursor: the general log's stream id, or `<general id>_<covert id>` with "
    "`covert=true`), `event: gap` (`{after, oldest, logs}`) when alerts after the cursor were "
    "trimmed, one `event: dispositions` (`{items}`: the current state of the last 24 h's "
    "dispositioned alerts) after the replay, live `event: disposition` (one transition, no "
    "`id:`), `: ping` every PLATEFLOW_SSE_HEARTBEAT_S seconds, and `event: end` when the "
    "session ends (logout, expiry)."
)


@router.get(
    "/v1/alerts/stream",
    # not response_class=EventSourceResponse: that makes FastAPI treat the route as a generator
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": _EVENTS_DOC}},
    summary="Live alerts (Server-Sent Events)",
    description="The alerts of the replay log, then live ones, for a trained user with "
    "`alerts:receive`; covert alerts only with `covert=true` and `hotlists:view_covert` "
    "(else 403 before the stream opens). Reconnect with the `Last-Event-ID` header (or "
    "`last_event_id`) to receive exactly the alerts missed, once each. A justification is "
    "optional: without one the audit log records the standing reason of a dispatch console. "
    "Opening and closing are audited, the closing with the count delivered. Sign in with "
    "`Authorization: Bearer` or the session cookie.",
)
async def alert_stream(
    *,
    request: Request,
    covert: Annotated[
        bool, Query(description="Also the covert log (needs hotlists:view_covert).")
    ] = False,
    replay: Annotated[
        int,
        Query(
            ge=0,
            le=service.REPLAY_MAX,
            description="Without a cursor: the last N logged alerts shown first.",
        ),
    ] = service.REPLAY_DEFAULT,
    last_event_id: Annotated[
        str | None,
        Query(max_length=100, description="Resume after this event id (as Last-Event-ID)."),
    ] = None,
    last_event_id_header: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=100, include_in_schema=False),
    ] = None,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    g: Annotated[Guard, Depends(guard(Acts.ALERT_STREAM, default_why=service.CONSOLE_WATCH))],
) -> Any:
    cursor = last_event_id_header or last_event_id or None
    token, _ = session_token(request, credentials)
    stream = await run_in_threadpool(
        service.open_stream,
        g.door,
        g.actor,
        covert=covert,
        last_event_id=cursor,
        replay=replay,
        token=token,
    )
    return _AuditedEventStream(stream, stream.chunks())
