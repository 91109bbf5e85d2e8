"""Hotlists and their entries.

Viewing a list is an inquiry (justified, audited). Administrators create lists, add and remove
entries and set policies; investigators (``hotlists:partial``) may enter and remove only
partial-plate patterns, each with a case number and an expiry (427.3(d)). Covert lists do not
exist for a caller without ``hotlists:view_covert``: they are left out of listings and answered
404, and the attempt is audited. Every change is announced on ``plateflow:hotlists:changed`` so
running workers reload the list without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Query, Request

import records
from api._access import GUARDED_RESPONSES, Guard, guard
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
from sinks import HOTLISTS_CHANGED

__all__ = ["router"]

router = APIRouter(tags=["hotlists"])

#: Plates of simulated ordinary traffic used to estimate what a policy will cost.
POLICY_SAMPLE_SIZE = 10_000
_PATTERN_CHARS = frozenset("?*[")
_MANAGE = "hotlists:manage"
_PARTIAL = "hotlists:partial"
_COVERT = "hotlists:view_covert"


def _notifier(request: Request) -> Callable[[str], None]:
    client: redis.Redis = request.app.state.redis

    def notify(name: str) -> None:
        client.publish(HOTLISTS_CHANGED, name)

    return notify


def _is_pattern(text: str) -> bool:
    return any(ch in _PATTERN_CHARS for ch in text)


def _info(g: Guard, name: str) -> records.HotlistInfo | None:
    """The list's summary (cheap: no entries), or None when the caller may not know of it."""
    found = next((h for h in records.list_hotlists(g.engine) if h.name == name), None)
    if found is not None and found.covert and not g.can(_COVERT):
        return None
    return found


def _require_partial_only(g: Guard, plate: str) -> None:
    if not g.can(_MANAGE) and not _is_pattern(plate):
        raise g.deny(
            403,
            f"user {g.user.username!r} may enter and remove partial-plate patterns only "
            f"(427.3(d)); {plate!r} is a full plate, which needs {_MANAGE!r} (an administrator)",
            "forbidden",
        )


@router.get(
    "/v1/hotlists",
    response_model=list[HotlistOut],
    responses=GUARDED_RESPONSES,
    summary="List hotlists",
    description="Every hotlist with its live entry count; covert ones only for roles allowed.",
)
def list_hotlists(
    *, g: Annotated[Guard, Depends(guard("hotlists.list", "hotlists:view"))]
) -> list[HotlistOut]:
    covert = g.can(_COVERT)

    found = g.read_all(
        lambda: records.list_hotlists(g.engine, include_covert=covert),
        terms={"covert_visible": covert},
    )
    return [HotlistOut.of(h) for h in found]


@router.post(
    "/v1/hotlists",
    status_code=201,
    response_model=HotlistOut,
    responses=GUARDED_RESPONSES,
    summary="Create a hotlist",
)
def create_hotlist(
    *,
    body: HotlistIn,
    request: Request,
    g: Annotated[Guard, Depends(guard("hotlists.create", _MANAGE, kind="hotlist"))],
) -> HotlistOut:
    info = g.write(
        lambda: records.create_hotlist(
            g.engine,
            body.name,
            category=body.category,
            user=g.user.username,
            policy=body.policy,
            notify=_notifier(request),
        ),
        terms={"hotlist": body.name, "category": body.category},
    )
    return HotlistOut.of(info)


@router.get(
    "/v1/hotlists/{name}",
    response_model=HotlistDetailOut,
    responses=GUARDED_RESPONSES,
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
    g: Annotated[Guard, Depends(guard("hotlists.view", "hotlists:view"))],
) -> HotlistDetailOut:
    def run(access: records.AuditedAccess) -> HotlistDetailOut:
        detail = records.get_hotlist(g.engine, name, version=version)
        if detail.info.covert and not g.can(_COVERT):
            raise records.NotFoundError(f"no hotlist {name!r}")
        page = detail.entries[offset : offset + limit]
        access.result_count = len(page)
        return HotlistDetailOut(
            hotlist=HotlistOut.of(detail.info),
            version=detail.version,
            entries_total=len(detail.entries),
            entries=[EntryOut.of(e) for e in page],
            history=[ChangeOut.of(c) for c in detail.history],
        )

    return g.read(run, terms={"hotlist": name, "version": version})


