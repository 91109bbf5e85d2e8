"""The API's Prometheus metrics and the middleware that times every request.

Module-level metrics on the default registry (STYLE 9): ``GET /metrics`` serves that registry,
so whatever else runs in the process (sinks, records) shows up beside them. Labels are bounded:
``source`` is one of the ingest doors, ``field`` the head of a rejected field name (no indexes),
``route`` the path *template* (``/v1/hotlists/{hotlist_id}``), never the raw path.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "AUTH_FAILURES",
    "INGEST_BATCH_READS",
    "INGEST_FLUSH_REQUESTS",
    "INGEST_TOKEN_RELOADS",
    "MESSAGES_IGNORED",
    "READS_ACCEPTED",
    "READS_REJECTED",
    "REQUEST_SECONDS",
    "MetricsMiddleware",
    "field_label",
]

READS_ACCEPTED = Counter(
    "plateflow_api_reads_accepted_total",
    "Reads that passed validation and were written to the read streams.",
    ["source"],
)
READS_REJECTED = Counter(
    "plateflow_api_reads_rejected_total",
    "Reads rejected at ingest and sent to the dead-letter stream, by offending field.",
    ["source", "field"],
)
MESSAGES_IGNORED = Counter(
    "plateflow_api_messages_ignored_total",
    "Vendor messages that carry no read (heartbeats, non-recognition events).",
    ["source"],
)
INGEST_BATCH_READS = Histogram(
    "plateflow_api_ingest_batch_reads",
    "Reads per ingest call (one HTTP request or one CLI batch).",
    ["source"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)
INGEST_FLUSH_REQUESTS = Histogram(
    "plateflow_api_ingest_flush_requests",
    "Ingest requests whose writes shared one Redis pipeline (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
INGEST_TOKEN_RELOADS = Counter(
    "plateflow_api_ingest_token_reloads_total",
    "Times the ingest tokens file changed and was re-read, by outcome (ok, failed).",
    ["outcome"],
)
AUTH_FAILURES = Counter(
    "plateflow_api_auth_failures_total",
    "Requests refused for authentication or authorisation, by kind and reason.",
    ["kind", "reason"],
)
REQUEST_SECONDS = Histogram(
    "plateflow_api_request_duration_seconds",
    "Time from request start to the end of the response, by route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def field_label(field: str) -> str:
    """``candidates[3].plate`` -> ``candidates``; ``data.results[].score`` -> ``data.results``.

    Keeps the ``field`` label's cardinality to the handful of read fields.
    """
    head = field.split("[", 1)[0]
    if head.startswith("data.") or head.startswith("gps."):
        return head
    return head.split(".", 1)[0]


class MetricsMiddleware:
    """Pure ASGI middleware: observes :data:`REQUEST_SECONDS` for every HTTP request.

    Pure ASGI rather than ``BaseHTTPMiddleware`` so streaming responses (the alert feed) are
    not buffered; the route template is read from the scope after routing filled it in.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )
