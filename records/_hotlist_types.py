"""The values the hotlist functions return (plain frozen dataclasses, safe to serialise)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import matchers
from records._policycost import PolicyCost


@dataclass(frozen=True)
class EntryRecord:
    """One hotlist entry with its provenance."""

    entry_id: str
    plate: str
    is_pattern: bool
    state: str | None
    reason: str
    case_number: str | None
    source: str
    source_line: int | None
    entered_by: str
    entered_at_ms: int
    effective_from_ms: int | None
    expires_at_ms: int | None
    version_from: int
    version_to: int | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any], list_name: str) -> EntryRecord:
        return cls(
            entry_id=f"{list_name}:{row['entry_key']}",
            plate=row["plate"],
            is_pattern=bool(row["is_pattern"]),
            state=row["state"],
            reason=row["reason"],
            case_number=row["case_number"],
            source=row["source"],
            source_line=row["source_line"],
            entered_by=row["entered_by"],
            entered_at_ms=row["entered_at"],
            effective_from_ms=row["effective_from"],
            expires_at_ms=row["expires_at"],
            version_from=row["version_from"],
            version_to=row["version_to"],
        )

    def to_entry(self) -> matchers.Entry:
        """The matcher's view of this entry."""
        return matchers.Entry(
            entry_id=self.entry_id,
            plate=self.plate,
            state=self.state,
            reason=self.reason,
            case_number=self.case_number,
            entered_by=self.entered_by,
            effective_from_ms=self.effective_from_ms,
            expires_at_ms=self.expires_at_ms,
        )


@dataclass(frozen=True)
class HotlistInfo:
    """A hotlist without its entries; ``entries`` counts the live ones."""

    name: str
    category: str
    policy: matchers.Policy
    covert: bool
    version: int
    entries: int
    created_by: str
    created_at_ms: int
    updated_by: str
    updated_at_ms: int


@dataclass(frozen=True)
class HotlistChange:
    """One version of one hotlist: what changed, from what source, by whom and when."""

    name: str
    version: int
    change: str
    source: str
    detail: Mapping[str, Any]
    entry_count: int
    by: str
    at_ms: int

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> HotlistChange:
        return cls(
            name=row["name"],
            version=row["version"],
            change=row["change"],
            source=row["source"],
            detail=dict(row["detail"] or {}),
            entry_count=row["entry_count"],
            by=row["created_by"],
            at_ms=row["created_at"],
        )


@dataclass(frozen=True)
class HotlistDetail:
    """A hotlist, the entries of one version (the live one unless asked), and its history."""

    info: HotlistInfo
    version: int
    entries: tuple[EntryRecord, ...]
    history: tuple[HotlistChange, ...]


@dataclass(frozen=True)
class ImportResult:
    """What an import did. ``added + changed + unchanged == entries``."""

    name: str
    version: int
    previous_version: int
    category: str
    entries: int
    added: int
    changed: int
    removed: int
    unchanged: int
    source: str
    created: bool
    cost: PolicyCost | None = None

    def describe(self) -> str:
        made = "created" if self.created else f"was version {self.previous_version}"
        return (
            f"hotlist {self.name!r} version {self.version} ({made}, {self.category}) from "
            f"{self.source}: {self.entries:,} entries, {self.added:,} added, {self.changed:,} "
            f"changed, {self.removed:,} removed, {self.unchanged:,} unchanged"
        )
