"""The narrow configuration of the service layer: only the fields the acts use.

Entry points (the CLI, the API's app factory) build it from their settings with
:meth:`ServiceConfig.pick`; nothing below them sees the whole settings object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import matchers

__all__ = ["ServiceConfig"]


@dataclass(frozen=True)
class ServiceConfig:
    """What the acts need to know: where the reads are, how long they are kept, the rules of
    justification and login, how alerts are matched, published and advised, how far a search
    may reach before it needs a supervisor's override, the deadlines and undo window of
    dispositions, and the smallest count the public transparency page shows."""

    data_dir: Path
    retention_days: int = 365
    min_description_length: int = 20
    ocr_classes: tuple[str, ...] = tuple(matchers.DEFAULT_OCR_CLASSES)
    alerts_log_maxlen: int = 100_000
    alerts_log_keep_s: int = 7 * 86_400
    policy_alert_ceiling: float = 0.01
    geofence_file: Path | None = None
    session_ttl_s: int = 8 * 3600
    lockout_attempts: int = 5
    lockout_s: int = 900
    sse_heartbeat_s: float = 15.0
    session_idle_s: int = 1800
    login_client_failures: int = 20
    anonymous_audit_interval_s: int = 60
    totp_required: bool = False
    totp_key: str | None = field(default=None, repr=False)  # a secret: never shown
    transparency_min_cell: int = 5
    urgent_priority_max: int = 1
    verify_urgent_s: int = 600
    verify_routine_s: int = 3600
    disposition_undo_s: int = 300
    release_separate_export: bool = True
    search_max_days_plate: float = 366.0
    search_max_days_partial: float = 92.0
    search_max_days_canvass: float = 3.0
    search_max_area_km2: float = 25.0
    search_min_known_characters: int = matchers.MIN_KNOWN_CHARACTERS

    @classmethod
    def pick(cls, source: object) -> ServiceConfig:
        """The fields of this config taken, by name, from any object that has them (the
        shell's settings): the service never imports or keeps that object."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: getattr(source, name) for name in names})
