"""The live alert stream to a console as an act (ARCHITECTURE "Alert stream to consoles (SSE)").

:func:`open_stream` checks the actor (``alerts:receive``; the covert log only for actors
:class:`~service.Covert` allows, refused and audited before anything is read), checks the
cursor and audits the opening. :meth:`AlertStream.chunks` then yields the stream in the
event-stream wire format (:mod:`service._frames`), one chunk of bytes per batch of events ready:
the alerts after the cursor (XRANGE on the logs) or the last ``replay`` ones, a ``gap`` when the
cursor's successors were trimmed away, one ``dispositions`` snapshot
(:func:`service.current_dispositions`), then live alerts and disposition transitions (XREAD
BLOCK on the log and event streams, never pub/sub, by one reader per process for every open
stream: :mod:`service._fanout`, which builds each entry's frame once for all of them) with a
``ping`` every heartbeat. The heartbeat also checks the session, which counts as its use: an
open stream keeps an idle session alive. :meth:`AlertStream.close` audits the closing with the
number of alerts delivered; it runs however the stream ends (the client left, the session
ended, the server stopped).

The cursor of an alert is the position reached in each log the session reads: the general log's
stream id, or ``<general id>_<covert id>`` for a session that reads the covert log too ("0-0"
where nothing was seen). Resuming from it is exact for both logs whatever order the alerts of
the two logs were delivered in.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from operator import attrgetter

import orjson

from service._acts import Acts
from service._dispositions import current_dispositions
from service._door import Actor, Door, Justification
from service._errors import Forbidden, Invalid, ServiceError, Unauthenticated
from service._fanout import Fanout, Subscriber, fanout_of
from service._frames import PING, Shared, frame, retry
from sinks import (
    ALERTS_LOG,
    COVERT_DISPOSITION_EVENTS,
    COVERT_LOG,
    DISPOSITION_EVENTS,
    SinksError,
    StreamTail,
    parse_stream_id,
)

__all__ = [
    "CONSOLE_WATCH",
    "REPLAY_DEFAULT",
    "REPLAY_MAX",
    "AlertStream",
    "Cursor",
    "open_stream",
]

REPLAY_DEFAULT = 50
REPLAY_MAX = 1000
#: Entries read per round trip, in the backfill and the live reads.
BATCH = 500
#: The longest one blocking read waits, in ms: well under the client's socket timeout (redis-py
#: gives up on a reply after 5 s by default), whatever the heartbeat interval.
BLOCK_MAX_MS = 2000
#: How far back the ``dispositions`` snapshot looks.
SNAPSHOT_MS = 24 * 3600 * 1000
#: What a browser waits before it reconnects, in milliseconds (the first line of a stream).
RETRY_MS = 3000
Chunks = AsyncGenerator[bytes, None]
_ORDER = attrgetter("order")

#: The justification recorded for a console stream opened without one: watching live alerts is
#: the dispatcher's duty itself (``alerts:receive``), not an inquiry into stored reads. A case
#: or event number or a description given with the request is recorded instead.
CONSOLE_WATCH = Justification(description="watching live hotlist alerts on a dispatch console")


@dataclass(frozen=True)
class Cursor:
    """The position reached in the general log and, for a covert session, the covert log."""

    general: str = "0-0"
    covert: str | None = None

    def text(self) -> str:
        return self.general if self.covert is None else f"{self.general}_{self.covert}"

    @classmethod
    def parse(cls, text: str, *, covert: bool) -> Cursor:
        """``"<id>"`` or ``"<id>_<id>"``; raises :class:`Invalid` (field ``last_event_id``). A
        plain id given to a covert session has seen nothing of the covert log; a pair given to
        a session without covert keeps its general part only."""
        general, _, secret = text.strip().partition("_")
        try:
            parts = [parse_stream_id(general), *([parse_stream_id(secret)] if secret else [])]
        except SinksError as exc:
            msg = (
                f"last_event_id {text!r} is not an event id of this stream: a stream id like "
                "1764331200000-0, or two joined by '_' for a covert session"
            )
            raise Invalid(msg, "last_event_id") from exc
        ids = [f"{ms}-{seq}" for ms, seq in parts]
        if not covert:
            return cls(ids[0])
        return cls(ids[0], ids[1] if len(ids) > 1 else "0-0")


def _before(stream_id: str) -> str:
    """The id just before ``stream_id``, so an exclusive read starts at ``stream_id``."""
    ms, seq = parse_stream_id(stream_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{2**64 - 1}" if ms > 0 else "0-0"


@dataclass
class AlertStream:
    """One console's open stream; build it with :func:`open_stream`."""

    door: Door
    actor: Actor
    covert: bool
    cursor: Cursor | None
    replay: int
    token: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    delivered: int = 0
    transitions: int = 0
    opened: float = field(default_factory=time.monotonic)
    #: Why the stream ended on its own (the session ended), else None.
    ended: str | None = None
    _closed: bool = False

    @property
    def logs(self) -> list[str]:
        return [ALERTS_LOG, COVERT_LOG] if self.covert else [ALERTS_LOG]

    @property
    def event_streams(self) -> list[str]:
        return (
            [DISPOSITION_EVENTS, COVERT_DISPOSITION_EVENTS] if self.covert else [DISPOSITION_EVENTS]
        )

    def _at(self, pos: dict[str, str]) -> str:
        return Cursor(pos[ALERTS_LOG], pos[COVERT_LOG] if self.covert else None).text()

    def _alert(self, item: Shared, pos: dict[str, str]) -> bytes:
        """The alert event of ``item``, the stream's position moved past it."""
        pos[item.stream] = item.entry.id
        self.delivered += 1
        if not self.covert:  # the cursor is the entry's own id: the frame every stream sends
            return item.alert_frame()
        cursor = f"{pos[ALERTS_LOG]}_{pos[COVERT_LOG]}"
        return item.alert_head() + b"id: " + cursor.encode() + b"\n\n"

    async def chunks(self) -> Chunks:
        """The stream's bytes until the session ends (then one ``end``) or the caller stops:
        ``retry:`` first, then one chunk for each batch of events that is ready."""
        client = self.door.redis_async
        if client is None:
            raise AssertionError("the alert stream needs the door's asynchronous Redis client")
        yield retry(RETRY_MS)
        tail = StreamTail(client)
        hub = fanout_of(client, BLOCK_MAX_MS, BATCH)
        # subscribed before the backfill: whatever is added from now on reaches the queue
        sub = await hub.subscribe([*self.logs, *self.event_streams])
        try:
            pos: dict[str, str] = {}
            head = self._replay(tail, pos) if self.cursor is None else self._backfill(tail, pos)
            async with contextlib.aclosing(head) as backlog:
                async for chunk in backlog:
                    yield chunk
            pos.update({s: await tail.last_id(s) for s in self.event_streams})
            since = int(time.time() * 1000) - SNAPSHOT_MS
            found = await asyncio.to_thread(current_dispositions, self.door, self.actor, since)
            # the covert ones only on a stream that carries covert alerts
            items = [i for i in found if self.covert or not i.get("covert")]
            yield frame("dispositions", orjson.dumps({"items": items}))
            # closed with this generator, not when collected: its finally leaves the fan-out
            async with contextlib.aclosing(self._live(hub, sub, tail, pos)) as live:
                async for chunk in live:
                    yield chunk
        finally:
            hub.unsubscribe(sub)

    async def _replay(self, tail: StreamTail, pos: dict[str, str]) -> Chunks:
        fetched = {s: await tail.newest(s, self.replay + 1) for s in self.logs}
        merged = sorted((Shared(e) for es in fetched.values() for e in es), key=_ORDER)
        shown = merged[len(merged) - self.replay :] if self.replay else []
        first = {(i.stream, i.entry.id) for i in shown}
        for stream, entries in fetched.items():
            # the newest entry of this log that is not replayed: everything after it is
            older = [e.id for e in entries if (stream, e.id) not in first]
            pos[stream] = older[-1] if older else "0-0"
        if shown:
            yield b"".join([self._alert(item, pos) for item in shown])

    async def _backfill(self, tail: StreamTail, pos: dict[str, str]) -> Chunks:
        assert self.cursor is not None
        pos.update({ALERTS_LOG: self.cursor.general})
        if self.covert:
            pos[COVERT_LOG] = self.cursor.covert or "0-0"
        gapped: dict[str, str] = {}
        for stream in self.logs:
            info = await tail.trim_info(stream)
            if info.first_id is not None and info.lost_after(pos[stream]):
                gapped[stream] = info.first_id
        if gapped:
            oldest = {**pos, **gapped}
            data: dict[str, object] = {"after": self.cursor.text(), "oldest": self._at(oldest)}
            data["logs"] = ["covert" if s == COVERT_LOG else "general" for s in gapped]
            yield frame("gap", orjson.dumps(data))
            pos.update({s: _before(first) for s, first in gapped.items()})
        while True:
            batches = {s: await tail.after(s, pos[s], BATCH) for s in self.logs}
            full = [parse_stream_id(b[-1].id) for b in batches.values() if len(b) == BATCH]
            limit = min(full) if full else None
            ready = sorted((Shared(e) for b in batches.values() for e in b), key=_ORDER)
            sent = [self._alert(i, pos) for i in ready if limit is None or i.order <= limit]
            if sent:
                yield b"".join(sent)
            if limit is None:
                return

    async def _live(
        self, hub: Fanout, sub: Subscriber, tail: StreamTail, pos: dict[str, str]
    ) -> Chunks:
        """Live entries from the fan-out past ``pos`` (each log and event stream's position),
        the events of each batch in one chunk."""
        beat = self.door.config.sse_heartbeat_s
        next_beat = time.monotonic() + beat
        seen = {s: parse_stream_id(at) for s, at in pos.items()}
        try:
            while True:
                items = await sub.next_batch(next_beat - time.monotonic())
                if sub.error is not None:
                    raise sub.error
                if sub.overflowed:
                    # what the fan-out handed is in Redis too: read it all from the position
                    hub.unsubscribe(sub)
                    sub = await hub.subscribe(sub.streams)
                    items = await self._catch_up(tail, pos)
                out = self._deliver(items, pos, seen)
                if out:
                    yield out
                if time.monotonic() >= next_beat:
                    ended = await asyncio.to_thread(self._session_ended)
                    if ended:
                        self.ended = ended
                        yield frame("end", orjson.dumps({"reason": ended}))
                        return
                    yield PING
                    next_beat = time.monotonic() + beat
        finally:
            hub.unsubscribe(sub)

    def _deliver(
        self, items: Iterable[Shared], pos: dict[str, str], seen: dict[str, tuple[int, int]]
    ) -> bytes:
        """The events of ``items`` (oldest first) not yet delivered, as one chunk: an entry at
        or before its stream's position came already (by the backfill, or twice in a
        catch-up)."""
        out: list[bytes] = []
        for item in items:
            if item.order <= seen[item.stream]:
                continue
            seen[item.stream] = item.order
            if item.stream in (ALERTS_LOG, COVERT_LOG):
                out.append(self._alert(item, pos))
            else:
                pos[item.stream] = item.entry.id
                self.transitions += 1
                out.append(item.disposition_frame())
        return b"".join(out)

    async def _catch_up(self, tail: StreamTail, pos: dict[str, str]) -> list[Shared]:
        """Everything after ``pos`` in each stream, read from Redis (after an overflow),
        oldest first."""
        out: list[Shared] = []
        for stream, after in pos.items():
            while True:
                found = await tail.after(stream, after, BATCH)
                out.extend(map(Shared, found))
                if len(found) < BATCH:
                    break
                after = found[-1].id
        return sorted(out, key=_ORDER)

    def _session_ended(self) -> str | None:
        """Why the session no longer holds (logged out, expired, disabled), else None."""
        if self.token is None:
            return None
        try:
            user = self.door.session_user(self.token)
        except Unauthenticated as exc:
            return f"session ended: {exc}"
        if not user.active:
            return f"user {user.username!r} is disabled"
        return None

    def close(self, how: str) -> None:
        """Audit the closing (once): alerts and transitions delivered, the cursor reached."""
        if self._closed:
            return
        self._closed = True
        terms = {
            **self.actor.origin,
            "stream": self.id,
            "covert": self.covert,
            "delivered": self.delivered,
            "transitions": self.transitions,
            "seconds": round(time.monotonic() - self.opened, 3),
            "closed": self.ended or how,
        }
        act = Acts.ALERT_STREAM_CLOSE
        self.door.record_attempt(
            self.actor.username,
            act.action,
            act.kind,
            "allowed",
            None,
            terms,
            self.actor.client,
            self.actor.why,
            result_count=self.delivered,
        )


