"""``plateflow search``: plate history, partial plates, canvass and past-read matching.

Every search is an inquiry by the logged-in user (``plateflow login``) with a case number, an
event number or a description (427.3(c)), run through the service's door (:mod:`service`).
The audit record, with the query terms and the size of the result, is committed before the
first row is shown; then the result streams a page at a time to the terminal, or to a CSV or
Parquet file with ``--out`` (never whole in memory). Alerts of covert lists are shown only to
users allowed to see them. ``register`` also adds the ``retention``, ``hold`` and
``evidence`` commands (:mod:`plateflow._cli_cases`).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from rich.console import Console

import service
from plateflow._cli_parts import command, command_group
from plateflow._cli_session import act_as, add_why, door_of, door_with_redis, logged_in
from plateflow._store_output import ResultWriter, print_page
from plateflow.settings import Settings
from service import MATCH_MODES, Acts, SearchSpec

out = Console()


def moment(text: str) -> datetime:
    """RFC 3339 with an offset, or a date (midnight UTC)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        found = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or RFC 3339 time") from exc
    if found.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; append Z or +hh:mm")
    return found


def add_window(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument("--start", type=moment, required=required, help="from (date or RFC 3339)")
    p.add_argument("--end", type=moment, required=required, help="before (default: now)")
    if not required:
        p.add_argument("--days", type=int, default=None, help="the last N days (default 30)")


def window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    days = getattr(args, "days", None)
    if days is None:
        return service.utc_window(args.start, args.end)
    if args.start is not None:
        raise service.Invalid("give --start or --days, not both", "start")
    return service.utc_window(None, args.end, default_days=days)


def add_query_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", default=None, help="two-letter state")
    p.add_argument("--camera", dest="cameras", action="append", default=None, help="repeatable")


def add_override(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--override-reason",
        default=None,
        help="why this search may pass the configured bounds (search:override; audited)",
    )


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="write a .csv or .parquet file")
    p.add_argument("--page-size", type=int, default=1000, help="rows per page (default 1000)")


def register(sub: Any) -> None:
    cmds = command_group(
        sub,
        "search",
        help="audited searches of stored reads: plate, partial, canvass, past (427.3(d))",
        description="Each search is an audited inquiry by the logged-in user (`plateflow "
        "login`) with a case number, an event number or a description.",
        metavar="KIND",
    )

    p = command(cmds, "plate", cmd_search, help="every read of a plate")
    p.add_argument("plate")
    p.add_argument("--match", choices=MATCH_MODES, default="exact", help="tolerance")
    p.add_argument("--candidates", action="store_true", help="also the reads' alternate plates")
    p.add_argument("--oldest-first", action="store_true", help="default: newest first")
    _common(p, window_required=False)

    p = command(cmds, "partial", cmd_search, help="reads matching a glob: 7AB?12*, *XYZ*")
    p.add_argument("pattern")
    p.add_argument("--ocr-equivalents", type=int, default=0, help="0-3 look-alike literals")
    p.add_argument("--candidates", action="store_true", help="also the reads' alternate plates")
    p.add_argument("--oldest-first", action="store_true", help="default: newest first")
    _common(p, window_required=False)

    p = command(
        cmds,
        "canvass",
        cmd_search,
        help="plates seen near a place and time",
        defaults={"state": None},
    )
    add_place(p)
    add_window(p, required=True)
    p.add_argument("--camera", dest="cameras", action="append", default=None, help="repeatable")
    add_output(p)
    add_override(p)
    add_why(p)

    p = command(
        cmds,
        "past",
        cmd_past,
        help="what a hotlist entry would have hit in the last N days",
        description="Run an entry already on a list (run after `plateflow hotlist add`) over "
        "the stored reads of the last --days, under the list's policy; --alert publishes the "
        "hits as alerts flagged historical.",
    )
    p.add_argument("--list", dest="hotlist", required=True, help="hotlist name")
    p.add_argument("--entry", required=True, help="the entry's plate or pattern")
    p.add_argument("--state", default=None, help="when the plate is listed for several states")
    p.add_argument("--days", type=int, default=30, help="how far back (default 30)")
    p.add_argument("--alert", action="store_true", help="publish the hits as historical alerts")
    add_output(p)
    add_why(p)

    from plateflow._cli_cases import register as register_cases  # it imports this module

    register_cases(sub)


