"""``plateflow passwd`` and ``plateflow totp enrol``: a logged-in user's own account.

Passwords never travel on the command line. ``passwd`` takes the current password at a prompt
(or the first line of standard input with ``--password-stdin``) and the new one from
``PLATEFLOW_NEW_PASSWORD``, the file ``--new-password-file`` names, the next line of standard
input, or typed twice at a prompt. After an administrator's reset it is the one command a
session may run. ``totp enrol`` prints the provisioning URI of a new second factor once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

import service
from plateflow._cli_parts import command, command_group
from plateflow._cli_session import (
    CliSessionError,
    cli_client,
    closing_door,
    read_code,
    read_password,
    read_token,
)
from plateflow._cli_users import CliInputError, read_new_password
from plateflow.settings import Settings

out = Console()

NEW_PASSWORD_ENV = "PLATEFLOW_NEW_PASSWORD"
T = TypeVar("T")


def register(sub: Any) -> None:
    p = command(
        sub,
        "passwd",
        cmd_passwd,
        help="change your own password",
        description="Change the password of the logged-in user. The current password is "
        "typed (or the first line of stdin with --password-stdin); the new one comes from "
        f"{NEW_PASSWORD_ENV}, --new-password-file, the next line of stdin, or is typed twice. "
        "Your other sessions are closed.",
    )
    p.add_argument(
        "--password-stdin", action="store_true", help="read the passwords from stdin, one a line"
    )
    p.add_argument(
        "--new-password-file",
        type=Path,
        default=None,
        help="a file (readable by you only) whose first line is the new password",
    )

    cmds = command_group(sub, "totp", help="the TOTP second factor of your account")
    p = command(
        cmds,
        "enrol",
        cmd_totp_enrol,
        help="enrol a second factor; prints its provisioning URI once",
        description="Enrol the logged-in user in a TOTP second factor (your password proves "
        "it is you). The otpauth:// URI printed holds the secret: add it to an authenticator "
        "app now, it is never shown again. From then on `plateflow login --otp` asks for a code.",
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = command(
        cmds,
        "confirm",
        cmd_totp_confirm,
        help="confirm the second factor with a first code from the app",
        description="Finish enrolment with a code the app shows (typed, or the first line of "
        "stdin with --code-stdin); from then on login needs `--otp`.",
    )
    p.add_argument("--code-stdin", action="store_true", help="read the code from stdin")


def _token(settings: Settings) -> str:
    token = read_token(settings)
    if token is None:
        raise CliSessionError("log in first: `plateflow login`")
    return token


def _new_password(args: argparse.Namespace) -> str:
    path: Path | None = args.new_password_file
    if path is not None:
        try:
            line = next(iter(path.read_text().splitlines()), "").strip()
        except OSError as exc:
            raise CliInputError(f"cannot read --new-password-file {path}: {exc}") from exc
        if not line:
            raise CliInputError(f"--new-password-file {path} is empty")
        return line
    return read_new_password(from_stdin=args.password_stdin, env=NEW_PASSWORD_ENV)


def _own(settings: Settings, act: Callable[[service.Door, str], T]) -> T:
    """Run an act on the session's own account, with a door closed afterwards."""
    token = _token(settings)
    with closing_door(settings) as door:
        return act(door, token)


def cmd_passwd(args: argparse.Namespace, settings: Settings) -> int:
    current = read_password(args.password_stdin, prompt="current password: ")
    new = _new_password(args)
    user = _own(
        settings,
        lambda door, token: service.change_password(door, token, current, new, client=cli_client()),
    )
    out.print(f"password of [bold]{user.username}[/] changed; your other sessions are closed")
    return 0


def cmd_totp_enrol(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args.password_stdin)
    uri = _own(
        settings,
        lambda door, token: service.enrol_totp(door, token, password, client=cli_client()),
    )
    out.print("add this to your authenticator app now; it is not shown again:")
    out.print(uri, soft_wrap=True, highlight=False)
    out.print("then run `plateflow totp confirm` with a code the app shows")
    return 0


def cmd_totp_confirm(args: argparse.Namespace, settings: Settings) -> int:
    code = read_code(args.code_stdin)
    user = _own(
        settings, lambda door, token: service.confirm_totp(door, token, code, client=cli_client())
    )
    out.print(f"second factor of [bold]{user.username}[/] confirmed; log in with `--otp` now")
    return 0
