"""The narrow configuration the flow's parts take: only the fields they use.

Only the entry points (``run_flow``, the shell's commands) read the whole
:class:`~plateflow.settings.Settings`, through the ``from_settings`` constructors; the wiring
and the hotlist sources see these small frozen objects, so a test or another engine can build
them without the shell.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plateflow.settings import Settings


@dataclass(frozen=True)
class FlowConfig:
    """What :func:`~dataflow.build_flow` wires the source, the processor and the sink with.
    Each field is the setting of the same name, in its units (``*_s`` seconds, ``*_days``
    days)."""

    partitions: int
    batch_size: int
    max_alerts_per_read: int
    data_dir: Path
    retention_days: int
    cooldown_s: float
    alerts_log_maxlen: int
    stream_keep_s: int
    alerts_log_keep_s: int
    deadletter_keep_s: int
    geofence_file: Path | None

    @classmethod
    def from_settings(cls, settings: Settings) -> FlowConfig:
        return cls(**_picked(cls, settings))


@dataclass(frozen=True)
class HotlistConfig:
    """Where the flow's hotlists come from (files, then the records database) and the OCR
    classes their index matches with; ``database_url`` is the effective one (SQLite in the
    data directory when none is configured)."""

    database_url: str
    hotlist_files: tuple[Path, ...]
    ocr_classes: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> HotlistConfig:
        return cls(**_picked(cls, settings, database_url=settings.effective_database_url))


def _picked(config: type[Any], settings: Settings, **derived: Any) -> dict[str, Any]:
    """The fields of ``config`` from the settings of the same names, or from ``derived``."""
    return {
        f.name: derived[f.name] if f.name in derived else getattr(settings, f.name)
        for f in dataclasses.fields(config)
    }
