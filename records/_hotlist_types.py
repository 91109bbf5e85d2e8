"""The values the hotlist functions return (plain frozen dataclasses, safe to serialise)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import matchers
from records._policycost import PolicyCost
from records._schema import record_from_row


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
        return record_from_row(
            cls,
            row,
            entry_id=f"{list_name}:{row['entry_key']}",
            is_pattern=bool(row["is_pattern"]),
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
        return record_from_row(
            cls,
            row,
            detail=dict(row["detail"] or {}),
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