def open_stream(
    door: Door,
    actor: Actor,
    *,
    covert: bool = False,
    last_event_id: str | None = None,
    replay: int = REPLAY_DEFAULT,
    token: str | None = None,
) -> AlertStream:
    """Check and audit the opening of ``actor``'s alert stream; every refusal is audited.
    ``token`` is the session's, checked at each heartbeat so a logout ends the stream."""
    act = Acts.ALERT_STREAM
    door.admit(actor, act)
    if covert:
        refused = actor.covert.forbidden_log(actor.username)
        if refused:
            raise door.deny(actor, act, Forbidden(refused))
    if not 0 <= replay <= REPLAY_MAX:
        msg = f"replay {replay} is not from 0 to {REPLAY_MAX} (the alerts shown on connect)"
        raise door.deny(actor, act, Invalid(msg, "replay"))
    try:
        cursor = Cursor.parse(last_event_id, covert=covert) if last_event_id else None
    except ServiceError as exc:
        raise door.deny(actor, act, exc) from exc
    stream = AlertStream(door, actor, covert, cursor, replay, token)
    terms = {
        "stream": stream.id,
        "covert": covert,
        "last_event_id": cursor.text() if cursor else None,
        "replay": None if cursor else replay,
    }
    door.read(actor, act, lambda access: None, terms)
    return stream
