"""The argparse pieces every command module builds its commands from.

A command with actions (``plateflow hotlist import``) keeps the action chosen in
``args.{command}_command``: :func:`plateflow._cli_session.act_as` names the command in the
audit record from those attributes, so :func:`command_group` is the one place they are named.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Handler = Callable[..., int]


def command_group(
    sub: Any, name: str, *, metavar: str = "ACTION", action: Any = None, **parser: Any
) -> Any:
    """Add the command ``name`` to ``sub`` and return the subparsers its actions are added to.
    ``parser`` goes to ``add_parser`` (help, description); ``action`` is a custom
    subparsers action."""
    group = sub.add_parser(name, **parser)
    custom = {} if action is None else {"action": action}
    return group.add_subparsers(dest=f"{name}_command", metavar=metavar, required=True, **custom)


def command(
    cmds: Any,
    name: str,
    handler: Handler,
    *,
    defaults: dict[str, Any] | None = None,
    **parser: Any,
) -> argparse.ArgumentParser:
    """Add the command ``name`` run by ``handler`` to ``cmds`` and return its parser, for its
    arguments; ``parser`` goes to ``add_parser`` (help, description). ``defaults`` are further
    attributes the handler reads (a kind, say): none may be the destination of an argument
    added later, which would take it as its default."""
    made: argparse.ArgumentParser = cmds.add_parser(name, **parser)
    made.set_defaults(handler=handler, **(defaults or {}))
    return made
