"""``plateflow users``: named users, roles, training, and the first-run administrator.

Passwords never travel on the command line (where ``ps`` and shell history would keep them):
they are typed at a prompt, read from standard input with ``--password-stdin``, or, for the
unattended first run only, taken from ``PLATEFLOW_BOOTSTRAP_PASSWORD``.

Administration is done by the logged-in administrator through the service's door, with a
justification, exactly as over the API; only ``bootstrap`` (the first administrator, on a
system without one) needs no session.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import date, timedelta
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

import records
import service
from plateflow._cli_parts import command, command_group
from plateflow._cli_session import add_why, door_of, logged_in, os_identity, read_password
from plateflow.errors import PlateflowError
from plateflow.settings import Settings
from service import Acts

out = Console()

BOOTSTRAP_ENV = "PLATEFLOW_BOOTSTRAP_PASSWORD"


class CliInputError(PlateflowError):
    """What was typed (or not typed) at the command line cannot be used."""


def date_arg(text: str) -> date:
    """An argparse ``type``: a calendar date like 2026-10-01."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-10-01") from exc


def read_new_password(*, from_stdin: bool, env: str | None = None) -> str:
    """A new password: from ``env`` if set, from standard input, or typed twice at a prompt."""
    if env and os.environ.get(env):
        return os.environ[env]
    if from_stdin:
        return read_password(from_stdin=True)
    if not sys.stdin.isatty():
        where = f"set {env} or " if env else ""
        msg = f"no terminal to type a password at: {where}use --password-stdin"
        raise CliInputError(msg)
    first = getpass.getpass("new password: ")
    problems = records.password_problems(first)
    if problems:
        raise CliInputError("password refused: it " + "; it ".join(problems))
    if getpass.getpass("again: ") != first:
        raise CliInputError("the two passwords differ; nothing was changed")
    return first


def register(sub: Any) -> None:
    cmds = command_group(
        sub,
        "users",
        help="named users, roles and training (427.2.1, 427.3(e)(f))",
        description="Manage the named, authorised and trained users of plateflow.",
    )

    p = command(cmds, "add", cmd_add, help="add a user")
    p.add_argument("username")
    p.add_argument("--name", required=True, help="full name")
    p.add_argument("--agency", required=True, help="employing agency")
    p.add_argument("--job-title", default="", help="job title")
    p.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=records.ROLES,
        help="a role (repeat for several); see `plateflow users roles`",
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add_why(p)

    p = command(cmds, "train", cmd_train, help="record completed training")
    p.add_argument("username")
    p.add_argument("--course", required=True, help="course name, e.g. 'ALPR policy and use'")
    p.add_argument(
        "--completed", type=date_arg, default=None, help="date completed (default today)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--expires", type=date_arg, default=None, help="date the training lapses")
    group.add_argument("--valid-days", type=int, default=None, help="days the training lasts")
    add_why(p)

    p = command(cmds, "disable", cmd_disable, help="disable a user (never deleted)")
    p.add_argument("username")
    p.add_argument("--reason", required=True, help="why (goes into the audit log)")
    add_why(p)

    p = command(cmds, "list", cmd_list, help="list users with roles and training")
    add_why(p)

    command(cmds, "roles", cmd_roles, help="print what each role may do")

    p = command(
        cmds,
        "bootstrap",
        cmd_bootstrap,
        help="first run: create the administrator",
        description=f"Create the first administrator. There is no default password: it is "
        f"typed at a prompt, or taken from {BOOTSTRAP_ENV} for an unattended install, and "
        "refused if weak. Refused once an active administrator exists. --course records the "
        "administrator's completed ALPR training (427.3(f)), without which they cannot act.",
    )
    p.add_argument("--username", default="admin")
    p.add_argument("--name", required=True, help="full name of the administrator")
    p.add_argument("--agency", required=True)
    p.add_argument("--job-title", default="ALPR system administrator")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--course", default=None, help="the ALPR training the administrator completed")
    p.add_argument("--completed", type=date_arg, default=None, help="when (default today)")
    p.add_argument("--valid-days", type=int, default=365, help="days the training lasts")


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.USER_ADD)
    password = read_new_password(from_stdin=args.password_stdin)
    new = service.NewUser(args.username, args.name, args.agency, args.job_title, tuple(args.roles))
    user = service.add_user(door, actor, new, password=password)
    out.print(
        f"added [bold]{user.username}[/] ({', '.join(user.roles)}); record their "
        f"training with `plateflow users train {user.username} --course ...`"
    )
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.TRAINING_RECORD)
    completed = args.completed or date.today()
    expires = args.expires
    if args.valid_days is not None:
        expires = completed + timedelta(days=args.valid_days)
    record = service.record_training(
        door, actor, args.username, course=args.course, completed_on=completed, expires_on=expires
    )
    until = record.expires_on.isoformat() if record.expires_on else "no expiry"
    out.print(f"recorded {record.course!r} for {record.username}: {completed} ({until})")
    return 0


def cmd_disable(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.USER_DISABLE)
    user = service.disable_user(door, actor, args.username, reason=args.reason)
    out.print(f"disabled {user.username}; their sessions are closed")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    door, actor = logged_in(settings, args, Acts.USER_LIST)
    found = service.list_users(door, actor)
    untrained = {u.username for u in records.users_without_current_training(door.engine)}
    table = Table("username", "name", "agency", "job title", "roles", "status", "training")
    for user in found:
        status = "active" if user.active else f"disabled ({user.disabled_reason})"
        courses = records.training_records(door.engine, user.username)
        last = courses[-1] if courses else None
        training = (
            "none recorded"
            if last is None
            else (f"{last.course}, until {last.expires_on or 'no expiry'}")
        )
        if user.username in untrained:
            training = f"[red]NOT CURRENT[/] ({training})"
        table.add_row(
            user.username,
            user.name,
            user.agency,
            user.job_title,
            ", ".join(user.roles),
            status,
            training,
        )
    out.print(table)
    return 0


def cmd_roles(args: argparse.Namespace, settings: Settings) -> int:
    out.print(Markdown(records.role_table_markdown()))
    return 0


def cmd_bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    password = read_new_password(from_stdin=args.password_stdin, env=BOOTSTRAP_ENV)
    engine = door_of(settings).engine
    user = records.bootstrap_admin(
        engine,
        username=args.username,
        name=args.name,
        agency=args.agency,
        job_title=args.job_title,
        password=password,
    )
    trained = ""
    if args.course:
        completed = args.completed or date.today()
        records.record_training(
            engine,
            user.username,
            course=args.course,
            completed_on=completed,
            expires_on=completed + timedelta(days=args.valid_days),
            by=os_identity(),
        )
        trained = f", trained in {args.course!r}"
    out.print(
        f"administrator [bold]{user.username}[/] created{trained}; log in with "
        f"`plateflow login {user.username}`, then add users with `plateflow users add`"
    )
    return 0
