"""The alert stream's events in the event-stream wire format (WHATWG HTML "Server-sent events"),
as bytes, each live entry's frame built once for every console that receives it.

The fan-out (:mod:`service._fanout`) wraps each entry it reads in one :class:`Shared`, and the
same object goes to every open stream reading that stream: the first stream that sends it
builds its frame, the others send the same bytes. A stream of the general log only sends the
whole frame as it is (its ``id:`` is the entry's own id); a covert stream's cursor names its
position in both logs, so it appends its own ``id:`` line to the shared head.
"""

from __future__ import annotations

from sinks import COVERT_LOG, TailEntry, parse_stream_id

__all__ = ["PING", "Shared", "alert_body", "frame", "retry"]

#: The heartbeat: a comment line, which clients ignore.
PING = b": ping\n\n"


def _data_lines(data: bytes) -> list[bytes]:
    # JSON from orjson has no raw line break, but a payload read from Redis is sent verbatim:
    # split on the format's line ends so a stray one cannot end the event early
    if b"\n" not in data and b"\r" not in data:
        return [b"data: " + data]
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return [b"data: " + line for line in lines]


def _head(event: str, data: bytes | None) -> bytes:
    """``event:`` and ``data:`` lines, each ended by a line feed."""
    lines = [b"event: " + event.encode(), *(_data_lines(data) if data is not None else [])]
    return b"\n".join(lines) + b"\n"


def frame(event: str, data: bytes | None = None, id: str | None = None) -> bytes:
    """One event: ``event:``, ``data:`` (one line per line of ``data``), ``id:``, a blank line."""
    tail = b"" if id is None else b"id: " + id.encode() + b"\n"
    return _head(event, data) + tail + b"\n"


def retry(ms: int) -> bytes:
    """The ``retry:`` field alone: how long a client waits before it reconnects."""
    return b"retry: %d\n\n" % ms


def alert_body(entry: TailEntry) -> bytes:
    """The logged alert JSON plus ``log_id`` and ``covert``, added without decoding it: the
    logged JSON is an object."""
    covert = b"true" if entry.stream == COVERT_LOG else b"false"
    extra = b'"log_id":"' + entry.id.encode() + b'","covert":' + covert
    body = entry.payload.rstrip()
    if body == b"{}":
        return b"{" + extra + b"}"
    return body[:-1] + b"," + extra + b"}"


class Shared:
    """One live entry as the fan-out hands it to every stream: its id parsed once, its frames
    built on first use and kept."""

    __slots__ = ("_alert_frame", "_alert_head", "_disposition", "entry", "order", "stream")

    def __init__(self, entry: TailEntry) -> None:
        self.entry = entry
        self.stream = entry.stream
        self.order = parse_stream_id(entry.id)
        self._alert_head: bytes | None = None
        self._alert_frame: bytes | None = None
        self._disposition: bytes | None = None

    def alert_head(self) -> bytes:
        """The alert event up to its ``id:`` line (a covert stream adds its own cursor)."""
        if self._alert_head is None:
            self._alert_head = _head("alert", alert_body(self.entry))
        return self._alert_head

    def alert_frame(self) -> bytes:
        """The whole alert event with the entry's own id as ``id:`` (a general-only stream)."""
        if self._alert_frame is None:
            self._alert_frame = self.alert_head() + b"id: " + self.entry.id.encode() + b"\n\n"
        return self._alert_frame

    def disposition_frame(self) -> bytes:
        """The ``disposition`` event: the transition JSON verbatim, no ``id:``."""
        if self._disposition is None:
            self._disposition = frame("disposition", self.entry.payload)
        return self._disposition
