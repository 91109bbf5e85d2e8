"""``plateflow redis acl``: give a configured Redis one ACL user per service.

The users, passwords and server come from the settings, never from flags: the admin connection
is ``PLATEFLOW_REDIS_URL``; each service's user and password are the ones in its
``PLATEFLOW_REDIS_<SERVICE>_URL`` (``redis://plateflow-ingest:PASSWORD@host:6379/0``), the
same variables the services connect with. ``--print`` writes an ``aclfile`` instead (password
hashes only) for a server configured from a file. The embedded Redis needs neither: it is
started with its own generated users.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, get_args
from urllib.parse import unquote, urlsplit

import redis
from rich.console import Console

from plateflow._cli_parts import command, command_group
from plateflow.embedded import Service
from plateflow.errors import PlateflowError
from plateflow.settings import Settings, env_name

out = Console()


class RedisAclError(PlateflowError):
    """The service users could not be derived from the settings or applied."""


def register(sub: Any) -> None:
    commands = command_group(
        sub, "redis", help="Redis administration: the services' ACL users", metavar="COMMAND"
    )
    acl = command(
        commands,
        "acl",
        cmd_acl,
        help="create or update each service's ACL user from PLATEFLOW_REDIS_<SERVICE>_URL",
        description="Apply ACL SETUSER for the ingest, flow and API users named (with their "
        "passwords) in PLATEFLOW_REDIS_INGEST_URL, _FLOW_URL and _API_URL, through the admin "
        "connection PLATEFLOW_REDIS_URL; then check that each one can log in.",
    )
    acl.add_argument(
        "--print",
        action="store_true",
        dest="print_file",
        help="print an aclfile (password hashes only) instead of applying it",
    )


def service_users(settings: Settings) -> dict[str, tuple[str, str]]:
    """Each service's ``(user, password)`` from its Redis URL setting."""
    users: dict[str, tuple[str, str]] = {}
    for service in get_args(Service):
        name = f"redis_{service}_url"
        url = getattr(settings, name)
        parts = urlsplit(url) if url else None
        if parts is None or not parts.username or not parts.password:
            msg = (
                f"{env_name(name)} must name the {service} service's ACL user and password, "
                f"e.g. redis://plateflow-{service}:PASSWORD@host:6379/0 (set it in the "
                "environment; passwords are never taken from flags)"
            )
            raise RedisAclError(msg)
        if parts.username == "default":
            msg = f"{env_name(name)} uses the 'default' user; give the {service} its own user"
            raise RedisAclError(msg)
        users[service] = (unquote(parts.username), unquote(parts.password))
    return users


def cmd_acl(args: argparse.Namespace, settings: Settings) -> int:
    from sinks import acl_file, apply_acl

    users = service_users(settings)
    if args.print_file:
        sys.stdout.write(acl_file(users))
        return 0
    if not settings.redis_url:
        msg = (
            "set PLATEFLOW_REDIS_URL to an admin connection of the Redis to configure (the "
            "embedded Redis creates its own users)"
        )
        raise RedisAclError(msg)
    admin = redis.Redis.from_url(settings.redis_url)
    try:
        apply_acl(admin, users)
    except redis.RedisError as exc:
        msg = f"could not apply the ACL users through PLATEFLOW_REDIS_URL: {exc}"
        raise RedisAclError(msg) from exc
    finally:
        admin.close()
    for service, (name, _) in users.items():
        client = redis.Redis.from_url(getattr(settings, f"redis_{service}_url"))
        try:
            client.ping()
        except redis.RedisError as exc:
            msg = f"the {service} user {name!r} was applied but cannot log in: {exc}"
            raise RedisAclError(msg) from exc
        finally:
            client.close()
        out.print(f"ACL user [bold]{name}[/] ({service}) applied and logs in")
    return 0
