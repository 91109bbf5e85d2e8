"""``plateflow search``: plate history, partial plates, canvass and past-read matching.

Every search is an inquiry by a named, trained user (``--by``) with a case number, an event
number or a description (427.3(c)). The audit record, with the query terms and the size of the
result, is committed before the first row is shown; then the result streams a page at a time
to the terminal, or to a CSV or Parquet file with ``--out`` (never whole in memory). Alerts of
covert lists are shown only to users allowed to see them. ``register`` also adds the
``retention``, ``hold`` and ``evidence`` commands (:mod:`plateflow._cli_cases`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn

import orjson
import polars as pl
from rich.console import Console

import records
from api import (
    COVERT_PERMISSION,
    MATCH_MODES,
    PAST_SCHEMA,
    READ_RESULT_SCHEMA,
    PastSearch,
    SearchSpec,
    StoreQueryError,
    advisories_for,
    alerts_by_read,
    list_visible,
    publish_historical,
    to_ms,
    utc_window,
)
from plateflow._cli_users import engine_of
from plateflow._store_output import ResultWriter, print_page
from plateflow.embedded import redis_url
from plateflow.errors import PlateflowError
from plateflow.settings import Settings
from sinks import CANVASS_SCHEMA, Pages, ReadStore

out = Console()

#: The client recorded in the audit log for command-line inquiries.
CLIENT = "cli"
_ENTRY_PERMISSIONS = ("hotlists:manage", "hotlists:partial")


class CliStoreError(PlateflowError):
    """A stored-read command cannot run as typed; the message names the flag to fix."""


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


def add_inquiry(p: argparse.ArgumentParser, *, case_flag: bool = True) -> None:
    """``--by`` and the justification flags (427.3(c))."""
    p.add_argument(
        "--by",
        required=True,
        metavar="USERNAME",
        help="the named user making this inquiry; must hold the permission and current training",
    )
    if case_flag:
        p.add_argument("--case-number", default=None, help="case number the inquiry is for")
    p.add_argument("--event-number", default=None, help="event (CAD) number, if no case")
    p.add_argument(
        "--description", default=None, help="without a case or event number: why (long enough)"
    )


def inquiry(args: argparse.Namespace, case_number: str | None = None) -> records.Inquiry:
    return records.Inquiry(
        args.by,
        case_number=case_number or getattr(args, "case_number", None),
        event_number=args.event_number,
        description=args.description,
    )


def add_window(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument("--start", type=moment, required=required, help="from (date or RFC 3339)")
    p.add_argument("--end", type=moment, required=required, help="before (default: now)")
    if not required:
        p.add_argument("--days", type=int, default=None, help="the last N days (default 30)")


def window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    start = args.start
    if getattr(args, "days", None) is not None:
        if args.start is not None:
            raise CliStoreError("give --start or --days, not both")
        start = (args.end or datetime.now(timezone.utc)) - timedelta(days=args.days)
    return utc_window(start, args.end)


def add_query_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", default=None, help="two-letter state")
    p.add_argument("--camera", dest="cameras", action="append", default=None, help="repeatable")


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="write a .csv or .parquet file")
    p.add_argument("--page-size", type=int, default=1000, help="rows per page (default 1000)")


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    search = sub.add_parser(
        "search",
        help="audited searches of stored reads: plate, partial, canvass, past (427.3(d))",
        description="Each search is an audited inquiry by a named, trained user with a case "
        "number, an event number or a description.",
    )
    cmds = search.add_subparsers(dest="search_command", metavar="KIND", required=True)

    p = cmds.add_parser("plate", parents=parents, help="every read of a plate")
    p.add_argument("plate")
    p.add_argument("--match", choices=MATCH_MODES, default="exact", help="tolerance")
    p.add_argument("--candidates", action="store_true", help="also the reads' alternate plates")
    p.add_argument("--oldest-first", action="store_true", help="default: newest first")
    _common(p, window_required=False)
    p.set_defaults(handler=cmd_search)

    p = cmds.add_parser("partial", parents=parents, help="reads matching a glob: 7AB?12*, *XYZ*")
    p.add_argument("pattern")
    p.add_argument("--ocr-equivalents", type=int, default=0, help="0-3 look-alike literals")
    p.add_argument("--candidates", action="store_true", help="also the reads' alternate plates")
    p.add_argument("--oldest-first", action="store_true", help="default: newest first")
    _common(p, window_required=False)
    p.set_defaults(handler=cmd_search)

    p = cmds.add_parser("canvass", parents=parents, help="plates seen near a place and time")
    add_place(p)
    add_window(p, required=True)
    p.add_argument("--camera", dest="cameras", action="append", default=None, help="repeatable")
    add_output(p)
    add_inquiry(p)
    p.set_defaults(handler=cmd_search, state=None)

    p = cmds.add_parser(
        "past",
        parents=parents,
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
    add_inquiry(p)
    p.set_defaults(handler=cmd_past)

    from plateflow._cli_cases import register as register_cases  # it imports this module

    register_cases(sub, parents)


def _common(p: argparse.ArgumentParser, *, window_required: bool) -> None:
    add_window(p, required=window_required)
    add_query_flags(p)
    add_output(p)
    add_inquiry(p)


def add_place(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lat", type=float, default=None, help="center latitude")
    p.add_argument("--lon", type=float, default=None, help="center longitude")
    p.add_argument("--radius-m", type=float, default=None, help="radius in metres")
    p.add_argument("--polygon", type=Path, default=None, help="GeoJSON file with a polygon")


def place_spec(args: argparse.Namespace, start: datetime, end: datetime) -> SearchSpec:
    center = None
    if args.lat is not None or args.lon is not None:
        if args.lat is None or args.lon is None:
            raise CliStoreError("give both --lat and --lon")
        center = (args.lat, args.lon)
    polygon = None
    if args.polygon is not None:
        try:
            polygon = orjson.loads(args.polygon.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CliStoreError(f"--polygon {args.polygon}: not readable GeoJSON ({exc})") from exc
        if isinstance(polygon, dict) and polygon.get("type") == "FeatureCollection":
            features = polygon.get("features") or [{}]
            polygon = features[0]
        if not isinstance(polygon, dict):
            raise CliStoreError(f"--polygon {args.polygon}: not a GeoJSON object")
    return SearchSpec.canvass(
        start, end, center=center, radius_m=args.radius_m, polygon=polygon, cameras=args.cameras
    )


def spec_from_args(args: argparse.Namespace) -> SearchSpec:
    """The search of ``plateflow search plate|partial|canvass`` (and ``hold place``)."""
    start, end = window(args)
    kind = args.search_command if hasattr(args, "search_command") else args.kind
    if kind == "plate":
        return SearchSpec.plate_history(
            args.plate,
            start,
            end,
            match=args.match,
            candidates=args.candidates,
            state=args.state,
            cameras=args.cameras,
        )
    if kind == "partial":
        return SearchSpec.partial(
            args.pattern,
            start,
            end,
            ocr_equivalents=args.ocr_equivalents,
            candidates=args.candidates,
            state=args.state,
            cameras=args.cameras,
        )
    return place_spec(args, start, end)


def store_of(settings: Settings) -> ReadStore:
    return ReadStore(settings.data_dir, settings.retention_days)


def with_alerts(
    store: ReadStore, frames: Iterable[pl.DataFrame], *, covert: bool, grouped: bool = False
) -> Iterator[pl.DataFrame]:
    """Each page with an ``alerts`` column: the alerts its reads raised, as JSON text."""
    for frame in frames:
        if frame.height == 0:
            continue
        if grouped:
            ids = frame["read_ids"].explode().drop_nulls().to_list()
            low, high = frame["first_seen"].min(), frame["last_seen"].max()
        else:
            ids = frame["read_id"].to_list()
            low, high = frame["ts"].min(), frame["ts"].max()
        assert isinstance(low, datetime) and isinstance(high, datetime)
        found = alerts_by_read(store, ids, low, high + timedelta(milliseconds=1), covert=covert)
        keys = frame["read_ids"].to_list() if grouped else [[i] for i in ids]
        texts = [
            orjson.dumps([a for key in group for a in found.get(key, [])]).decode()
            for group in keys
        ]
        yield frame.with_columns(alerts=pl.Series(texts, dtype=pl.String))


def deliver(
    args: argparse.Namespace,
    frames: Iterable[pl.DataFrame],
    total: int,
    schema: dict[str, pl.DataType],
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


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    try:
        spec = spec_from_args(args)
    except StoreQueryError as exc:
        raise CliStoreError(f"{exc} (flag --{(exc.field or 'start').replace('_', '-')})") from exc
    engine = engine_of(settings)
    store = store_of(settings)
    kind = spec.kind
    permission = "reads:canvass" if kind == "canvass" else "reads:search"
    newest = kind != "canvass" and not args.oldest_first

    def pages() -> Pages:
        return spec.pages(
            store,
            page_size=args.page_size,
            newest_first=newest,
            ocr_classes=settings.ocr_classes,
        )

    with records.audited(
        engine,
        inquiry(args),
        f"reads.{kind}",
        permission=permission,
        terms={**spec.terms(), "output": str(args.out) if args.out else "terminal"},
        client=CLIENT,
        min_description_length=settings.min_description_length,
    ) as access:
        total = pages().count()
        access.result_count = total
        covert = access.user.can(COVERT_PERMISSION)
    grouped = kind == "canvass"
    schema = CANVASS_SCHEMA if grouped else READ_RESULT_SCHEMA
    deliver(args, with_alerts(store, pages(), covert=covert, grouped=grouped), total, schema)
    return 0


def refuse(
    engine: Any,
    args: argparse.Namespace,
    action: str,
    reason: str,
    message: str,
    *,
    kind: str = "inquiry",
    case_number: str | None = None,
) -> NoReturn:
    """Audit a refusal decided before :func:`records.audited` runs, and raise it."""
    records.record_denied(
        engine,
        action,
        reason=f"{reason}: {message}",
        username=args.by,
        client=CLIENT,
        kind=kind,
        case_number=case_number or getattr(args, "case_number", None),
        event_number=args.event_number,
        description=args.description,
    )
    raise records.AccessDenied(message, reason=reason)


def user_of(engine: Any, args: argparse.Namespace, action: str, **audit: Any) -> records.User:
    """The user named by ``--by``; an unknown name is refused and audited."""
    try:
        return records.get_user(engine, args.by)
    except records.NotFoundError:
        msg = f"no user {args.by!r}; give --by a named user"
        refuse(engine, args, action, "unknown_user", msg, **audit)


def cmd_past(args: argparse.Namespace, settings: Settings) -> int:
    engine = engine_of(settings)
    store = store_of(settings)
    action = "reads.past"
    user = user_of(engine, args, action)
    if not list_visible(engine, args.hotlist, covert=user.can(COVERT_PERMISSION)):
        refuse(engine, args, action, "not_found", f"no hotlist {args.hotlist!r}")
    try:
        past = PastSearch.prepare(
            engine,
            args.hotlist,
            args.entry,
            days=args.days,
            state=args.state,
            ocr_classes=settings.ocr_classes,
        )
    except StoreQueryError as exc:
        raise CliStoreError(str(exc)) from exc
    if args.alert and not any(user.can(p) for p in _ENTRY_PERMISSIONS):
        msg = f"user {args.by!r} may not raise historical alerts (needs {_ENTRY_PERMISSIONS})"
        refuse(engine, args, action, "forbidden", msg)

    def pages() -> Iterator[pl.DataFrame]:
        for frame in past.pages(store, past.start, past.end, args.page_size):
            found = past.transform(frame)
            if found.height:
                yield found

    terms = {**past.terms(), "alert": args.alert}
    with records.audited(
        engine,
        inquiry(args),
        action,
        permission="reads:search",
        terms=terms,
        client=CLIENT,
        min_description_length=settings.min_description_length,
    ) as access:
        total = sum(frame.height for frame in pages())
        access.result_count = total
        covert = access.user.can(COVERT_PERMISSION)
    if args.alert:
        _publish(settings, past, pages())
    deliver(args, with_alerts(store, pages(), covert=covert), total, PAST_SCHEMA)
    return 0


def _publish(settings: Settings, past: PastSearch, frames: Iterable[pl.DataFrame]) -> None:
    import redis

    advisories = advisories_for(settings)
    now_ms = int(to_ms(datetime.now(timezone.utc)).timestamp() * 1000)
    published = 0
    with redis_url(settings, "api") as url:
        client = redis.Redis.from_url(url)
        try:
            for frame in frames:
                alerts = past.alerts(frame, advisories, now_ms)
                publish_historical(client, alerts, settings.alerts_log_maxlen)
                published += len(alerts)
        finally:
            client.close()
    out.print(f"published {published:,} historical alert(s)")
