"""The HTTP side of the service's door (policy 427.3, 427.5): who is calling, and why.

Every data endpoint takes a :class:`Guard` from :func:`guard` (given the endpoint's
:class:`service.Act`) as a dependency. Before the endpoint parses the rest of the request, the
dependency reads the session token (``Authorization: Bearer``) and the justification (query
string ``case_number``, ``event_number``, ``description``, or the same keys at the top of a
JSON body) and has :meth:`service.Door.enter` check the session (401), the permission and
training (403) and the justification (422 naming the field), each refusal audited. The
endpoint then calls the act in :mod:`service` with ``g.door`` and ``g.actor``, which checks
again and runs inside the audited transaction; service errors become HTTP answers by class
(:mod:`api._errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

import service
from api._metrics import AUTH_FAILURES
from api._schemas import ErrorBody

log = logging.getLogger(__name__)

__all__ = [
    "ANONYMOUS",
    "GUARDED_RESPONSES",
    "Guard",
    "bearer",
    "client_of",
    "door_of",
    "guard",
    "justification",
]

T = TypeVar("T")

#: The username recorded for a request that carried no valid session.
ANONYMOUS = service.ANONYMOUS
_JUSTIFICATION_KEYS = ("case_number", "event_number", "description")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Session",
    description="The session token returned by POST /v1/auth/login, as `Bearer <token>`.",
)


def justification(
    case_number: Annotated[
        str | None, Query(max_length=64, description="Case number the inquiry is for (427.3(c)).")
    ] = None,
    event_number: Annotated[
        str | None,
        Query(max_length=64, description="Event (CAD incident) number, if there is no case."),
    ] = None,
    description: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="Without a case or event number: why the data is needed "
            "(at least PLATEFLOW_MIN_DESCRIPTION_LENGTH characters).",
        ),
    ] = None,
) -> service.Justification:
    """The justification given in the query string (documented on every data endpoint)."""
    return service.Justification(case_number, event_number, description)


def client_of(request: Request) -> str | None:
    """The client address recorded in the audit log."""
    return request.client.host if request.client else None


def _request_terms(request: Request) -> dict[str, Any]:
    query = {k: v for k, v in request.query_params.items() if k not in _JUSTIFICATION_KEYS}
    terms: dict[str, Any] = {"path": request.url.path}
    if query:
        terms["query"] = query
    return terms


async def _body_justification(
    request: Request, given: service.Justification
) -> service.Justification:
    if given.case_number or given.event_number or given.description:
        return given
    if "json" not in request.headers.get("content-type", ""):
        return given
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return given
    if not isinstance(body, dict):
        return given
    found = {k: body.get(k) for k in _JUSTIFICATION_KEYS}
    clean = {
        k: v.strip()[:2000] if isinstance(v, str) and v.strip() else None for k, v in found.items()
    }
    return service.Justification(**clean)


@dataclass(frozen=True)
class Guard:
    """The checked caller of one request: the service's door and the actor it admitted."""

    door: service.Door
    actor: service.Actor

    @property
    def user(self) -> service.User:
        return self.actor.user

    def can(self, permission: str) -> bool:
        return self.actor.can(permission)


def door_of(request: Request) -> service.Door:
    door: service.Door = request.app.state.door
    return door


def guard(act: service.Act) -> Callable[..., Any]:
    """A FastAPI dependency that admits only a justified, permitted, trained, logged-in user
    for ``act`` (:meth:`service.Door.enter`), before the rest of the request is parsed.
    Every refusal is audited under the act's action."""

    async def dependency(
        *,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        given: Annotated[service.Justification, Security(justification)],
    ) -> Guard:
        door = door_of(request)
        why = await _body_justification(request, given)
        token = credentials.credentials if credentials is not None else None

        def check() -> Guard:
            try:
                actor = door.enter(
                    act,
                    token,
                    why=why,
                    client=client_of(request),
                    origin=_request_terms(request),
                    login_hint="log in first: POST /v1/auth/login, then send "
                    "`Authorization: Bearer <token>`",
                )
            except service.ServiceError as exc:
                AUTH_FAILURES.labels("session", exc.reason).inc()
                raise
            return Guard(door, actor)

        return await run_in_threadpool(check)

    return dependency


#: The refusals every guarded endpoint may answer, for the OpenAPI document.
GUARDED_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not valid JSON."},
    401: {"model": ErrorBody, "description": "No session, or an unknown or expired one."},
    403: {
        "model": ErrorBody,
        "description": "The role does not allow it, or the user has no current training.",
    },
    404: {"model": ErrorBody, "description": "No such user, hotlist or request (or covert)."},
    409: {
        "model": ErrorBody,
        "description": "It collides with what is recorded, or the "
        "workflow does not allow this step now.",
    },
    422: {
        "model": ErrorBody,
        "description": "No case number, event number or long enough description (the "
        "`field` says which), or an invalid value.",
    },
    503: {"model": ErrorBody, "description": "The audit record could not be written."},
}
