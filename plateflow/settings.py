"""The one settings object.

Every field has an environment variable ``PLATEFLOW_<FIELD>`` and, unless it is a secret, a CLI
flag ``--<field>`` (underscores become dashes) on the commands that use it. Precedence: CLI flag,
then environment, then the default. A secret (a token, a password, a key) is never a flag, since
flags show in the process list and the shell history: it comes from ``PLATEFLOW_<FIELD>`` or from
the file that ``PLATEFLOW_<FIELD>_FILE`` names (a mounted Kubernetes or Docker secret). An
unknown ``PLATEFLOW_*`` variable is an error (a typo would otherwise be a silently ignored
setting), and so is a value outside what a field allows; the message names the setting and what
it accepts.

Each field belongs to one of :data:`GROUPS`; a command's ``--help`` shows the groups it uses and
``plateflow settings`` shows them all, each value with its source (:class:`Source`).

With nothing configured the program runs on embedded defaults: ``redis_url`` unset starts the
embedded Redis (see :mod:`plateflow.embedded`), ``database_url`` unset means SQLite in the data
directory, and the data directory is ``./plateflow-data``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Re-exported: the API and the CLI take the token table from here, beside the setting.
from plateflow._ingest_tokens import IngestToken as IngestToken
from plateflow._ingest_tokens import IngestTokens as IngestTokens
from plateflow._setting_fields import GROUPS as GROUPS
from plateflow._setting_fields import (
    _audit_key,
    _audit_keys,
    _bool,
    _database_url,
    _dns_label,
    _files,
    _float_range,
    _fsync,
    _host,
    _http_url,
    _image_sources,
    _int_range,
    _log_level,
    _ocr_classes,
    _optional_file,
    _optional_secret,
    _path,
    _proxies,
    _redis_url,
    _search_window,
    _service_redis_url,
    _setting,
    _tile_url,
    _tokens,
    _tokens_at,
)
from plateflow._setting_load import ENV_PREFIX as ENV_PREFIX
from plateflow._setting_load import FILE_SUFFIX as FILE_SUFFIX
from plateflow._setting_load import SettingsLoader
from plateflow._setting_load import Source as Source
from plateflow._setting_load import env_name as env_name
from plateflow.errors import SettingsError

#: The policy's minimum retention (427.4): reads are kept at least one year.
POLICY_MIN_RETENTION_DAYS = 365
#: The default OCR look-alike groups (ARCHITECTURE "Matching semantics"); defined here, the
#: lowest module that needs them, and imported by matchers.
DEFAULT_OCR_CLASSES: tuple[str, ...] = ("0ODQ", "1I", "2Z", "5S", "8B", "6G")
#: A partial plate pins down at least this many positions (``matchers`` applies the rule).
MIN_KNOWN_CHARACTERS = 2


@dataclass(frozen=True)
class Settings(SettingsLoader):
    """Every knob of plateflow. Build it with :meth:`load`; never mutate it."""

    redis_url: str | None = _setting(
        None,
        _redis_url,
        "Redis URL (redis://host:6379/0); unset starts the embedded Redis",
        group="redis",
    )
    redis_ingest_url: str | None = _service_redis_url("ingest")
    redis_flow_url: str | None = _service_redis_url("flow")
    redis_api_url: str | None = _service_redis_url("API")
    embedded_redis_fsync: str = _setting(
        "everysec",
        _fsync,
        "embedded Redis AOF fsync: everysec (a crash may lose ~1-2 s of writes) or always",
        group="redis",
    )
    database_url: str | None = _setting(
        None,
        _database_url,
        "SQLAlchemy database URL; unset means SQLite in the data directory",
        group="database",
    )
    audit_key: str | None = _setting(
        None,
        _audit_key,
        "HMAC key signing the audit log (same on every host); unset: {data_dir}/audit.key, "
        "generated, with the SQLite database",
        secret=True,
        group="audit",
    )
    audit_keys: tuple[str, ...] = _setting(
        (),
        _audit_keys,
        "retired audit keys verification still accepts (one a line), for key rotation",
        secret=True,
        group="audit",
    )
    audit_head_file: Path | None = _setting(
        None,
        lambda raw: Path(raw) if raw else None,
        "file the scheduled audit check appends the head to; unset: {data_dir}/audit-head.jsonl",
        group="audit",
    )
    database_owner_url: str | None = _setting(
        None,
        _database_url,
        "URL of the database's owner role, for `plateflow db upgrade` only (the application "
        "runs with a DML-only role); unset uses database_url",
        secret=True,
        group="database",
    )
    data_dir: Path = _setting(
        Path("plateflow-data"),
        _path,
        "directory for Parquet reads, alerts and the embedded stores",
        group="general",
    )
    # 12 divides evenly among 1, 2, 3, 4, 6 and 12 flow workers (see dataflow.check_partitions)
    partitions: int = _setting(
        12,
        _int_range(1, 1024),
        "number of read stream partitions (a multiple of the flow workers)",
        group="streams",
    )
    batch_size: int = _setting(
        500,
        _int_range(1, 100_000),
        "stream entries taken per source poll (each may hold many reads)",
        group="streams",
    )
    cluster_processes: int = _setting(
        1,
        _int_range(1, 1024),
        "flow processes in the cluster (the StatefulSet's replicas); peers are derived from it",
        group="cluster",
    )
    cluster_service: str = _setting(
        "",
        _dns_label,
        "headless service of the flow pods (peer i is <statefulset>-i.<service>)",
        group="cluster",
    )
    cluster_namespace: str = _setting(
        "",
        _dns_label,
        "Kubernetes namespace of the flow pods, for the peer addresses",
        group="cluster",
    )
    cluster_port: int = _setting(
        9999, _int_range(1, 65_535), "port the flow processes exchange data on", group="cluster"
    )
    flush_s: float = _setting(
        2.0,
        _float_range(0.05, 300.0),
        "longest seconds a partition's reads wait in memory before their Parquet write "
        "(what a crash makes the flow read again)",
        group="storage",
    )
    flush_reads: int = _setting(
        200_000,
        _int_range(100, 10_000_000),
        "reads a partition buffers before its Parquet write (larger files, more memory)",
        group="storage",
    )
    retention_days: int = _setting(
        POLICY_MIN_RETENTION_DAYS,
        _int_range(1, 36_500),
        "days reads are kept before purge (policy 427.4 minimum is 365)",
        group="storage",
    )
    retention_override: bool = _setting(
        False,
        _bool,
        "allow retention_days below the policy's 365-day minimum (logged)",
        group="storage",
    )
    cooldown_s: float = _setting(
        300.0,
        _float_range(0, 7 * 86_400),
        "seconds in which a repeat hit is a sighting, not a new alert",
        group="matching",
    )
    stream_keep_s: int = _setting(
        86_400,
        _int_range(0, 365 * 86_400),
        "seconds reads stay in the Redis streams after they are stored (for replay)",
        group="streams",
    )
    max_alerts_per_read: int = _setting(
        3, _int_range(1, 100), "most alerts one read may raise", group="matching"
    )
    alerts_log_maxlen: int = _setting(
        100_000,
        _int_range(100, 100_000_000),
        "approximate length cap of the alert replay stream",
        group="streams",
    )
    alerts_log_keep_s: int = _setting(
        7 * 86_400,
        _int_range(0, 3650 * 86_400),
        "seconds alerts stay in the replay streams (0: by length only)",
        group="streams",
    )
    deadletter_keep_s: int = _setting(
        7 * 86_400,
        _int_range(0, 3650 * 86_400),
        "seconds rejected payloads stay in the dead-letter stream (0: by length only)",
        group="streams",
    )
    ingest_tokens: IngestTokens = _setting(
        IngestTokens(),
        _tokens,
        "camera ingest tokens (X-Plateflow-Token header): a tokens file of `plateflow ingest "
        "token add` (each token bound to its cameras, re-read when it changes), or shared "
        "tokens separated by commas",
        secret=True,
        group="api",
        at_path=_tokens_at,
    )
    hotlist_files: tuple[Path, ...] = _setting(
        (),
        _files,
        "comma-separated hotlist CSV files loaded at start (name = file stem)",
        group="matching",
    )
    geofence_file: Path | None = _setting(
        None,
        _optional_file,
        "GeoJSON FeatureCollection of polygons with an 'advisory' property",
        group="matching",
    )
    ocr_classes: tuple[str, ...] = _setting(
        DEFAULT_OCR_CLASSES,
        _ocr_classes,
        "OCR confusion classes, e.g. 0ODQ,1I,2Z",
        group="matching",
    )
    api_host: str = _setting("127.0.0.1", _host, "address the HTTP API binds", group="api")
    api_port: int = _setting(8000, _int_range(1, 65_535), "port the HTTP API binds", group="api")
    tls_cert_file: Path | None = _setting(
        None,
        _optional_file,
        "PEM certificate (chain) the API serves HTTPS with; needs tls_key_file",
        group="api",
    )
    tls_key_file: Path | None = _setting(
        None,
        _optional_file,
        "PEM private key of tls_cert_file (readable by the API's user only)",
        group="api",
    )
    forwarded_allow_ips: tuple[str, ...] = _setting(
        (),
        _proxies,
        "proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed; none: the "
        "peer is the client",
        group="api",
    )
    api_workers: int = _setting(
        1,
        _int_range(1, 64),
        "HTTP API worker processes (about one per core for camera ingest)",
        group="api",
    )
    api_access_log: bool = _setting(
        False,
        _bool,
        "log every HTTP request at INFO (costs about half the ingest rate)",
        group="api",
    )
    console_tile_url: str = _setting(
        "",
        _tile_url,
        "map tile URL template for /console, e.g. https://tiles.example/{z}/{x}/{y}.png; "
        "empty draws cameras and hits on a plain background",
        group="api",
    )
    console_image_sources: tuple[str, ...] = _setting(
        ("https:", "http:"),
        _image_sources,
        "where /console may load plate images from (image_ref URLs): http:, https: or origins",
        group="api",
    )
    api_url: str = _setting(
        "http://127.0.0.1:8000",
        _http_url,
        "base URL of the HTTP API that command-line clients (subscribe) connect to",
        group="api",
    )
    sse_heartbeat_s: float = _setting(
        15.0,
        _float_range(0.05, 300),
        "seconds between heartbeats (': ping') on the alert stream; a logout is noticed then",
        group="api",
    )
    session_ttl_s: int = _setting(
        8 * 3600,
        _int_range(60, 7 * 86_400),
        "seconds a login session lasts",
        group="logins",
    )
    lockout_attempts: int = _setting(
        5, _int_range(1, 100), "failed logins before an account locks", group="logins"
    )
    lockout_s: int = _setting(
        900,
        _int_range(1, 86_400 * 30),
        "seconds a locked account stays locked",
        group="logins",
    )
    session_idle_s: int = _setting(
        1800,
        _int_range(60, 7 * 86_400),
        "seconds a session may go unused before it expires (idle timeout)",
        group="logins",
    )
    login_client_failures: int = _setting(
        20,
        _int_range(1, 100_000),
        "failed logins one client address may make in a minute before 429 Too Many Requests",
        group="logins",
    )
    anonymous_audit_interval_s: int = _setting(
        60,
        _int_range(1, 86_400),
        "seconds over which a client's anonymous refusals make one audit record (and a summary)",
        group="logins",
    )
    totp_required: bool = _setting(
        False,
        _bool,
        "users whose roles search reads must enrol a TOTP second factor before acting",
        group="logins",
    )
    totp_key: str | None = _setting(
        None,
        _optional_secret,
        "key (32+ random characters) that encrypts the TOTP secrets; kept outside the database",
        secret=True,
        group="logins",
    )
    min_description_length: int = _setting(
        20,
        _int_range(1, 1000),
        "shortest description accepted for an inquiry without a case number",
        group="inquiry",
    )
    urgent_priority_max: int = _setting(
        1,
        _int_range(0, 9),
        "hotlist priorities up to this one (0 highest) are urgent: the short verify deadline",
        group="dispositions",
    )
    verify_urgent_s: int = _setting(
        600,
        _int_range(1, 86_400),
        "seconds to confirm a hit of an urgent list with NCIC/CLETS (10 minutes)",
        group="dispositions",
    )
    verify_routine_s: int = _setting(
        3600,
        _int_range(1, 7 * 86_400),
        "seconds to confirm a hit of a routine list with NCIC/CLETS (an hour)",
        group="dispositions",
    )
    disposition_undo_s: int = _setting(
        300,
        _int_range(0, 86_400),
        "seconds in which the maker of a disposition step may undo it",
        group="dispositions",
    )
    release_separate_export: bool = _setting(
        True,
        _bool,
        "the approver of a release request cannot also export it (separation of duties, 427.7)",
        group="inquiry",
    )
    search_max_days_plate: float = _search_window("plate history search", 366.0)
    search_max_days_partial: float = _search_window("partial-plate search", 92.0)
    search_max_days_canvass: float = _search_window("canvass", 3.0)
    search_max_area_km2: float = _setting(
        25.0,
        _float_range(0.0001, 10_000_000),
        "largest canvass area (circle or polygon), in square km (a supervisor may override)",
        group="inquiry",
    )
    search_min_known_characters: int = _setting(
        MIN_KNOWN_CHARACTERS,
        _int_range(1, 10),
        "fewest known characters of a partial-plate search (a supervisor may override)",
        group="inquiry",
    )
    policy_alert_ceiling: float = _setting(
        0.01,
        _float_range(0, 1),
        "largest share of reads a hotlist policy may alert on unless forced",
        group="hotlists",
    )
    transparency_page: bool = _setting(
        True,
        _bool,
        "serve the public page /transparency and /v1/transparency (false: both answer 404)",
        group="transparency",
    )
    transparency_min_cell: int = _setting(
        5,
        _int_range(1, 1000),
        "smallest count the public page shows; a count under it reads 'fewer than N'",
        group="transparency",
    )
    transparency_refresh_s: int = _setting(
        900,
        _int_range(1, 86_400),
        "seconds the public page's figures are kept before they are computed again",
        group="transparency",
    )
    log_level: str = _setting(
        "INFO", _log_level, "log level: DEBUG, INFO, WARNING or ERROR", group="general"
    )

    def _check(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            given, missing = (
                ("tls_cert_file", "tls_key_file")
                if self.tls_key_file is None
                else ("tls_key_file", "tls_cert_file")
            )
            msg = (
                f"setting {given} is set but {missing} is not: HTTPS needs both the certificate "
                f"and its key; set {env_name(missing)} too (or unset {env_name(given)})"
            )
            raise SettingsError(msg)
        if self.retention_days < POLICY_MIN_RETENTION_DAYS and not self.retention_override:
            msg = (
                f"setting retention_days = {self.retention_days} is below the policy minimum of "
                f"{POLICY_MIN_RETENTION_DAYS} days (427.4); set PLATEFLOW_RETENTION_OVERRIDE=true "
                "to allow it (the override is logged)"
            )
            raise SettingsError(msg)
        if self.sse_heartbeat_s * 2 > self.session_idle_s:
            # each heartbeat is the stream's use of its session: two must fit in the idle
            # timeout, or a dispatcher watching the console would be logged out mid-shift
            msg = (
                f"setting sse_heartbeat_s = {self.sse_heartbeat_s:g} is more than half of "
                f"session_idle_s = {self.session_idle_s}: an open alert stream would let its "
                f"session expire between heartbeats; lower {env_name('sse_heartbeat_s')} or "
                f"raise {env_name('session_idle_s')}"
            )
            raise SettingsError(msg)

    # -- derived --------------------------------------------------------------------------------

    @property
    def effective_audit_head_file(self) -> Path:
        """Where the scheduled audit check appends the head it verified."""
        return self.audit_head_file or self.data_dir / "audit-head.jsonl"

    @property
    def effective_database_url(self) -> str:
        """The database URL to use: the configured one, else SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'plateflow.db').resolve()}"


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The fields, in declaration order, for the CLI to turn into flags and to list."""
    return list(dataclasses.fields(Settings))
