"""The argparse pieces every command module builds its commands from.

A command with actions (``plateflow hotlist import``) keeps the action chosen in
``args.{command}_command``: :func:`plateflow._cli_session.act_as` names the command in the
audit record from those attributes, so :func:`command_group` is the one place they are named.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[..., int]


def command_group(
    sub: Any,
    name: str,
    help: str,
    description: str | None = None,
    *,
    metavar: str = "ACTION",
    parents: Sequence[argparse.ArgumentParser] = (),
    **subparsers: Any,
) -> Any:
    """Add command ``name`` to ``sub`` and return the subparsers its actions are added to;
    ``subparsers`` goes to ``add_subparsers`` (a custom ``action``, say)."""
    parser = sub.add_parser(name, parents=list(parents), help=help, description=description)
    return parser.add_subparsers(
        dest=f"{name}_command", metavar=metavar, required=True, **subparsers
    )


def command(
    cmds: Any,
    name: str,
    handler: Handler,
    parents: list[argparse.ArgumentParser],
    help: str,
    description: str | None = None,
    **defaults: Any,
) -> argparse.ArgumentParser:
    """Add the command ``name`` run by ``handler`` to ``cmds`` and return its parser, for its
    arguments. ``defaults`` are further attributes the handler reads (a kind, say); none may
    be the destination of an argument added later, which would take it as its default."""
    parser: argparse.ArgumentParser = cmds.add_parser(
        name, parents=parents, help=help, description=description
    )
    parser.set_defaults(handler=handler, **defaults)
    return parser
