"""Subcommands of the HTTP side: ``serve`` (the API under uvicorn) and ``ingest FILE``."""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import redis
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from plateflow import _cli_tokens
from plateflow._cli_parts import command, command_group
from plateflow._ingest_tokens import new_token
from plateflow.embedded import redis_client, redis_urls
from plateflow.settings import Settings

log = logging.getLogger(__name__)
out = Console()

#: Rejections listed in the terminal; all of them are in the dead-letter stream anyway.
_SHOWN_REJECTIONS = 20


def register(sub: Any) -> None:
    p = command(
        sub,
        "serve",
        cmd_serve,
        help="serve the HTTP API: camera ingest, login, audited access, health, metrics",
        description="Serve the HTTP API with uvicorn on --api-host/--api-port. Camera ingest "
        "needs ingest tokens: PLATEFLOW_INGEST_TOKENS_FILE (`plateflow ingest token add`), "
        "PLATEFLOW_INGEST_TOKENS, or --generate-ingest-token for a trial run.",
    )
    p.add_argument(
        "--generate-ingest-token",
        action="store_true",
        help="add a random ingest token for this run and print it once (demos and trials)",
    )

    cmds = command_group(
        sub,
        "ingest",
        help="replay a JSON Lines file of reads; manage the camera ingest tokens",
        description="`plateflow ingest FILE` (short for `ingest file FILE`) replays reads; "
        "`plateflow ingest token add|list|revoke` manages the camera ingest tokens.",
        metavar="WHAT",
        action=_FileByDefault,
    )
    p = command(
        cmds,
        "file",
        cmd_ingest,
        help="replay a JSON Lines file of reads into the read streams",
        description="Validate and append every line of FILE (one read, or one JSON array of "
        "reads, per line) to the read streams, exactly as the HTTP ingest does. Bad lines are "
        "reported by line number and kept in the dead-letter stream. Exit code 1 if any line "
        "was rejected. A read keeps the token_id it carries (nothing authenticated it here).",
    )
    p.add_argument("file", type=Path, help="JSON Lines file, or - for standard input")
    p.add_argument(
        "--batch", type=int, default=1000, help="lines validated and written per round trip"
    )
    p.add_argument(
        "--format",
        choices=("reads", "openalpr", "platerecognizer"),
        default="reads",
        help="what each line holds: canonical reads (default) or a vendor webhook message",
    )
    _cli_tokens.register(cmds)
    cmds.choices.lenient = True


class _AnyName(dict[str, Any]):
    """Subcommand choices that, once every subcommand is added (``lenient``), let argparse
    pass any word on (a file name) to the action."""

    lenient = False

    def __contains__(self, key: object) -> bool:
        return self.lenient or dict.__contains__(self, key)