@router.post(
    "/v1/hotlists/{name}/entries",
    status_code=201,
    response_model=EntryOut,
    responses=GUARDED_RESPONSES,
    summary="Add a plate or a partial-plate pattern",
    description="Administrators add any entry; investigators only patterns (`?`, `*`, `[...]`) "
    "with `case_number` and `expires_at`. A new version of the list; workers reload it.",
)
def add_entry(
    *,
    name: str,
    body: EntryIn,
    request: Request,
    g: Annotated[Guard, Depends(guard("hotlists.entry.add", (_MANAGE, _PARTIAL), kind="hotlist"))],
) -> EntryOut:
    _require_partial_only(g, body.plate)
    if _info(g, name) is None and not (g.can(_MANAGE) and body.category):
        raise g.deny(
            404, f"no hotlist {name!r}; an administrator can create it with a category", "not_found"
        )
    entry = g.write(
        lambda: records.add_entry(
            g.engine,
            name,
            body.plate,
            user=g.user.username,
            reason=body.reason,
            state=body.state,
            # the entry belongs to the case the inquiry is for unless the body names another
            case_number=body.case_number or g.why.case_number,
            expires_at=body.expires_at,
            effective_from=body.effective_from,
            category=body.category if g.can(_MANAGE) else None,
            notify=_notifier(request),
        ),
        terms={
            "hotlist": name,
            "plate": body.plate,
            "state": body.state,
            "entry_case_number": body.case_number,
        },
    )
    return EntryOut.of(entry)


@router.delete(
    "/v1/hotlists/{name}/entries/{plate}",
    response_model=EntryRemovedOut,
    responses=GUARDED_RESPONSES,
    summary="Remove a plate or pattern",
)
def remove_entry(
    *,
    name: str,
    plate: str,
    request: Request,
    state: Annotated[
        str | None, Query(max_length=8, description="When listed for several states.")
    ] = None,
    reason: Annotated[
        str | None, Query(max_length=500, description="Why it comes off the list.")
    ] = None,
    g: Annotated[
        Guard, Depends(guard("hotlists.entry.remove", (_MANAGE, _PARTIAL), kind="hotlist"))
    ],
) -> EntryRemovedOut:
    _require_partial_only(g, plate)
    if _info(g, name) is None:
        raise g.deny(404, f"no hotlist {name!r}", "not_found")
    version = g.write(
        lambda: records.remove_entry(
            g.engine,
            name,
            plate,
            user=g.user.username,
            state=state,
            reason=reason,
            notify=_notifier(request),
        ),
        terms={"hotlist": name, "plate": plate, "state": state},
    )
    return EntryRemovedOut(hotlist=name, plate=plate, version=version)


@router.put(
    "/v1/hotlists/{name}/policy",
    response_model=PolicyCostOut,
    responses={
        **GUARDED_RESPONSES,
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
    request: Request,
    g: Annotated[Guard, Depends(guard("hotlists.policy", _MANAGE, kind="hotlist"))],
) -> PolicyCostOut:
    if _info(g, name) is None:
        raise g.deny(404, f"no hotlist {name!r}", "not_found")
    cost = g.write(
        lambda: records.set_policy(
            g.engine,
            name,
            body.policy,
            user=g.user.username,
            notify=_notifier(request),
            sample=records.simulated_sample(POLICY_SAMPLE_SIZE),
            ceiling=g.settings.policy_alert_ceiling,
            force=body.force,
        ),
        terms={"hotlist": name, "policy": body.policy, "force": body.force},
    )
    assert cost is not None  # a sample and a ceiling were given
    return PolicyCostOut.of(cost)
