"""``plateflow settings``: every setting with its variable, value and source, secrets masked.

The command takes every setting's flag, so ``plateflow settings --partitions 8`` shows what a
flag would do before a long-running command is started with it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from rich.console import Console
from rich.table import Table

from plateflow._cli_parts import command
from plateflow.settings import FILE_SUFFIX, GROUPS, Settings, Source, env_name, setting_fields

out = Console()

_MASK = "***"


def register(sub: Any) -> None:
    p = command(
        sub,
        "settings",
        cmd_settings,
        help="list every setting: variable, value and where it came from (secrets masked)",
        description="List every setting with its PLATEFLOW_* variable, its value and its "
        "source: default, env (the variable), file (a secret read from the file its *_FILE "
        "variable names) or flag. Secrets and passwords in URLs are masked.",
    )
    p.add_argument("--json", action="store_true", help="one JSON array instead of a table")


def masked(value: Any, secret: bool) -> Any:
    """``value`` safe to show: a set secret becomes ``***``, a URL's password too. Tuples
    become lists and paths strings, so the result is plain JSON."""
    if secret:
        return _MASK if value else None
    if isinstance(value, tuple):
        return [masked(v, secret=False) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value:
        password = urlsplit(value).password
        if password:
            return value.replace(f":{password}@", f":{_MASK}@", 1)
    return value


def _rows(settings: Settings, sources: dict[str, Source]) -> list[dict[str, Any]]:
    rows = []
    for f in setting_fields():
        source = sources[f.name]
        rows.append(
            {
                "name": f.name,
                "group": f.metadata["group"],
                "variable": env_name(f.name),
                "value": masked(getattr(settings, f.name), f.metadata["secret"]),
                "source": source.kind,
                "where": source.where,
                "secret": f.metadata["secret"],
            }
        )
    order = list(GROUPS)
    return sorted(rows, key=lambda row: order.index(row["group"]))


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(value) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    from plateflow.cli import settings_overrides

    # main() has checked these already; loading again records where each value came from.
    loaded, sources = Settings.load_explained(None, **settings_overrides(args))
    rows = _rows(loaded, sources)
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    table = Table(title="plateflow settings (secrets masked)")
    for column in ("group", "setting", "variable", "value", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        variable = row["variable"]
        if row["secret"]:
            variable += f" or {variable}{FILE_SUFFIX}"
        where = f" {row['where']}" if row["source"] in ("file", "flag") else ""
        table.add_row(
            row["group"], row["name"], variable, _text(row["value"]), row["source"] + where
        )
    out.print(table)
    return 0
