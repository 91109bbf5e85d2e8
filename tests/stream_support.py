"""Helpers of the alert stream tests (no tests here): the real API under a real uvicorn on a
free port, and an event-stream client written here from the SSE format (WHATWG HTML "Server-sent
events"), on plain httpx, so the project's own code is never the client that checks it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI

from tests.cluster_support import free_port

__all__ = ["Event", "SseClient", "live_server"]


@contextlib.contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn (httptools, one worker) in a thread; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class Event:
    """One dispatched event (``event`` defaults to ``message``), or a comment line."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data)


@dataclass
class SseClient:
    """One ``GET`` of an event stream, parsed line by line as the SSE specification says."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout))
        self._cm = self._client.stream("GET", self.url, headers=self.headers, params=self.params)
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()

    @property
    def status(self) -> int:
        return self.response.status_code

    def next(self) -> Event:
        """The next event or comment (a comment is its own :class:`Event` with ``comment``)."""
        event = Event()
        has_field = False
        for line in self._lines:
            if line == "":
                if has_field:
                    return event
                continue
            if line.startswith(":"):
                return Event(event="", comment=line[1:].lstrip(" "))
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            has_field = True
            if name == "event":
                event.event = value
            elif name == "data":
                event.data = f"{event.data}\n{value}" if event.data else value
            elif name == "id":
                event.id = value
            elif name == "retry" and value.isdigit():
                event.retry = int(value)
        raise EOFError("the stream ended")

    def until(self, kind: str, limit: int = 10_000) -> list[Event]:
        """Events up to and including the first of ``kind`` (``ping`` for a comment)."""
        out: list[Event] = []
        for _ in range(limit):
            event = self.next()
            out.append(event)
            if event.event == kind or (kind == "ping" and event.comment == "ping"):
                return out
        raise AssertionError(f"no {kind} in {limit} events")

    def alerts(self, n: int) -> list[Event]:
        """The next ``n`` alert events (other events in between are skipped)."""
        out: list[Event] = []
        while len(out) < n:
            event = self.next()
            if event.event == "alert":
                out.append(event)
        return out

    def close(self) -> None:
        self._cm.__exit__(None, None, None)
        self._client.close()
