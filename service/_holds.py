"""Legal holds as acts (427.4): place, release and list.

A hold ties a case number to the result of a search (or to read ids) through
:meth:`sinks.ReadStore.place_hold`; held reads survive every purge. The refusals are decided
here from what is recorded (the case's hold, the search's result), before the store is asked,
so no answer depends on the wording of a store error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import records
from service._acts import Acts
from service._bounds import check_bounds
from service._door import Actor, Door, Outcome
from service._errors import Conflict, Invalid, NotFound, from_sinks
from service._query import SearchSpec
from sinks import LegalHold, SinksError

__all__ = ["hold_case", "list_holds", "place_hold", "release_hold"]


def hold_case(actor: Actor, case_number: str | None = None) -> str:
    """The case a hold is for: the one given, else the justification's case number."""
    case = (case_number or actor.why.case_number or "").strip()
    if not case:
        raise Invalid("a legal hold needs a case_number", "case_number")
    return case


def _check_not_released(door: Door, case: str) -> None:
    try:
        earlier = door.store.hold(case)
    except SinksError as exc:  # the store refuses an empty or overlong case number
        raise from_sinks(exc, "case_number") from exc
    if earlier is not None and not earlier.active:
        msg = f"case {case}: the hold was released; use a new case or event number"
        raise Conflict(msg, "case_number")


def place_hold(
    door: Door,
    actor: Actor,
    *,
    reason: str,
    build: Callable[[], SearchSpec | None],
    read_ids: Sequence[str] | None = None,
    case_number: str | None = None,
) -> LegalHold:
    """Hold the result of the search ``build`` returns (None: the reads ``read_ids``, looked
    up over the whole store) under the case (``case_number``, else the justification's);
    placing again adds reads. Raises :class:`~service.NotFound` when nothing is found,
    :class:`~service.Conflict` when the case's hold was released (a case is held once)."""
    act = Acts.HOLD_PLACE
    case = door.checked(actor, act, lambda: hold_case(actor, case_number))
    spec = door.checked(actor, act, build)
    if spec is not None:
        # A hold by query follows the one known-character rule of partial plates (its window
        # and area are the case's: a hold is evidence, not a sweep of the store).
        door.checked(
            actor, act, lambda: check_bounds(spec, door.config, actor, None, fields=("pattern",))
        )
    if not reason.strip():
        error = Invalid("a legal hold needs a reason (e.g. homicide investigation)", "reason")
        raise door.deny(actor, act, error)
    ids = sorted({i.strip() for i in read_ids or () if i.strip()})
    if spec is None and not ids:
        raise door.deny(actor, act, Invalid("give a search or read ids to hold", "read_ids"))
    at = datetime.now(timezone.utc)
    terms: dict[str, Any] = {"case": case, "reason": reason}
    terms["query"] = spec.terms() if spec else {"read_ids": len(ids)}
    store = door.store

    def run(access: Outcome) -> LegalHold:
        _check_not_released(door, case)
        if spec is not None:
            pages = spec.pages(store, page_size=10_000, ocr_classes=door.config.ocr_classes)
            if pages.count() == 0:
                raise NotFound(f"case {case}: the query found no reads to hold", "case_number")
            reads: Any = pages
            query = spec.terms()
        else:
            reads, query = ids, {"search": "read_ids", "read_ids": ids}
        try:
            hold = store.place_hold(
                case, reads, by=actor.username, at=at, query=query, reason=reason
            )
        except SinksError as exc:  # an unknown read id, a hold released meanwhile...
            raise from_sinks(exc, "read_ids" if spec is None else "case_number") from exc
        access.result_count = int(hold.placements[-1].get("reads", hold.reads))
        access.terms["held_total"] = hold.reads
        return hold

    return door.scan(actor, act, run, terms)


def release_hold(door: Door, actor: Actor, case_number: str, *, reason: str) -> LegalHold:
    """Release the hold of ``case_number``: its partitions return to normal retention and the
    held copy is deleted; the hold record keeps who released it, when and why. Raises
    :class:`~service.Conflict` when the case has no active hold."""
    act = Acts.HOLD_RELEASE
    if not reason.strip():
        error = Invalid("releasing a hold needs a reason (case closed, court order...)", "reason")
        raise door.deny(actor, act, error)

    def run(access: records.AuditedAccess) -> LegalHold:
        try:
            held = door.store.hold(case_number)
        except SinksError as exc:
            raise from_sinks(exc, "case") from exc
        if held is None or not held.active:
            raise Conflict(f"case {case_number} has no active legal hold to release", "case")
        try:
            hold = door.store.release_hold(
                case_number, by=actor.username, at=datetime.now(timezone.utc), reason=reason
            )
        except SinksError as exc:  # checked above: released by someone else meanwhile
            raise from_sinks(exc, "case") from exc
        access.result_count = hold.reads
        return hold

    return door.read(actor, act, run, {"case": case_number, "reason": reason})


def list_holds(door: Door, actor: Actor, *, include_released: bool = False) -> list[LegalHold]:
    """The legal holds (active ones unless ``include_released``)."""
    return door.read_all(
        actor,
        Acts.HOLD_LIST,
        lambda: door.store.holds(include_released),
        {"include_released": include_released},
    )
