"""Dispositions (427.3(g)): claim, verify, confirm, reject, dismiss and undo a hit; the current
states for the consoles; the reason and action lists administrators manage.

Thin routes over :mod:`service` (``service.transition`` and its siblings): the state machine,
the covert rule (a covert alert is a 404 for a user without the right) and the audit live there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

import service
from api._access import Guard, guard, guarded_router
from api._schemas import ActIn
from service import Acts

__all__ = ["router"]

router = guarded_router("dispositions")

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "Not allowed from the alert's current state, held by another user "
        "(named), the undo window passed, or a concurrent transition won."
    },
    404: {"description": "No such alert in the alert log (or not one this user may see)."},
}


class DispositionIn(ActIn):
    """One step of the state machine; what each step needs is in the route's description."""

    log_id: str = Field(max_length=42, description="The alert's stream id in its alert log.")
    to: Literal["claimed", "verifying", "confirmed", "rejected", "dismissed", "undo"]
    reason: str | None = Field(None, max_length=32, description="A code of the reason list.")
    reason_text: str | None = Field(None, max_length=2000)
    action: str | None = Field(None, max_length=32, description="A code of the action list.")
    note: str | None = Field(None, max_length=2000)


class DispositionOut(BaseModel):
    """An alert's transition, which is also its current state."""

    model_config = ConfigDict(populate_by_name=True)

    alert_id: str
    log_id: str
    hotlist_id: int | None
    hotlist: str | None
    priority: int
    match_kind: str
    covert: bool
    state: str
    from_state: str = Field(alias="from")
    seq: int
    undo_of: int | None
    by: str
    at: str
    reason: str | None
    reason_text: str | None
    action: str | None
    note: str | None
    deadline_at: str | None = Field(description="Set while verifying: when it is overdue.")
    claimed_by: str | None


class DispositionsOut(BaseModel):
    items: list[DispositionOut]


class CodeOut(BaseModel):
    code: str
    label: str
    needs_text: bool = Field(description="A transition with this code must say more (text).")


class ListsOut(BaseModel):
    reasons: list[CodeOut]
    actions: list[CodeOut]

    @classmethod
    def of(cls, lists: service.DispositionLists) -> ListsOut:
        return cls.model_validate(lists.to_json())


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=32, description="e.g. plate_cover")
    label: str = Field(min_length=1, max_length=128)
    needs_text: bool = False


Kind = Literal["reasons", "actions"]
AlertId = Annotated[str, Path(min_length=1, max_length=128, description="The alert's id.")]


def _out(items: list[dict[str, Any]]) -> DispositionsOut:
    return DispositionsOut(items=[DispositionOut.model_validate(i) for i in items])


@router.post(
    "/v1/alerts/{alert_id}/disposition",
    response_model=DispositionOut,
    responses=_CONFLICT,
    summary="Move a hit through its disposition",
    description="`new -> claimed -> verifying -> confirmed | rejected | dismissed`, or `undo` "
    "of the caller's last step within PLATEFLOW_DISPOSITION_UNDO_S. A hit is claimed first; "
    "while claimed or verifying only its holder acts on it. `confirmed` needs `action`, "
    "`rejected` needs `reason` (a reason such as `other` also `reason_text`), `undo` needs "
    "`note` (422 naming the field). Returns the alert's new current state; every step is "
    "audited and broadcast to the consoles.",
)
def post_disposition(
    *,
    alert_id: AlertId,
    body: DispositionIn,
    g: Annotated[Guard, Depends(guard(Acts.DISPOSITION))],
) -> DispositionOut:
    made = service.transition(g.door, g.actor, alert_id, **body.args())
    return DispositionOut.model_validate(made)


@router.get(
    "/v1/alerts/dispositions",
    response_model=DispositionsOut,
    summary="Current dispositions",
    description="The current state of every alert logged since `since` (default: 24 hours "
    "ago) that has one; covert alerts only for users allowed.",
)
def get_dispositions(
    *,
    since: Annotated[datetime | None, Query(description="RFC 3339 with offset.")] = None,
    g: Annotated[Guard, Depends(guard(Acts.DISPOSITION_STATES))],
) -> DispositionsOut:
    since_ms = service.since_ms_of(g.door, g.actor, since)
    return _out(service.current_dispositions(g.door, g.actor, since_ms))


@router.get(
    "/v1/dispositions/lists",
    response_model=ListsOut,
    summary="The reason and action lists",
)
def get_lists(*, g: Annotated[Guard, Depends(guard(Acts.DISPOSITION_LISTS))]) -> ListsOut:
    return ListsOut.of(service.disposition_lists(g.door, g.actor))


@router.post(
    "/v1/dispositions/lists/{kind}",
    status_code=201,
    response_model=ListsOut,
    responses={409: {"description": "The code is already on the list."}},
    summary="Add a reason or an action (administrators)",
    description="Adding a retired code brings it back with the new label.",
)
def add_code(
    *,
    kind: Kind,
    body: CodeIn,
    g: Annotated[Guard, Depends(guard(Acts.DISPOSITION_LISTS_EDIT))],
) -> ListsOut:
    lists = service.add_disposition_code(
        g.door, g.actor, kind[:-1], body.code, body.label, needs_text=body.needs_text
    )
    return ListsOut.of(lists)


@router.delete(
    "/v1/dispositions/lists/{kind}/{code}",
    response_model=ListsOut,
    responses={404: {"description": "No such code on the list."}},
    summary="Retire a reason or an action (administrators)",
    description="The code can no longer be chosen; past transitions keep it and its label.",
)
def retire_code(
    *,
    kind: Kind,
    code: Annotated[str, Path(max_length=32)],
    g: Annotated[Guard, Depends(guard(Acts.DISPOSITION_LISTS_EDIT))],
) -> ListsOut:
    return ListsOut.of(service.retire_disposition_code(g.door, g.actor, kind[:-1], code))
