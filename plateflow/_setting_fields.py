"""The building blocks of :class:`plateflow.settings.Settings`: the groups settings are shown
in, the parsers that turn a variable's text into a value (each raises ``ValueError`` saying what
it accepts), and :func:`_setting`, which declares a field. Imports nothing of the project but
:mod:`plateflow.errors` and the ingest-token table, like :mod:`plateflow.settings`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from plateflow._ingest_tokens import IngestTokens

#: The groups settings are shown in, in this order, with their titles. A command's help shows
#: only the groups (or single settings) it uses.
GROUPS: dict[str, str] = {
    "general": "general",
    "redis": "Redis, the stream and alert bus",
    "database": "records database",
    "audit": "audit log keys and head export (427.5)",
    "storage": "read store and retention (427.4)",
    "streams": "read streams and the alert log",
    "matching": "hotlists and matching",
    "hotlists": "hotlist administration",
    "api": "HTTP API and camera ingest",
    "logins": "logins and sessions",
    "inquiry": "inquiries (427.3(c))",
    "dispositions": "alert dispositions: verification deadlines and undo (427.3(g))",
    "cluster": "flow cluster (one process per StatefulSet pod)",
    "transparency": "the public transparency page (427.2.1(g))",
}


#: A number a setting holds.
_Number = TypeVar("_Number", int, float)


def _in_range(
    convert: Callable[[str], _Number], lo: _Number, hi: _Number, accepts: str
) -> Callable[[str], _Number]:
    """A parser of the numbers ``convert`` reads, from ``lo`` to ``hi``; ``accepts`` says so."""

    def parse(raw: str) -> _Number:
        try:
            value = convert(raw)
        except ValueError as exc:
            raise ValueError(accepts) from exc
        if not lo <= value <= hi:
            raise ValueError(accepts)
        return value

    return parse


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    return _in_range(int, lo, hi, f"a whole number from {lo} to {hi}")


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    return _in_range(float, lo, hi, f"a number from {lo:g} to {hi:g}")


def _redis_url(raw: str) -> str | None:
    if raw == "":
        return None
    scheme = urlsplit(raw).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError("a redis://, rediss:// or unix:// URL, or empty for the embedded Redis")
    return raw


def _fsync(raw: str) -> str:
    if raw not in ("everysec", "always"):
        raise ValueError("everysec or always")
    return raw


def _database_url(raw: str) -> str | None:
    if raw == "":
        return None
    scheme = urlsplit(raw).scheme.split("+")[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(
            "a SQLAlchemy URL such as sqlite:///path/plateflow.db or "
            "postgresql+psycopg://user@host:5432/db, or empty for SQLite in the data directory"
        )
    if scheme == "postgres":
        raw = "postgresql" + raw[len("postgres") :]
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://") :]
    return raw


def _path(raw: str) -> Path:
    if not raw:
        raise ValueError("a directory path")
    return Path(raw)


def _optional_file(raw: str) -> Path | None:
    if raw == "":
        return None
    path = Path(raw)
    if not path.is_file():
        raise ValueError(f"an existing file (no file at {raw})")
    return path


def _files(raw: str) -> tuple[Path, ...]:
    paths = tuple(Path(p.strip()) for p in raw.split(",") if p.strip())
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(
            f"a comma-separated list of existing files (missing: {', '.join(missing)})"
        )
    return paths


def _secret_list(minimum: int, what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        # Commas in a variable, one a line in a secret file; a secret never holds a space.
        values = tuple(t for t in re.split(r"[,\s]+", raw) if t)
        if any(len(t) < minimum for t in values):
            raise ValueError(f"{what} of at least {minimum} characters each, separated by commas")
        return values

    return parse


def _audit_key(raw: str) -> str | None:
    if len(raw) < 32:
        raise ValueError("a secret of at least 32 characters (secrets.token_urlsafe(32))")
    return raw


_audit_keys = _secret_list(32, "keys")


def _tokens(raw: str) -> IngestTokens:
    return IngestTokens.parse(raw)


def _tokens_at(value: IngestTokens, path: Path) -> IngestTokens:
    return value.at(path)


def _proxies(raw: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    if items == ("*",):
        return items
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(
                "comma-separated IP addresses or networks of the proxies in front (e.g. "
                f"10.0.0.5,10.1.0.0/16), or * for any; {item!r} is neither"
            ) from exc
    return items


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true or false")


def _optional_secret(raw: str) -> str | None:
    key = raw.strip()
    if not key:
        return None
    if len(key) < 32:
        raise ValueError("32 or more random characters (e.g. `openssl rand -base64 32`)")
    return key


def _ocr_classes(raw: str) -> tuple[str, ...]:
    groups = tuple(g.strip().upper() for g in raw.split(",") if g.strip())
    seen: set[str] = set()
    for g in groups:
        if len(g) < 2 or not g.isalnum():
            raise ValueError(
                "comma-separated groups of two or more letters/digits, e.g. 0ODQ,1I,8B"
            )
        if seen & set(g):
            raise ValueError("groups that do not share a character (each character in one group)")
        seen |= set(g)
    return groups


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("one of DEBUG, INFO, WARNING, ERROR")
    return level


def _host(raw: str) -> str:
    if not raw:
        raise ValueError("a host name or address to bind")
    return raw


def _tile_url(raw: str) -> str:
    if raw and ("{z}" not in raw or not re.fullmatch(r"https?://[^\s'\";,]+", raw)):
        raise ValueError("an http(s) tile URL template with {z}, {x} and {y}, or empty for none")
    return raw


def _image_sources(raw: str) -> tuple[str, ...]:
    sources = tuple(s.strip() for s in raw.split(",") if s.strip())
    if not all(re.fullmatch(r"https?:(//[A-Za-z0-9.*-]+(:\d+)?)?", s) for s in sources):
        raise ValueError("comma-separated http:, https: or origins like https://cams.example:8443")
    return sources


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("an http:// or https:// URL such as http://127.0.0.1:8000")
    return raw.rstrip("/")


def _dns_label(raw: str) -> str:
    if raw and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", raw):
        raise ValueError("a DNS label (lower-case letters, digits and '-'), or empty")
    return raw


def _setting(
    default: Any,
    parse: Callable[[str], Any],
    help: str,
    *,
    group: str,
    secret: bool = False,
    at_path: Callable[[Any, Path], Any] | None = None,
) -> Any:
    """A settings field. ``at_path(value, path)``, for a secret, is given the parsed value and
    the file it came from when ``PLATEFLOW_<NAME>_FILE`` set it (a file the program re-reads)."""
    if group not in GROUPS:
        raise ValueError(f"setting group {group!r} is not one of {', '.join(GROUPS)}")
    metadata = {
        "parse": parse, "help": help, "secret": secret, "group": group, "at_path": at_path
    }  # fmt: skip
    return field(default=default, metadata=metadata)


def _service_redis_url(service: str) -> Any:
    """The Redis URL of one service's own ACL user: a secret, since it holds the password."""
    help = f"Redis URL with the {service}'s ACL user and password; unset uses redis_url"
    return _setting(None, _redis_url, help, secret=True, group="redis")


def _search_window(search: str, days: float) -> Any:
    help = f"longest window of a {search}, in days (a supervisor may override)"
    return _setting(days, _float_range(0.01, 36_500), help, group="inquiry")
