"""Covert hotlists (427.6): the one place that decides what of them an actor may see.

A covert list, its entries and its alerts exist only for a user holding
``hotlists:view_covert``: for anybody else the list is absent from listings and answered as
not found, its alerts are left out of every result, and the covert alert log is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy.engine import Engine

import records

__all__ = ["Covert"]


@dataclass(frozen=True)
class Covert:
    """Whether an actor sees covert lists, and the filters that follow from it."""

    allowed: bool

    @classmethod
    def of(cls, user: records.User) -> Covert:
        return cls(user.can(records.Permission.HOTLISTS_VIEW_COVERT))

    def sees(self, info: records.HotlistInfo | None) -> bool:
        """Whether the list exists for this actor (None: it does not exist at all)."""
        return info is not None and (self.allowed or not info.covert)

    def hotlist(self, engine: Engine, name: str) -> records.HotlistInfo | None:
        """The summary of list ``name`` (no entries), or None when this actor may not know it."""
        found = next((h for h in records.list_hotlists(engine) if h.name == name), None)
        return found if self.sees(found) else None

    def hotlists(self, engine: Engine) -> list[records.HotlistInfo]:
        return records.list_hotlists(engine, include_covert=self.allowed)

    def alerts(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """Stored alerts (a frame with a ``covert`` column) this actor may see."""
        return frame if self.allowed else frame.filter(~pl.col("covert").fill_null(False))

    def forbidden_log(self, username: str) -> str | None:
        """Why this actor may not read the covert alert log, or None when they may."""
        if self.allowed:
            return None
        return (
            f"user {username!r} may not see covert alerts "
            f"(needs {records.Permission.HOTLISTS_VIEW_COVERT!r})"
        )
