"""Hotlists and their entries.

Viewing a list is an inquiry (justified, audited). Administrators create lists, add and remove
entries and set policies; investigators (``hotlists:partial``) may enter and remove only
partial-plate patterns, each with a case number and an expiry (427.3(d)). Covert lists do not
exist for a caller without ``hotlists:view_covert``: they are left out of listings and answered
404, and the attempt is audited (:class:`service.Covert`). Every change is announced on
``plateflow:hotlists:changed`` so running workers reload the list without a restart.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

import service
from api._access import Guard, guard, guarded_router
from api._schemas import (
    ChangeOut,
    EntryIn,
    EntryOut,
    EntryRemovedOut,
    HotlistDetailOut,
    HotlistIn,
    HotlistOut,
    PolicyCostOut,
    PolicyIn,
)
from service import Acts

__all__ = ["router"]

router = guarded_router("hotlists")


@router.get(
    "/v1/hotlists",
    response_model=list[HotlistOut],
    summary="List hotlists",
    description="Every hotlist with its live entry count; covert ones only for roles allowed.",
)
def list_hotlists(*, g: Annotated[Guard, Depends(guard(Acts.HOTLIST_LIST))]) -> list[HotlistOut]:
    return [HotlistOut.of(h) for h in service.list_hotlists(g.door, g.actor)]


@router.post(
    "/v1/hotlists",
    status_code=201,
    response_model=HotlistOut,
    summary="Create a hotlist",
)
def create_hotlist(
    *,
    body: HotlistIn,
    g: Annotated[Guard, Depends(guard(Acts.HOTLIST_CREATE))],
) -> HotlistOut:
    info = service.create_hotlist(
        g.door, g.actor, body.name, category=body.category, policy=body.policy
    )
    return HotlistOut.of(info)


@router.get(
    "/v1/hotlists/{name}",
    response_model=HotlistDetailOut,
    summary="One hotlist with its entries and history",
    description="The live version (or `version`), entries paged by `offset` and `limit`.",
)
def get_hotlist(
    *,
    name: str,
    version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="An earlier version to show.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    g: Annotated[Guard, Depends(guard(Acts.HOTLIST_VIEW))],
) -> HotlistDetailOut:
    page = service.view_hotlist(g.door, g.actor, name, version=version, offset=offset, limit=limit)
    detail = page.detail
    return HotlistDetailOut(
        hotlist=HotlistOut.of(detail.info),
        version=detail.version,
        entries_total=len(detail.entries),
        entries=[EntryOut.of(e) for e in page.entries],
        history=[ChangeOut.of(c) for c in detail.history],
    )


@router.post(
    "/v1/hotlists/{name}/entries",
    status_code=201,
    response_model=EntryOut,
    summary="Add a plate or a partial-plate pattern",
    description="Administrators add any entry; investigators only patterns (`?`, `*`, `[...]`) "
    "with `case_number` and `expires_at`. A new version of the list; workers reload it.",
)
def add_entry(
    *,
    name: str,
    body: EntryIn,
    g: Annotated[Guard, Depends(guard(Acts.HOTLIST_ENTRY_ADD))],
) -> EntryOut:
    return EntryOut.of(service.add_entry(g.door, g.actor, name, **body.args()))


@router.delete(
    "/v1/hotlists/{name}/entries/{plate}",
    response_model=EntryRemovedOut,
    summary="Remove a plate or pattern",
)
def remove_entry(
    *,
    name: str,
    plate: str,
    state: Annotated[
        str | None, Query(max_length=8, description="When listed for several states.")
    ] = None,
    reason: Annotated[
        str | None, Query(max_length=500, description="Why it comes off the list.")
    ] = None,
    g: Annotated[Guard, Depends(guard(Acts.HOTLIST_ENTRY_REMOVE))],
) -> EntryRemovedOut:
    version = service.remove_entry(g.door, g.actor, name, plate, state=state, reason=reason)
    return EntryRemovedOut(hotlist=name, plate=plate, version=version)


@router.put(
    "/v1/hotlists/{name}/policy",
    response_model=PolicyCostOut,
    responses={
        409: {
            "description": "The policy would alert on more ordinary traffic than "
            "PLATEFLOW_POLICY_ALERT_CEILING allows (set force)."
        },
    },
    summary="Set the match policy",
    description="Estimates what share of ordinary reads the policy would alert on before it "
    "goes live; above the ceiling it is refused unless `force` is set.",
)
def set_policy(
    *,
    name: str,
    body: PolicyIn,
    g: Annotated[Guard, Depends(guard(Acts.HOTLIST_POLICY))],
) -> PolicyCostOut:
    cost = service.set_policy(g.door, g.actor, name, body.policy, force=body.force)
    assert cost is not None  # estimated on simulated traffic
    return PolicyCostOut.of(cost)
