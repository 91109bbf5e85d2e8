"""The reason and action lists of alert dispositions, managed by administrators (427.3(g)).

A rejection names a reason (misread, wrong state, entry cleared or expired, vehicle does not
match, duplicate, other with text) and a confirmation the action taken (stop made, officer
dispatched...). Both lists are rows of ``disposition_codes``, seeded with those defaults when
the table is created. A code is retired, never deleted: transitions that used it keep their
label, and a retired code can no longer be chosen. Adding a retired code again brings it back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._errors import ConflictError, NotFoundError, RecordsError
from records._schema import connection, disposition_codes, now_ms

__all__ = [
    "CODE_KINDS",
    "DispositionCode",
    "DispositionLists",
    "add_disposition_code",
    "disposition_lists",
    "retire_disposition_code",
]

#: The two lists: reasons (for rejections) and actions (for confirmations).
CODE_KINDS = ("reason", "action")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class DispositionCode:
    """One entry of a list; ``needs_text`` asks the transition for a description (``other``)."""

    kind: str
    code: str
    label: str
    needs_text: bool
    retired: bool

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "needs_text": self.needs_text}


@dataclass(frozen=True)
class DispositionLists:
    """The reasons and actions, in the order the console shows them."""

    reasons: tuple[DispositionCode, ...]
    actions: tuple[DispositionCode, ...]

    def of(self, kind: str) -> tuple[DispositionCode, ...]:
        return self.reasons if kind == "reason" else self.actions

    def find(self, kind: str, code: str) -> DispositionCode | None:
        return next((c for c in self.of(kind) if c.code == code), None)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """``{"reasons": [...], "actions": [...]}`` of the codes still in use."""
        return {
            "reasons": [c.to_json() for c in self.reasons if not c.retired],
            "actions": [c.to_json() for c in self.actions if not c.retired],
        }


def _from_row(r: Mapping[Any, Any]) -> DispositionCode:
    return DispositionCode(
        r["kind"], r["code"], r["label"], bool(r["needs_text"]), r["retired_at"] is not None
    )


def disposition_lists(conn: Engine | Connection) -> DispositionLists:
    """Both lists, retired codes included (flagged), in list order."""
    query = sa.select(disposition_codes).order_by(
        disposition_codes.c.position, disposition_codes.c.code
    )
    with connection(conn) as c:
        rows = [_from_row(r) for r in c.execute(query).mappings()]
    return DispositionLists(
        tuple(r for r in rows if r.kind == "reason"), tuple(r for r in rows if r.kind == "action")
    )


def _check_kind(kind: str) -> None:
    if kind not in CODE_KINDS:
        raise RecordsError(f"list {kind!r} is not one of {', '.join(CODE_KINDS)}")


def add_disposition_code(
    conn: Connection, kind: str, code: str, label: str, *, by: str, needs_text: bool = False
) -> DispositionCode:
    """Add ``code`` to the ``kind`` list (``reason`` or ``action``), or bring a retired code
    back with a new label. A code is lower-case letters, digits and ``_`` (up to 32)."""
    _check_kind(kind)
    if not _CODE.match(code):
        msg = (
            f"code {code!r} must be 1-32 lower-case letters, digits or '_', starting with a "
            "letter (e.g. plate_cover)"
        )
        raise RecordsError(msg)
    label = " ".join(label.split())
    if not label or len(label) > 128:
        raise RecordsError(f"the label of {kind} {code!r} must be 1-128 characters")
    found = disposition_lists(conn).find(kind, code)
    at = now_ms()
    if found is not None and not found.retired:
        raise ConflictError(f"{kind} {code!r} is already on the list (as {found.label!r})")
    if found is not None:
        conn.execute(
            sa.update(disposition_codes)
            .where(disposition_codes.c.kind == kind, disposition_codes.c.code == code)
            .values(label=label, needs_text=needs_text, retired_by=None, retired_at=None)
        )
    else:
        last = conn.execute(sa.select(sa.func.max(disposition_codes.c.position))).scalar()
        conn.execute(
            sa.insert(disposition_codes).values(
                kind=kind,
                code=code,
                label=label,
                needs_text=needs_text,
                position=(last or 0) + 1,
                created_by=by,
                created_at=at,
            )
        )
    return DispositionCode(kind, code, label, needs_text, False)


def retire_disposition_code(conn: Connection, kind: str, code: str, *, by: str) -> None:
    """Retire ``code`` of the ``kind`` list: it can no longer be chosen; past transitions keep
    it. Raises :class:`NotFoundError` for an unknown code, :class:`ConflictError` when it is
    already retired or is the last code of its list."""
    _check_kind(kind)
    lists = disposition_lists(conn)
    found = lists.find(kind, code)
    if found is None:
        known = ", ".join(c.code for c in lists.of(kind) if not c.retired)
        raise NotFoundError(f"no {kind} {code!r} on the list (the list has: {known})")
    if found.retired:
        raise ConflictError(f"{kind} {code!r} is already retired")
    if sum(not c.retired for c in lists.of(kind)) == 1:
        raise ConflictError(f"{kind} {code!r} is the last one on its list; add another first")
    conn.execute(
        sa.update(disposition_codes)
        .where(disposition_codes.c.kind == kind, disposition_codes.c.code == code)
        .values(retired_by=by, retired_at=now_ms())
    )