class _FileByDefault(argparse._SubParsersAction):  # type: ignore[type-arg]
    """``plateflow ingest FILE`` stays the short form of ``plateflow ingest file FILE``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._name_parser_map = self.choices = _AnyName()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values and not dict.__contains__(self._name_parser_map, values[0]):
            values = ["file", *values]
        super().__call__(parser, namespace, values, option_string)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api import generate_ingest_token

    if args.generate_ingest_token:
        token = generate_ingest_token()
        trial = new_token(token, "generated", None)  # any camera: a trial run
        settings = settings.replace(ingest_tokens=settings.ingest_tokens.adding(trial))
        out.print(
            f"ingest token for this run: [bold]{token}[/]  (header X-Plateflow-Token; any "
            "camera; `plateflow ingest token add` issues lasting ones)"
        )
    elif not settings.ingest_tokens:
        log.warning(
            "camera ingest is disabled: no ingest token configured; add one with `plateflow "
            "ingest token add --camera CAMERA` (PLATEFLOW_INGEST_TOKENS_FILE), set "
            "PLATEFLOW_INGEST_TOKENS, or pass --generate-ingest-token"
        )
    shared = [t.token_id for t in settings.ingest_tokens.tokens if t.cameras is None]
    if shared and not args.generate_ingest_token:
        log.warning(
            "ingest token(s) %s may post for any camera; bind each camera's token to it with "
            "`plateflow ingest token add --camera CAMERA`",
            ", ".join(shared),
        )
    _warn_readable_key(settings.tls_key_file)
    with redis_urls(settings) as urls:
        scheme = "https" if settings.tls_cert_file else "http"
        where = f"{scheme}://{settings.api_host}:{settings.api_port}"
        config = uvicorn.Config(
            functools.partial(_worker_app, settings, urls.api, urls.ingest),
            factory=True,
            host=settings.api_host,
            port=settings.api_port,
            workers=settings.api_workers,
            # log_config=None keeps the CLI's logging (rich) instead of uvicorn's dictConfig.
            log_config=None,
            log_level=settings.log_level.lower(),
            access_log=settings.api_access_log,
            # an open alert stream never ends by itself: on SIGTERM, give requests 5 s, then
            # cancel what is left (each stream still audits its closing)
            timeout_graceful_shutdown=5,
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
            # X-Forwarded-For is believed from the allowed proxies only, and from nobody when
            # none is set (uvicorn would otherwise trust 127.0.0.1): the audit log's client is
            # the peer unless a proxy we know says who is behind it.
            proxy_headers=bool(settings.forwarded_allow_ips),
            forwarded_allow_ips=list(settings.forwarded_allow_ips) or None,
        )
        out.print(
            f"plateflow API on {where} (OpenAPI docs at {where}/docs), "
            f"{settings.api_workers} worker process(es)"
        )
        if settings.api_workers == 1:
            uvicorn.Server(config).run()
        else:
            # uvicorn.run() insists on an import string for workers; the factory (settings and
            # URLs bound, pickled to each spawned worker, never put in the environment) does too.
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[config.bind_socket()]).run()
    return 0


def _warn_readable_key(key: Path | None) -> None:
    if key is not None and key.stat().st_mode & 0o077:
        log.warning("the TLS key %s is readable by other users of this machine; chmod 600 it", key)


def _worker_app(settings: Settings, api_url: str, ingest_url: str | None) -> Any:
    """The app of one API process; in a spawned worker, logging is set up here first.

    What the process holds once the app is built (~190,000 objects: FastAPI, pydantic,
    SQLAlchemy...) lives as long as the process, so it is moved out of the garbage collector's
    reach (:func:`gc.freeze`). Otherwise every full collection walks all of it, which under
    ingest load happened every second or two and stopped the event loop for 140-290 ms each
    time (measured: the ingest's p99 latency).
    """
    from api import create_app

    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=settings.log_level, format="%(name)s: %(message)s")
    app = create_app(settings, api_url, ingest_redis_url=ingest_url)
    gc.collect()
    gc.freeze()
    return app


@dataclass
class FileIngest:
    """What ``plateflow ingest`` did: reads written and rejected ``(line, reason)`` pairs."""

    lines: int = 0
    accepted: int = 0
    ignored: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _converters(fmt: str) -> tuple[Callable[[Any], Any], Callable[[Any], dict[str, Any]]]:
    from api import (
        VendorItems,
        openalpr_items,
        openalpr_read,
        platerecognizer_items,
        platerecognizer_read,
    )
    from matchers.reads import validate_read

    def canonical(payload: Any) -> VendorItems:
        return VendorItems(payload if isinstance(payload, list) else [payload])

    if fmt == "openalpr":
        return openalpr_items, openalpr_read
    if fmt == "platerecognizer":
        return platerecognizer_items, platerecognizer_read
    return canonical, validate_read


def ingest_file(
    client: redis.Redis,
    stream: IO[bytes],
    partitions: int,
    batch: int,
    fmt: str = "reads",
    on_bytes: Callable[[int], None] | None = None,
) -> FileIngest:
    """Replay JSON Lines from ``stream`` through :func:`api.ingest_objects` in batches.

    Rejections come back as ``(line number, reason)``; lines that are not JSON are
    dead-lettered as text. Blank lines are skipped. Redis errors propagate; everything before
    the failing batch is written (re-running the file writes the same read ids again).
    """
    from api import ingest_objects, reject_raw

    split, convert = _converters(fmt)
    source = f"file:{fmt}"
    summary = FileIngest()
    items: list[Any] = []
    item_lines: list[int] = []
    ignored = 0

    def flush() -> None:
        nonlocal ignored
        if not items and not ignored:
            return
        result = ingest_objects(client, items, partitions, source, convert=convert, ignored=ignored)
        summary.accepted += result.accepted
        summary.ignored += result.ignored
        summary.rejected.extend((item_lines[r.index], r.reason) for r in result.rejected)
        items.clear()
        item_lines.clear()
        ignored = 0

    for number, raw in enumerate(stream, start=1):
        if on_bytes is not None:
            on_bytes(len(raw))
        if not raw.strip():
            continue
        summary.lines += 1
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            reason = f"line: not JSON ({exc})"
            reject_raw(client, [(number, raw.rstrip(b"\r\n"), "line", reason)], source)
            summary.rejected.append((number, reason))
            continue
        split_items = split(payload)
        items.extend(split_items.items)
        item_lines.extend([number] * len(split_items.items))
        ignored += split_items.ignored
        if len(items) >= batch:
            flush()
    flush()
    summary.rejected.sort()
    return summary


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch < 1:
        out.print("[bold red]error:[/] --batch must be at least 1")
        return 2
    from_stdin = str(args.file) == "-"
    if not from_stdin and not args.file.is_file():
        out.print(f"[bold red]error:[/] no file at {args.file}; give a JSON Lines file or -")
        return 2
    total = None if from_stdin else args.file.stat().st_size
    with redis_client(settings, "ingest") as client:
        stream: IO[bytes] = sys.stdin.buffer if from_stdin else args.file.open("rb")
        columns = (
            TextColumn("[bold]ingest[/] {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
        )
        try:
            with Progress(*columns, console=out, transient=False) as progress:
                task = progress.add_task(str(args.file), total=total)
                summary = ingest_file(
                    client,
                    stream,
                    settings.partitions,
                    args.batch,
                    args.format,
                    on_bytes=lambda n: progress.advance(task, n),
                )
        except redis.RedisError as exc:
            out.print(
                f"[bold red]error:[/] Redis failed while ingesting {args.file}: {exc}; the batches "
                "before the failure are stored; re-run the file (read ids are stable)"
            )
            return 1
        finally:
            if not from_stdin:
                stream.close()
    out.print(
        f"{summary.accepted:,} reads ingested from {summary.lines:,} lines into "
        f"{settings.partitions} partitions; {len(summary.rejected):,} rejected"
        + (f", {summary.ignored:,} messages without a read ignored" if summary.ignored else ""),
        soft_wrap=True,
    )
    for number, reason in summary.rejected[:_SHOWN_REJECTIONS]:
        out.print(f"  line {number}: {reason}", highlight=False, soft_wrap=True)
    hidden = len(summary.rejected) - _SHOWN_REJECTIONS
    if hidden > 0:
        out.print(f"  ... and {hidden:,} more")
    if summary.rejected:
        out.print("rejected lines are kept with their reason in the stream plateflow:deadletter")
        return 1
    return 0
