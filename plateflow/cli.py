"""``plateflow`` command line: argparse + rich.

Each subcommand takes as flags only the settings it uses (``plateflow run --partitions 8``),
grouped as :data:`plateflow.settings.GROUPS` and shown in its ``--help`` with the ``PLATEFLOW_*``
variable and the default; :data:`COMMAND_SETTINGS` says which a command uses, and
``plateflow settings`` lists every setting with its value and source. A secret setting is never
a flag (only its variable or a ``*_FILE`` variable). Subcommands live in small modules that each
expose ``register(subparsers)``; handlers take ``(args, settings)`` and return an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.logging import RichHandler

from plateflow.errors import PlateflowError, SettingsError
from plateflow.settings import FILE_SUFFIX, GROUPS, Settings, env_name, setting_fields

#: Modules that add subcommands, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "plateflow._cli_flow",
    "plateflow._cli_api",
    "plateflow._cli_session",
    "plateflow._cli_account",
    "plateflow._cli_hotlist",
    "plateflow._cli_users",
    "plateflow._cli_db",
    "plateflow._cli_dispositions",
    "plateflow._cli_audit",
    "plateflow._cli_store",
    "plateflow._cli_transparency",
    "plateflow._cli_settings",
    "plateflow._cli_redis",
    "plateflow._cli_bench",
    "plateflow._cli_jobs",
)

#: A logged-in act (:mod:`plateflow._cli_session`): its session and justification rules.
_ACT = ("database", "audit", "inquiry")
_STORE = (*_ACT, "storage")

#: The settings each command takes as flags: groups of :data:`GROUPS` or single settings by
#: name. Every command also takes the ``general`` group (data directory, log level). A command
#: missing here takes every setting, so a new command works before it is listed (a test fails
#: until it is).
COMMAND_SETTINGS: dict[str, tuple[str, ...]] = {
    "run": ("redis", "database", "storage", "streams", "matching", "cluster"),
    "demo": ("redis", "database", "audit", "storage", "streams", "matching"),
    "simulate": ("redis", "database", "partitions", "hotlist_files"),
    "subscribe": ("api_url", "sse_heartbeat_s", *_ACT),
    "serve": tuple(GROUPS),
    "ingest file": ("redis", "partitions"),
    "ingest token add": ("ingest_tokens",),
    "ingest token list": ("ingest_tokens",),
    "ingest token revoke": ("ingest_tokens",),
    "login": ("database", "audit", "logins"),
    "logout": ("database", "audit"),
    "passwd": ("database", "logins"),
    "totp enrol": ("database", "logins"),
    "totp confirm": ("database", "logins"),
    "hotlist import": (*_ACT, "redis", "storage", "hotlists"),
    "hotlist add": (*_ACT, "redis"),
    "hotlist remove": (*_ACT, "redis"),
    "hotlist list": _ACT,
    "hotlist show": _ACT,
    "hotlist policy": (*_ACT, "redis", "storage", "hotlists"),
    "hotlist check": (*_ACT, "storage", "hotlists"),
    "users add": _ACT,
    "users train": _ACT,
    "users disable": _ACT,
    "users list": _ACT,
    "users roles": (),
    "users bootstrap": ("database", "audit"),
    "db upgrade": ("database",),
    "db current": ("database",),
    "dispositions move": ("database", "redis", "dispositions", "alerts_log_maxlen"),
    "dispositions current": ("database",),
    "dispositions lists": ("database",),
    "dispositions add-reason": ("database",),
    "dispositions add-action": ("database",),
    "dispositions retire-reason": ("database",),
    "dispositions retire-action": ("database",),
    "audit verify": _ACT,
    "audit log": _ACT,
    "audit report": _ACT,
    "search plate": (*_STORE, "ocr_classes"),
    "search partial": (*_STORE, "ocr_classes"),
    "search canvass": _STORE,
    "search past": (*_STORE, "ocr_classes", "redis", "alerts_log_maxlen", "alerts_log_keep_s"),
    "retention purge": ("database", "audit", "storage"),
    "retention compact": ("redis", "storage"),
    "retention status": ("storage",),
    "hold place": (*_STORE, "ocr_classes"),
    "hold release": _STORE,
    "hold list": _STORE,
    "evidence export": _STORE,
    "evidence verify": _ACT,
    "evidence custody": _ACT,
    "transparency publish": _ACT,
    "transparency designate": _ACT,
    "transparency show": ("database", "storage", "transparency_min_cell"),
    "settings": tuple(GROUPS),
    "redis acl": ("redis",),
    "bench target": ("redis", "partitions", "hotlist_files"),
    # the data directory (general) for the outcome file; the command run reads its own
    "job": (),
}

console = Console(stderr=True)

_PRECEDENCE = (
    "a flag overrides its PLATEFLOW_* variable, which overrides the default; "
    "`plateflow settings` shows every setting"
)


def _selected(uses: Iterable[str] | None) -> list[Any]:
    """The setting fields of ``uses`` (groups or names; ``None`` is all) plus ``general``."""
    fields = setting_fields()
    if uses is None:
        return fields
    wanted = {"general", *uses}
    names = {f.name for f in fields}
    unknown = sorted(wanted - names - set(GROUPS))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: neither a settings group nor a setting")
    return [f for f in fields if f.name in wanted or f.metadata["group"] in wanted]


def _shown_default(f: Any) -> str:
    default = f.default
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(str(x) for x in default) or "none"
    return "none" if default is None else str(default)


def add_settings(parser: argparse.ArgumentParser, uses: Iterable[str] | None = None) -> None:
    """Add the flags of the settings ``uses`` names (see :data:`COMMAND_SETTINGS`) to
    ``parser``, one argument group per settings group. Values stay raw strings; Settings
    parses them. Secrets get no flag: their group's description names their variables."""
    fields = _selected(uses)
    for group, title in GROUPS.items():
        members = [f for f in fields if f.metadata["group"] == group]
        if not members:
            continue
        secrets = [f for f in members if f.metadata["secret"]]
        notes = [_PRECEDENCE] if group == "general" else []
        notes += [
            f"{f.metadata['help']}: a secret, so no flag: set {env_name(f.name)} or "
            f"{env_name(f.name)}{FILE_SUFFIX} (the path of a file holding it)"
            for f in secrets
        ]
        arguments = parser.add_argument_group(f"settings: {title}", "; ".join(notes) or None)
        for f in members:
            if f.metadata["secret"]:
                continue
            arguments.add_argument(
                "--" + f.name.replace("_", "-"),
                dest=f"setting_{f.name}",
                metavar=f.name.upper(),
                default=None,
                help=f"{f.metadata['help']} [{env_name(f.name)}; default {_shown_default(f)}]",
            )


