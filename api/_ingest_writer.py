"""Group commit for the HTTP ingest: concurrent requests share one Redis pipeline.

Each ingest request hands its ``XADD`` commands to :meth:`StreamWriter.write` and waits. One
flusher task per event loop takes everything queued since its last round trip and sends it as a
single pipeline (no MULTI), then wakes each waiting request with the outcome of *its own*
commands. At low rates a request costs one round trip, as a direct ``XADD`` would; under load
a round trip carries many requests, so the per-command cost of talking to Redis (a syscall and a
reply parse per round trip, not per request) is shared. A request is answered only after Redis
acknowledged every one of its commands: the 202 contract is unchanged.

The client is ``redis.asyncio`` (hiredis parser when installed). Connections belong to the event
loop that opened them, so the writer keeps one client per loop and opens a new one when it is
first used from another loop (a test client that runs each request in a fresh loop, a uvicorn
worker process).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from api._metrics import INGEST_FLUSH_REQUESTS

log = logging.getLogger(__name__)

__all__ = ["Command", "StreamWriter"]

#: One ``XADD``: stream key, fields, and the approximate length cap (``None``: uncapped).
Command = tuple[str, dict[Any, Any], int | None]

#: Most commands sent in one pipeline; more wait for the next round trip. Bounds the time one
#: flush holds the event loop packing commands (~10 us each) and the reply it must parse.
MAX_COMMANDS_PER_FLUSH = 2_000


class StreamWriter:
    """Writes the ingest's stream entries, coalescing concurrent callers into one pipeline.

    Delivery is at-least-once, as with :func:`sinks.append_reads`: a connection lost mid-flush
    fails every caller of that flush, some of whose entries may already be stored; callers answer
    503 and the camera retries with the same read ids.
    """

    def __init__(self, url: str, *, socket_timeout: float = 10.0) -> None:
        self._url = url
        self._socket_timeout = socket_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aioredis.Redis | None = None
        self._pending: deque[tuple[Sequence[Command], asyncio.Future[None]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        #: Pipelines sent so far (each one Redis round trip), for tests and diagnostics.
        self.flushes = 0

    def _bind(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # The old loop is gone or not ours to use: its connections cannot be awaited here.
            # No socket timeout on each read: redis-py would enter a timeout context per reply
            # (a pipeline of 2,000 commands, 2,000 of them); a flush has one for all its replies.
            self._client = aioredis.Redis.from_url(
                self._url,
                socket_timeout=None,
                socket_connect_timeout=self._socket_timeout,
                health_check_interval=30,
            )
            self._loop = loop
            self._pending = deque()
            self._flusher = None
        return self._client

    async def write(self, commands: Sequence[Command]) -> None:
        """Send ``commands`` (with whatever else is queued) and return once Redis stored them.

        Raises :class:`redis.RedisError` (or :class:`OSError`) if the round trip failed or Redis
        refused one of these commands.
        """
        if not commands:
            return
        client = self._bind()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((commands, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(client))
        await done

    def _take(self) -> list[tuple[Sequence[Command], asyncio.Future[None]]]:
        """The queued requests for one pipeline: all of them, up to the command budget."""
        taken: list[tuple[Sequence[Command], asyncio.Future[None]]] = []
        budget = MAX_COMMANDS_PER_FLUSH
        while self._pending and (budget > 0 or not taken):
            item = self._pending.popleft()
            taken.append(item)
            budget -= len(item[0])
        return taken

    async def _flush(self, client: aioredis.Redis) -> None:
        while self._pending:
            batch = self._take()
            batch = [(cmds, fut) for cmds, fut in batch if not fut.done()]
            if not batch:
                continue
            try:
                pipe = client.pipeline(transaction=False)
                for cmds, _ in batch:
                    for key, fields, maxlen in cmds:
                        pipe.xadd(key, fields, maxlen=maxlen, approximate=maxlen is not None)
                self.flushes += 1
                INGEST_FLUSH_REQUESTS.observe(len(batch))
                results = await self._execute(pipe)
            except asyncio.CancelledError:  # the app is shutting down: nobody gets an answer
                for _, fut in (*batch, *self._pending):
                    fut.cancel()
                raise
            except Exception as exc:
                # A failed round trip, or a command redis-py refused to queue: every caller of
                # this flush gets the error (none may be left waiting), the next flush goes on.
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            at = 0
            for cmds, fut in batch:
                mine = results[at : at + len(cmds)]
                at += len(cmds)
                if fut.done():  # the client went away while Redis was storing its reads
                    continue
                failed = next((r for r in mine if isinstance(r, Exception)), None)
                if failed is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(failed)

    async def _execute(self, pipe: Any) -> list[Any]:
        """One round trip, bounded as a whole by the socket timeout (a Redis error if not)."""
        try:
            return await asyncio.wait_for(pipe.execute(raise_on_error=False), self._socket_timeout)
        except asyncio.TimeoutError as exc:  # not an OSError before Python 3.11
            msg = f"Redis did not answer within {self._socket_timeout:g} s"
            raise redis.exceptions.TimeoutError(msg) from exc

    async def close(self) -> None:
        """Close the current loop's client (the app's shutdown)."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()
