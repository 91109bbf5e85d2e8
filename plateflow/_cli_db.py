"""``plateflow db``: the records database's schema migrations.

``plateflow db upgrade`` runs the migrations as the database's owner
(``PLATEFLOW_DATABASE_OWNER_URL``, a secret: never a flag); the application itself runs with a
role that may only read and write rows, so it cannot drop the append-only triggers. A SQLite
database is upgraded by every command anyway (one user owns the file).
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

import records
from plateflow._cli_parts import command, command_group
from plateflow.settings import Settings

out = Console()


def register(sub: Any) -> None:
    cmds = command_group(
        sub,
        "db",
        help="the records database's schema: upgrade, current revision",
        description="Schema migrations of the records database (Alembic revisions shipped "
        "with plateflow).",
    )
    command(
        cmds,
        "upgrade",
        cmd_upgrade,
        help="bring the records database to this plateflow's schema (as its owner)",
        description="Run every migration the database lacks, in one transaction, under a lock "
        "(processes that start together take turns). Connects with "
        "PLATEFLOW_DATABASE_OWNER_URL (the owner role; a secret, so no flag), else the "
        "database URL. A database made before migrations is recognised and upgraded with its "
        "rows.",
    )
    command(cmds, "current", cmd_current, help="show the database's revision and the one needed")


def cmd_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.database_owner_url or settings.effective_database_url
    was = records.upgrade(url)
    target = records.head()
    if was == target:
        out.print(f"records database already at revision {target}")
    else:
        out.print(f"records database upgraded from revision {was} to {target}")
    return 0


def cmd_current(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.database_owner_url or settings.effective_database_url
    engine = records.engine_for(url)
    try:
        at = records.current(engine)
    finally:
        engine.dispose()
    target = records.head()
    out.print(f"revision {at or '(empty)'}; this plateflow needs {target}")
    return 0 if at == target else 1
