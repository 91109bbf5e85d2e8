"""``plateflow`` command line: argparse + rich.

Every setting of :class:`plateflow.settings.Settings` is a flag on every subcommand
(``--partitions 8``), shown in ``--help`` with its ``PLATEFLOW_*`` variable. Subcommands live in
small modules that each expose ``register(subparsers, parents)``; handlers take
``(args, settings)`` and return an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

from plateflow.errors import PlateflowError
from plateflow.settings import Settings, env_name, setting_fields

#: Modules that add subcommands, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "plateflow._cli_flow",
    "plateflow._cli_api",
    "plateflow._cli_hotlist",
    "plateflow._cli_users",
    "plateflow._cli_audit",
    "plateflow._cli_store",
    "plateflow._cli_bench",
)

console = Console(stderr=True)


def settings_parser() -> argparse.ArgumentParser:
    """A parent parser with one ``--flag`` per setting (raw strings; Settings parses them)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings (flag, else environment variable, else default)")
    for f in setting_fields():
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(str(x) for x in default) or "none"
        shown = "***" if f.metadata["secret"] else default
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f"setting_{f.name}",
            metavar=f.name.upper(),
            default=None,
            help=f"{f.metadata['help']} [env {env_name(f.name)}; default {shown}]",
        )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        key[len("setting_") :]: value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }
    return Settings.load(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateflow",
        description="plateflow: ALPR back end: hotlist matching, alerts, audited storage.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = [settings_parser()]
    for name in _COMMAND_MODULES:
        module: Any = importlib.import_module(name)
        module.register(sub, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except PlateflowError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=True)],
    )
    if settings.retention_override and settings.retention_days < 365:
        logging.getLogger("plateflow").warning(
            "retention override: reads kept %d days, below the policy minimum of 365 (427.4)",
            settings.retention_days,
        )
    try:
        code: int = args.handler(args, settings)
    except PlateflowError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
