"""``plateflow login|logout`` and the session every data command acts under.

A person's command-line access to ALPR data passes the same door as the HTTP API
(:class:`service.Door`): ``plateflow login`` checks the password and opens a session in the
records database; its token is cached in a file only the user can read, and every command that
reads or changes records, hotlists, reads or alerts acts as that session's user, audited with
the client ``cli:{os user}@{host}``. Without a session such a command is refused (and the
attempt audited) with "log in first: `plateflow login`".

Where the token lives: ``$PLATEFLOW_SESSION_TOKEN`` when set (for scripts; nothing is
written), else ``$XDG_STATE_HOME/plateflow/sessions/{key}.token`` (``~/.local/state`` when
``XDG_STATE_HOME`` is unset), mode 0600 in a 0700 directory. ``key`` is a hash of the records
database URL, because a session exists in one database only: one login per database, and no
database URL (it may hold a password) in a file name.

Operator commands that are nobody's data access (``run``, ``serve``, ``ingest``,
``simulate``, ``demo``, ``retention purge|compact|status``, ``users bootstrap`` on an empty
system) need no session and record the OS identity, :func:`os_identity`.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

import records
import service
from plateflow._cli_parts import command
from plateflow.embedded import redis_client
from plateflow.errors import PlateflowError
from plateflow.settings import Settings

out = Console()

__all__ = [
    "SESSION_ENV",
    "act_as",
    "add_why",
    "cli_client",
    "closing_door",
    "door_of",
    "door_with_redis",
    "logged_in",
    "logged_in_with_redis",
    "os_identity",
    "read_code",
    "read_password",
    "read_token",
    "register",
    "token_path",
]

#: A session token for scripts: used instead of the cached file, never written.
SESSION_ENV = "PLATEFLOW_SESSION_TOKEN"
LOGIN_FIRST = "log in first: `plateflow login`"


class CliSessionError(PlateflowError):
    """The command-line session cannot be opened, read or closed as asked."""


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cli_client() -> str:
    """The client recorded in the audit log for a command-line act."""
    return f"cli:{_os_user()}@{socket.gethostname()}"


def os_identity() -> str:
    """Who an operator command (no session) is recorded as: the OS user and host."""
    return f"os:{_os_user()}@{socket.gethostname()}"


def token_path(settings: Settings) -> Path:
    """The cached session token's file for the records database ``settings`` names."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    key = hashlib.sha256(settings.effective_database_url.encode()).hexdigest()[:16]
    return Path(state) / "plateflow" / "sessions" / f"{key}.token"


def _write_token(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temp, 0o600)  # in case the umask or an old file left other bits
    os.replace(temp, path)


def read_token(settings: Settings) -> str | None:
    """The session token: ``$PLATEFLOW_SESSION_TOKEN``, else the cached file (None if none)."""
    given = os.environ.get(SESSION_ENV, "").strip()
    if given:
        return given
    path = token_path(settings)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        msg = f"{path} is readable by other users; delete it and log in again"
        raise CliSessionError(msg)
    return text or None


def door_of(settings: Settings, redis_client: Any = None) -> service.Door:
    """The service's door on the database and data directory ``settings`` name."""
    config = service.ServiceConfig.pick(settings)
    return service.Door.open(settings.effective_database_url, config, redis=redis_client)


@contextlib.contextmanager
def closing_door(settings: Settings) -> Iterator[service.Door]:
    """:func:`door_of`, its database connections closed when the block ends."""
    door = door_of(settings)
    try:
        yield door
    finally:
        door.engine.dispose()


@contextlib.contextmanager
def door_with_redis(settings: Settings) -> Iterator[service.Door]:
    """:func:`door_of` with a Redis client (the embedded server when none is configured), for
    acts that publish: hotlist changes, historical alerts."""
    with redis_client(settings, "api") as client:
        yield door_of(settings, client)


def add_why(p: argparse.ArgumentParser, *, case_flag: bool = True) -> None:
    """The justification flags (427.3(c))."""
    group = p.add_argument_group("justification (427.3(c): a case or event number, else why)")
    if case_flag:
        group.add_argument("--case-number", default=None, help="case number the act is for")
    group.add_argument("--event-number", default=None, help="event (CAD) number, if no case")
    group.add_argument(
        "--description", default=None, help="without a case or event number: why (long enough)"
    )