def _common(p: argparse.ArgumentParser, *, window_required: bool) -> None:
    add_window(p, required=window_required)
    add_query_flags(p)
    add_output(p)
    add_override(p)
    add_why(p)


def add_place(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lat", type=float, default=None, help="center latitude")
    p.add_argument("--lon", type=float, default=None, help="center longitude")
    p.add_argument("--radius-m", type=float, default=None, help="radius in metres")
    p.add_argument("--polygon", type=Path, default=None, help="GeoJSON file with a polygon")


def place_spec(args: argparse.Namespace, start: datetime, end: datetime) -> SearchSpec:
    center = None
    if args.lat is not None or args.lon is not None:
        if args.lat is None or args.lon is None:
            raise service.Invalid("give both --lat and --lon", "center")
        center = (args.lat, args.lon)
    polygon = None
    if args.polygon is not None:
        try:
            polygon = orjson.loads(args.polygon.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            msg = f"--polygon {args.polygon}: not readable GeoJSON ({exc})"
            raise service.Invalid(msg, "polygon") from exc
        if isinstance(polygon, dict) and polygon.get("type") == "FeatureCollection":
            features = polygon.get("features") or [{}]
            polygon = features[0]
        if not isinstance(polygon, dict):
            raise service.Invalid(f"--polygon {args.polygon}: not a GeoJSON object", "polygon")
    return SearchSpec.canvass(
        start, end, center=center, radius_m=args.radius_m, polygon=polygon, cameras=args.cameras
    )


def spec_from_args(args: argparse.Namespace) -> SearchSpec:
    """The search of ``plateflow search plate|partial|canvass`` (and ``hold place``)."""
    start, end = window(args)
    kind = args.search_command if hasattr(args, "search_command") else args.kind
    if kind in ("plate", "partial"):
        return SearchSpec.of_terms(kind, args, start, end)
    return place_spec(args, start, end)


def deliver(
    args: argparse.Namespace,
    frames: Iterable[pl.DataFrame],
    total: int,
    schema: Any,
) -> int:
    """Stream pages to ``--out`` or the terminal; returns the rows written."""
    written = 0
    if args.out is not None:
        with ResultWriter(args.out, {**schema, "alerts": pl.String()}) as writer:
            for frame in frames:
                writer.write(frame)
            written = writer.rows
        out.print(f"wrote {written:,} rows to {args.out}")
        return written
    for number, frame in enumerate(frames, start=1):
        print_page(out, frame, number)
        written += frame.height
    out.print(f"{written:,} rows (counted {total:,} when the inquiry was recorded)")
    return written


def _output(args: argparse.Namespace) -> str:
    return str(args.out) if args.out else "terminal"


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    kind = args.search_command
    act = service.search_act(kind)
    door, actor = logged_in(settings, args, act)
    result = service.search_stream(
        door,
        actor,
        act,
        lambda: spec_from_args(args),
        page_size=args.page_size,
        newest_first=not getattr(args, "oldest_first", False),
        output=_output(args),
        override_reason=args.override_reason,
    )
    deliver(args, result.frames, result.total, result.schema)
    return 0


def cmd_past(args: argparse.Namespace, settings: Settings) -> int:
    with _door(settings, publish=args.alert) as door:
        actor = act_as(door, Acts.PAST_READS, settings, args)
        asked = service.PastRequest(args.hotlist, args.entry, args.days, args.state, args.alert)
        result = service.past_stream(
            door, actor, asked, page_size=args.page_size, output=_output(args)
        )
        if args.alert:
            out.print(f"published {result.alerts_published:,} historical alert(s)")
        deliver(args, result.frames, result.total, result.schema)
    return 0


def _door(settings: Settings, *, publish: bool) -> contextlib.AbstractContextManager[service.Door]:
    """A door with Redis when the act publishes, else without (no embedded server started)."""
    return door_with_redis(settings) if publish else contextlib.nullcontext(door_of(settings))
