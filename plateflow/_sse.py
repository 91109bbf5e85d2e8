"""The command line's client of the API's alert stream (``GET /v1/alerts/stream``).

Standard library only (``urllib``): the event-stream format is a few lines of parsing, and the
shell should not need an HTTP client package to watch alerts. :class:`StreamClient` keeps the
last event id and reconnects with ``Last-Event-ID`` after a dropped connection, so a console
misses nothing and sees nothing twice; an HTTP refusal (401, 403, 422) is not retried.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

import orjson

from plateflow.errors import PlateflowError

__all__ = ["SseEvent", "StreamClient", "StreamRefused"]

log = logging.getLogger(__name__)


class StreamRefused(PlateflowError):
    """The API refused the stream (no login, no permission, a bad value): not retried."""


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None


def parse_events(lines: Iterator[bytes]) -> Iterator[SseEvent | int]:
    """Events of an event stream; an ``int`` is a ``retry:`` (milliseconds). Comments (the
    heartbeats) are skipped."""
    event, event_id, seen = "message", None, False
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if seen and (data or event != "message"):
                yield SseEvent(event, "\n".join(data), event_id)
            event, data, event_id, seen = "message", [], None, False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        seen = True
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            yield int(value)


@dataclass
class StreamClient:
    """Reads the stream at ``base_url`` as the session ``token``, reconnecting from the last
    event id it saw. ``params``: ``covert``, ``replay`` and the justification."""

    base_url: str
    token: str
    params: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    last_event_id: str | None = None
    retry_s: float = 3.0

    def _open(self) -> IO[bytes]:
        params = dict(self.params)
        if self.last_event_id:
            params.pop("replay", None)
        query = urllib.parse.urlencode(params)
        request = urllib.request.Request(f"{self.base_url}/v1/alerts/stream?{query}")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "text/event-stream")
        if self.last_event_id:
            request.add_header("Last-Event-ID", self.last_event_id)
        try:
            response: IO[bytes] = urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            try:
                detail = orjson.loads(exc.read()).get("detail", exc.reason)
            except (orjson.JSONDecodeError, AttributeError):
                detail = exc.reason
            msg = f"the API refused the alert stream ({exc.code}): {detail}"
            raise StreamRefused(msg) from exc
        return response

    def events(self) -> Iterator[SseEvent]:
        """Every event, across reconnects, until the server ends the stream (``end``)."""
        while True:
            try:
                response = self._open()
            except OSError as exc:  # URLError too: the server is not (yet) there
                log.warning("alert stream at %s unreachable (%s); retrying", self.base_url, exc)
                time.sleep(self.retry_s)
                continue
            try:
                for item in parse_events(iter(response.readline, b"")):
                    if isinstance(item, int):
                        self.retry_s = item / 1000
                        continue
                    if item.id is not None:
                        self.last_event_id = item.id
                    yield item
                    if item.event == "end":
                        return
            except OSError as exc:  # a dropped connection or a read timeout
                log.warning("alert stream dropped (%s); resuming after %s", exc, self.last_event_id)
            finally:
                response.close()
            time.sleep(self.retry_s)