class _SettingsOutOfUsage(argparse.HelpFormatter):
    """Usage lines without the setting flags: their groups list them below the options."""

    def add_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[Any],
        prefix: str | None = None,
    ) -> None:
        kept = [a for a in actions if not a.dest.startswith("setting_")]
        super().add_usage(usage, kept, groups, prefix)


def _without_settings_in_usage(base: Any) -> Any:
    # Mixed into the command's own formatter, so a command's choice (raw text...) is kept.
    return type(f"{base.__name__}WithoutSettings", (_SettingsOutOfUsage, base), {})


def command_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every runnable command below ``parser`` as ``("hold place", its parser)``."""
    # argparse has no public way to list subparsers; _actions has been stable since 3.2.
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield " ".join(path), parser
    for action in groups:
        for name, child in action.choices.items():
            yield from command_parsers(child, (*path, name))


def settings_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The setting flags given on the command line, by setting name."""
    return {
        key[len("setting_") :]: value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = settings_overrides(args)
    for name, value in overrides.items():
        # A password in a URL flag would show in the process list and the shell history.
        if "://" in value and urlsplit(value).password:
            msg = (
                f"--{name.replace('_', '-')} carries a password; a flag is visible to every "
                f"user of the machine: set {env_name(name)} instead"
            )
            raise SettingsError(msg)
    return Settings.load(None, **overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateflow",
        description="plateflow: ALPR back end: hotlist matching, alerts, audited storage.",
        epilog="Each command's --help lists the settings it uses; `plateflow settings` lists "
        "them all with their values and where each came from.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        module: Any = importlib.import_module(name)
        module.register(sub)
    for name, command in command_parsers(parser):
        add_settings(command, COMMAND_SETTINGS.get(name))
        command.formatter_class = _without_settings_in_usage(command.formatter_class)
    return parser


def _unrecognized(extra: list[str]) -> str:
    """argparse's complaint, plus why for setting flags a command does not take."""
    flags = {"--" + f.name.replace("_", "-"): f for f in setting_fields()}
    notes = []
    shown = list(extra)
    for i, arg in enumerate(extra):
        flag = arg.split("=", 1)[0]
        f = flags.get(flag)
        if f is None:
            continue
        if f.metadata["secret"]:
            # The typed secret is not repeated on the screen (or in a captured log).
            shown[i] = flag
            if flag == arg and i + 1 < len(extra):
                shown[i + 1] = "***"
        variable = env_name(f.name)
        if f.metadata["secret"]:
            notes.append(
                f"{f.name} is a secret and never a flag: set {variable} or {variable}{FILE_SUFFIX}"
            )
            continue
        users = [name for name, uses in COMMAND_SETTINGS.items() if f in _selected(uses)]
        notes.append(
            f"this command does not use {f.name} (these do: {', '.join(users)}); "
            f"{variable} sets it for every command"
        )
    return "; ".join([f"unrecognized arguments: {' '.join(shown)}", *notes])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(_unrecognized(extra))
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