def why_of(args: argparse.Namespace, case_number: str | None = None) -> service.Justification:
    return service.Justification(
        case_number=case_number or getattr(args, "case_number", None),
        event_number=getattr(args, "event_number", None),
        description=getattr(args, "description", None),
    )


def act_as(
    door: service.Door,
    act: service.Act,
    settings: Settings,
    args: argparse.Namespace,
    *,
    case_number: str | None = None,
) -> service.Actor:
    """The logged-in actor for ``act``, checked (session, permission, training,
    justification) and every refusal audited; without a session: "log in first"."""
    command = " ".join(
        str(getattr(args, key))
        for key in ("command", *_subcommand_keys(args))
        if getattr(args, key, None)
    )
    return door.enter(
        act,
        read_token(settings),
        why=why_of(args, case_number),
        client=cli_client(),
        origin={"command": command},
        login_hint=LOGIN_FIRST,
    )


def logged_in(
    settings: Settings,
    args: argparse.Namespace,
    act: service.Act,
    *,
    case_number: str | None = None,
) -> tuple[service.Door, service.Actor]:
    """The door on ``settings`` and the logged-in actor for ``act`` (see :func:`act_as`)."""
    door = door_of(settings)
    return door, act_as(door, act, settings, args, case_number=case_number)


@contextlib.contextmanager
def logged_in_with_redis(
    settings: Settings, args: argparse.Namespace, act: service.Act
) -> Iterator[tuple[service.Door, service.Actor]]:
    """:func:`logged_in` on :func:`door_with_redis`, for acts that publish."""
    with door_with_redis(settings) as door:
        yield door, act_as(door, act, settings, args)


def _subcommand_keys(args: argparse.Namespace) -> list[str]:
    return sorted(key for key in vars(args) if key.endswith("_command"))


# -- login and logout ---------------------------------------------------------------------------


def register(sub: Any) -> None:
    p = command(
        sub,
        "login",
        cmd_login,
        help="open a session: every data command acts as you, audited",
        description="Check your password and open a session in the records database. The "
        f"token is cached in a file only you can read (or set {SESSION_ENV} instead); "
        "`plateflow logout` closes it.",
    )
    p.add_argument("username", nargs="?", default=None, help="default: your OS login name")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (and with --otp the code, on the next line) from stdin",
    )
    p.add_argument(
        "--otp", action="store_true", help="ask for the one-time code of your second factor"
    )
    command(sub, "logout", cmd_logout, help="close your session")


def read_password(from_stdin: bool, *, prompt: str = "password: ") -> str:
    """A password: the next line of standard input, or typed at a prompt (never a flag)."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliSessionError("no password on standard input")
        return line
    if not sys.stdin.isatty():
        raise CliSessionError("no terminal to type the password at: use --password-stdin")
    return getpass.getpass(prompt)


def read_code(from_stdin: bool) -> str:
    """A one-time code: the next line of standard input, or typed at a prompt."""
    if from_stdin:
        return sys.stdin.readline().strip()
    if not sys.stdin.isatty():
        raise CliSessionError("no terminal to type the one-time code at: use --password-stdin")
    return getpass.getpass("one-time code: ").strip()


def cmd_login(args: argparse.Namespace, settings: Settings) -> int:
    username = args.username or _os_user()
    password = read_password(args.password_stdin)
    code = read_code(args.password_stdin) if args.otp else None
    with closing_door(settings) as door:
        session = service.login(door, username, password, client=cli_client(), totp_code=code)
    path = token_path(settings)
    _write_token(path, session.token)
    until = records.iso_utc(session.expires_at_ms)
    out.print(f"logged in as [bold]{session.user.username}[/] until {until} (token in {path})")
    return 0


def cmd_logout(args: argparse.Namespace, settings: Settings) -> int:
    token = read_token(settings)
    if token is None:
        out.print("no session to close")
        return 0
    with closing_door(settings) as door:
        service.logout(door, token, client=cli_client())
    token_path(settings).unlink(missing_ok=True)
    out.print("logged out")
    return 0
