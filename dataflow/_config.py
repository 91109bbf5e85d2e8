"""The narrow configuration the flow's parts take: only the fields they use.

Only the entry points (``run_flow``, the shell's commands) read the whole
:class:`~plateflow.settings.Settings`, through the ``from_settings`` constructors; the wiring
and the hotlist sources see these small frozen objects, so a test or another engine can build
them without the shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plateflow.settings import Settings


@dataclass(frozen=True)
class FlowConfig:
    """What :func:`~dataflow.build_flow` wires the source, the processor and the sink with.

    Units as in the settings of the same names: seconds for ``cooldown_s`` and
    ``stream_keep_s``, days for ``retention_days``.
    """

    partitions: int
    batch_size: int
    max_alerts_per_read: int
    data_dir: Path
    retention_days: int
    cooldown_s: float
    alerts_log_maxlen: int
    stream_keep_s: int
    geofence_file: Path | None

    @classmethod
    def from_settings(cls, settings: Settings) -> FlowConfig:
        return cls(
            partitions=settings.partitions,
            batch_size=settings.batch_size,
            max_alerts_per_read=settings.max_alerts_per_read,
            data_dir=settings.data_dir,
            retention_days=settings.retention_days,
            cooldown_s=settings.cooldown_s,
            alerts_log_maxlen=settings.alerts_log_maxlen,
            stream_keep_s=settings.stream_keep_s,
            geofence_file=settings.geofence_file,
        )


@dataclass(frozen=True)
class HotlistConfig:
    """Where the flow's hotlists come from (files, then the records database) and the OCR
    classes their index matches with."""

    database_url: str
    hotlist_files: tuple[Path, ...]
    ocr_classes: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> HotlistConfig:
        return cls(
            database_url=settings.effective_database_url,
            hotlist_files=settings.hotlist_files,
            ocr_classes=settings.ocr_classes,
        )
