"""``plateflow ingest token add|list|revoke``: the camera ingest tokens file.

A token is bound to the cameras it may post for (``--camera``, repeated, for an ALPR agent that
serves several), and its id is recorded with every read it posts. The file holds only each
token's SHA-256 (:mod:`plateflow._ingest_tokens`), so ``add`` prints the new token once: give it
to the camera and keep no other copy. The API re-reads the file when it changes, so adding or
revoking a token needs no restart.

These commands edit a file, not the records: who may write the tokens file (or the secret it is
mounted from) administers camera ingest, as whoever holds the Redis ACL file administers Redis.
The file is ``PLATEFLOW_INGEST_TOKENS_FILE`` or ``--file``; it is written atomically, mode 0600.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from plateflow._cli_parts import command, command_group
from plateflow._ingest_tokens import ANY_CAMERA, IngestTokens, new_token
from plateflow._redis_files import write_private
from plateflow.errors import PlateflowError
from plateflow.settings import Settings

out = Console()
err = Console(stderr=True)


class TokenFileError(PlateflowError):
    """The tokens file cannot be found, read or changed as asked."""


def register(cmds: Any) -> None:
    """Add ``token add|list|revoke`` under the ``ingest`` command's subparsers ``cmds``."""
    acts = command_group(
        cmds,
        "token",
        help="camera ingest tokens: each bound to the cameras it may post for",
        description="Manage the ingest tokens file (PLATEFLOW_INGEST_TOKENS_FILE or --file). "
        "The API re-reads it when it changes: no restart.",
    )
    p = command(
        acts,
        "add",
        cmd_add,
        help="issue a token for one camera or one agent's cameras; prints it once",
    )
    p.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="CAMERA_ID",
        help="a camera id the token may post reads for (repeat for an agent's cameras; "
        f"{ANY_CAMERA!r} for any camera)",
    )
    p.add_argument("--agent", default=None, help="the ALPR agent the token is issued to")
    p.add_argument(
        "--id",
        dest="token_id",
        default=None,
        help="the token's id, recorded with every read (default: the agent, or the camera)",
    )
    _file_arg(p)
    p = command(acts, "list", cmd_list, help="the tokens: id, cameras, agent (no hashes)")
    _file_arg(p)
    p = command(acts, "revoke", cmd_revoke, help="remove a token: it stops working at once")
    p.add_argument("token_id", metavar="ID", help="the id of the token to revoke")
    _file_arg(p)


def _file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--file",
        type=Path,
        default=None,
        help="the tokens file (default: PLATEFLOW_INGEST_TOKENS_FILE)",
    )


def _path(args: argparse.Namespace, settings: Settings) -> Path:
    path = args.file or settings.ingest_tokens.path
    if path is None:
        msg = (
            "no tokens file: set PLATEFLOW_INGEST_TOKENS_FILE to its path (the API reads it "
            "from there) or pass --file PATH"
        )
        raise TokenFileError(msg)
    return Path(path)


def _load(path: Path) -> IngestTokens:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return IngestTokens((), path)
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"cannot read the tokens file {path}: {exc}") from exc
    try:
        return IngestTokens.parse(text).at(path)
    except ValueError as exc:
        raise TokenFileError(f"the tokens file {path} is not usable: {exc}; fix it first") from exc


def _free_id(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from api import generate_ingest_token

    cameras = [c.strip() for c in args.camera if c.strip()]
    if not cameras:
        msg = (
            "give --camera CAMERA_ID (repeat it for an agent's cameras, or --camera '*' for a "
            "token that may post for any camera)"
        )
        raise TokenFileError(msg)
    path = _path(args, settings)
    tokens = _load(path)
    base = args.token_id or args.agent or (cameras[0] if len(cameras) == 1 else None)
    if base is None:
        raise TokenFileError("a token for several cameras needs --agent NAME or --id ID")
    token_id = args.token_id if args.token_id else _free_id(base, tokens.ids())
    secret = generate_ingest_token()
    try:
        entry = new_token(secret, token_id, None if ANY_CAMERA in cameras else cameras, args.agent)
        tokens = tokens.adding(entry)
    except ValueError as exc:
        raise TokenFileError(f"cannot add the token: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, tokens.text())
    where = "any camera" if entry.cameras is None else ", ".join(sorted(entry.cameras))
    err.print(
        f"ingest token [bold]{token_id}[/] added to {path} for {where}; it is shown once, "
        "below (send it in the X-Plateflow-Token header):",
        highlight=False,
    )
    print(secret)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    path = _path(args, settings)
    tokens = _load(path)
    table = Table(title=f"ingest tokens in {path}")
    for name in ("id", "cameras", "agent", "created"):
        table.add_column(name)
    for t in tokens.tokens:
        cameras = ANY_CAMERA if t.cameras is None else ", ".join(sorted(t.cameras))
        table.add_row(t.token_id, cameras, t.agent or "", t.created or "")
    out.print(table)
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    path = _path(args, settings)
    try:
        tokens = _load(path).without(args.token_id)
    except ValueError as exc:
        raise TokenFileError(f"cannot revoke: {exc}") from exc
    write_private(path, tokens.text())
    err.print(f"ingest token {args.token_id} revoked in {path}", highlight=False)
    return 0
