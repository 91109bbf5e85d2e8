"""The one settings object.

Every field has an environment variable ``PLATEFLOW_<FIELD>`` and a CLI flag ``--<field>``
(underscores become dashes); the CLI help shows both. Precedence: CLI flag, then environment,
then the default. An unknown ``PLATEFLOW_*`` variable is an error (a typo would otherwise be a
silently ignored setting), and so is a value outside what a field allows; the message names the
setting and what it accepts.

With nothing configured the program runs on embedded defaults: ``redis_url`` unset starts the
embedded Redis (see :mod:`plateflow.embedded`), ``database_url`` unset means SQLite in the data
directory, and the data directory is ``./plateflow-data``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from plateflow.errors import SettingsError

ENV_PREFIX = "PLATEFLOW_"

#: The policy's minimum retention (427.4): reads are kept at least one year.
POLICY_MIN_RETENTION_DAYS = 365

#: Environment variables with the prefix that are not settings but are read elsewhere
#: (``PLATEFLOW_INGEST_TOKEN``: the one token ``plateflow bench target`` sends).
_NOT_SETTINGS = frozenset({"PLATEFLOW_BOOTSTRAP_PASSWORD", "PLATEFLOW_INGEST_TOKEN"})


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError as exc:
            raise ValueError(f"a whole number from {lo} to {hi}") from exc
        if not lo <= value <= hi:
            raise ValueError(f"a whole number from {lo} to {hi}")
        return value

    return parse


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError as exc:
            raise ValueError(f"a number from {lo:g} to {hi:g}") from exc
        if not lo <= value <= hi:
            raise ValueError(f"a number from {lo:g} to {hi:g}")
        return value

    return parse


def _redis_url(raw: str) -> str | None:
    if raw == "":
        return None
    scheme = urlsplit(raw).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError("a redis://, rediss:// or unix:// URL, or empty for the embedded Redis")
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


def _tokens(raw: str) -> tuple[str, ...]:
    tokens = tuple(t.strip() for t in raw.split(",") if t.strip())
    short = [i for i, t in enumerate(tokens) if len(t) < 16]
    if short:
        raise ValueError("a comma-separated list of tokens of at least 16 characters each")
    return tokens


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true or false")


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


def _setting(default: Any, parse: Callable[[str], Any], help: str, secret: bool = False) -> Any:
    return field(default=default, metadata={"parse": parse, "help": help, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Every knob of plateflow. Build it with :meth:`load`; never mutate it."""

    redis_url: str | None = _setting(
        None, _redis_url, "Redis URL (redis://host:6379/0); unset starts the embedded Redis"
    )
    database_url: str | None = _setting(
        None, _database_url, "SQLAlchemy database URL; unset means SQLite in the data directory"
    )
    data_dir: Path = _setting(
        Path("plateflow-data"), _path, "directory for Parquet reads, alerts and the embedded stores"
    )
    partitions: int = _setting(4, _int_range(1, 1024), "number of read stream partitions")
    batch_size: int = _setting(
        500,
        _int_range(1, 100_000),
        "stream entries taken per source poll (each may hold many reads)",
    )
    retention_days: int = _setting(
        POLICY_MIN_RETENTION_DAYS,
        _int_range(1, 36_500),
        "days reads are kept before purge (policy 427.4 minimum is 365)",
    )
    retention_override: bool = _setting(
        False, _bool, "allow retention_days below the policy's 365-day minimum (logged)"
    )
    cooldown_s: float = _setting(
        300.0,
        _float_range(0, 7 * 86_400),
        "seconds in which a repeat hit is a sighting, not a new alert",
    )
    stream_keep_s: int = _setting(
        86_400,
        _int_range(0, 365 * 86_400),
        "seconds reads stay in the Redis streams after they are stored (for replay)",
    )
    max_alerts_per_read: int = _setting(3, _int_range(1, 100), "most alerts one read may raise")
    alerts_log_maxlen: int = _setting(
        100_000, _int_range(100, 100_000_000), "approximate length cap of the alert replay stream"
    )
    ingest_tokens: tuple[str, ...] = _setting(
        (), _tokens, "comma-separated camera ingest tokens (X-Plateflow-Token header)", secret=True
    )
    hotlist_files: tuple[Path, ...] = _setting(
        (), _files, "comma-separated hotlist CSV files loaded at start (name = file stem)"
    )
    geofence_file: Path | None = _setting(
        None, _optional_file, "GeoJSON FeatureCollection of polygons with an 'advisory' property"
    )
    ocr_classes: tuple[str, ...] = _setting(
        ("0ODQ", "1I", "2Z", "5S", "8B", "6G"),
        _ocr_classes,
        "OCR confusion classes, e.g. 0ODQ,1I,2Z",
    )
    api_host: str = _setting("127.0.0.1", _host, "address the HTTP API binds")
    api_port: int = _setting(8000, _int_range(1, 65_535), "port the HTTP API binds")
    api_workers: int = _setting(
        1, _int_range(1, 64), "HTTP API worker processes (about one per core for camera ingest)"
    )
    api_access_log: bool = _setting(
        False, _bool, "log every HTTP request at INFO (costs about half the ingest rate)"
    )
    session_ttl_s: int = _setting(
        8 * 3600, _int_range(60, 7 * 86_400), "seconds a login session lasts"
    )
    lockout_attempts: int = _setting(5, _int_range(1, 100), "failed logins before an account locks")
    lockout_s: int = _setting(
        900, _int_range(1, 86_400 * 30), "seconds a locked account stays locked"
    )
    min_description_length: int = _setting(
        20,
        _int_range(1, 1000),
        "shortest description accepted for an inquiry without a case number",
    )
    policy_alert_ceiling: float = _setting(
        0.01,
        _float_range(0, 1),
        "largest share of reads a hotlist policy may alert on unless forced",
    )
    log_level: str = _setting("INFO", _log_level, "log level: DEBUG, INFO, WARNING or ERROR")

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: str | None) -> Settings:
        """Build settings from the environment and overrides given as raw strings (CLI values).

        Raises :class:`SettingsError` naming the setting for an unknown variable or a bad value.
        """
        env = os.environ if environ is None else environ
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(
            k
            for k in env
            if k.startswith(ENV_PREFIX)
            and k not in _NOT_SETTINGS
            and not k.startswith("PLATEFLOW_TEST_")
            and k[len(ENV_PREFIX) :].lower() not in names
        )
        if unknown:
            msg = f"unknown setting(s) {', '.join(unknown)}; known settings are " + ", ".join(
                env_name(n) for n in sorted(names)
            )
            raise SettingsError(msg)
        bad_keys = sorted(set(overrides) - names)
        if bad_keys:
            raise SettingsError(f"unknown setting(s) {', '.join(bad_keys)}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = overrides.get(f.name)
            source = f"--{f.name.replace('_', '-')}"
            if raw is None:
                raw = env.get(env_name(f.name))
                source = env_name(f.name)
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                shown = "***" if f.metadata["secret"] else repr(raw)
                msg = f"setting {f.name} ({source}) = {shown} is not allowed: expected {exc}"
                raise SettingsError(msg) from exc
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self) -> None:
        if self.retention_days < POLICY_MIN_RETENTION_DAYS and not self.retention_override:
            msg = (
                f"setting retention_days = {self.retention_days} is below the policy minimum of "
                f"{POLICY_MIN_RETENTION_DAYS} days (427.4); set PLATEFLOW_RETENTION_OVERRIDE=true "
                "to allow it (the override is logged)"
            )
            raise SettingsError(msg)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (values already parsed), checked again."""
        settings = dataclasses.replace(self, **changes)
        settings._check()
        return settings

    # -- derived --------------------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        """The database URL to use: the configured one, else SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'plateflow.db').resolve()}"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict safe to log: secrets and URL passwords are masked."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"] and value:
                value = "***"
            elif isinstance(value, str) and "@" in value and "://" in value:
                parts = urlsplit(value)
                if parts.password:
                    value = value.replace(f":{parts.password}@", ":***@")
            out[f.name] = value
        return out


def env_name(field_name: str) -> str:
    """``partitions`` -> ``PLATEFLOW_PARTITIONS``."""
    return ENV_PREFIX + field_name.upper()


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The fields, in declaration order, for the CLI to turn into flags."""
    return list(dataclasses.fields(Settings))
