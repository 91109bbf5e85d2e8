"""The HTTP side of the service's door (policy 427.3, 427.5): who is calling, and why.

Every data endpoint takes a :class:`Guard` from :func:`guard` (given the endpoint's
:class:`service.Act`) as a dependency. Before the endpoint parses the rest of the request, the
dependency reads the session token (``Authorization: Bearer``, or for a browser the
``plateflow_session`` cookie, whose unsafe requests must echo the ``plateflow_csrf`` cookie in
``X-CSRF-Token``: :func:`session_token`) and the justification (query
string ``case_number``, ``event_number``, ``description``, or the same keys at the top of a
JSON body) and has :meth:`service.Door.enter` check the session (401), the permission and
training (403) and the justification (422 naming the field), each refusal audited. The
endpoint then calls the act in :mod:`service` with ``g.door`` and ``g.actor``, which checks
again and runs inside the audited transaction; service errors become HTTP answers by class
(:mod:`api._errors`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

import service
from api._metrics import AUTH_FAILURES
from api._schemas import ErrorBody

log = logging.getLogger(__name__)

__all__ = [
    "ANONYMOUS",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "GUARDED_RESPONSES",
    "SESSION_COOKIE",
    "Credentials",
    "Guard",
    "bearer",
    "client_of",
    "door_of",
    "error_doc",
    "guard",
    "guarded_router",
    "justification",
    "session_token",
]

T = TypeVar("T")

#: The username recorded for a request that carried no valid session.
ANONYMOUS = service.ANONYMOUS
_JUSTIFICATION_KEYS = ("case_number", "event_number", "description")

#: A browser's session (HttpOnly) and its CSRF token (readable by the page), set by
#: ``POST /v1/auth/login`` with ``"cookie": true``.
SESSION_COOKIE = "plateflow_session"
CSRF_COOKIE = "plateflow_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Session",
    description="The session token returned by POST /v1/auth/login, as `Bearer <token>`.",
)
#: A request's bearer credentials, if it sends any (:func:`session_token` also reads the cookie).
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


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


def session_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> tuple[str | None, str | None]:
    """The session token of a request, and why it must be refused if it must.

    ``Authorization: Bearer`` wins (programs); else the ``plateflow_session`` cookie (a
    browser), whose requests other than GET, HEAD and OPTIONS must carry ``X-CSRF-Token``
    equal to the ``plateflow_csrf`` cookie: a page on another site can make the browser send
    the cookie, but cannot read the CSRF cookie to copy it into the header."""
    if credentials is not None:
        return credentials.credentials, None
    token = request.cookies.get(SESSION_COOKIE) or None
    if token is None or request.method in _SAFE_METHODS:
        return token, None
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if expected and sent and secrets.compare_digest(sent.encode(), expected.encode()):
        return token, None
    return token, (
        f"a request signed in by the session cookie must send header {CSRF_HEADER} with the "
        f"value of the {CSRF_COOKIE} cookie (given at login): missing or wrong"
    )


def door_of(request: Request) -> service.Door:
    door: service.Door = request.app.state.door
    return door


def guard(
    act: service.Act, *, default_why: service.Justification | None = None
) -> Callable[..., Any]:
    """A FastAPI dependency that admits only a justified, permitted, trained, logged-in user
    for ``act`` (:meth:`service.Door.enter`), before the rest of the request is parsed.
    Every refusal is audited under the act's action. ``default_why`` stands in for a
    justification the request does not give (the alert stream's :data:`service.CONSOLE_WATCH`).
    """

    async def dependency(
        *,
        request: Request,
        credentials: Credentials,
        given: Annotated[service.Justification, Security(justification)],
    ) -> Guard:
        door = door_of(request)
        why = await _body_justification(request, given)
        if default_why is not None and not (why.case_number or why.event_number or why.description):
            why = default_why
        token, csrf_refusal = session_token(request, credentials)

        def check() -> Guard:
            if csrf_refusal is not None:
                _refuse_csrf(door, act, token, request, why, csrf_refusal)
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


def _refuse_csrf(
    door: service.Door,
    act: service.Act,
    token: str | None,
    request: Request,
    why: service.Justification,
    message: str,
) -> None:
    """Audit and raise a cookie-signed request without its CSRF token (403)."""
    try:
        username = door.session_user(token).username if token else ANONYMOUS
    except service.Unauthenticated:
        username = ANONYMOUS
    door.record_attempt(
        username,
        act.action,
        act.kind,
        "denied",
        f"csrf: {message}",
        _request_terms(request),
        client_of(request),
        why,
    )
    AUTH_FAILURES.labels("session", "csrf").inc()
    raise service.Forbidden(message, CSRF_HEADER, reason="csrf")


def error_doc(description: str) -> dict[str, Any]:
    """One refusal of an endpoint, for the OpenAPI document: an :class:`ErrorBody` and why."""
    return {"model": ErrorBody, "description": description}


#: The refusals every guarded endpoint may answer, for the OpenAPI document.
GUARDED_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: error_doc("The body is not valid JSON."),
    401: error_doc("No session, or an unknown or expired one."),
    403: error_doc("The role does not allow it, or the user has no current training."),
    404: error_doc("No such user, hotlist or request (or covert)."),
    409: error_doc(
        "It collides with what is recorded, or the workflow does not allow this step now."
    ),
    422: error_doc(
        "No case number, event number or long enough description (the `field` says which), "
        "or an invalid value."
    ),
    503: error_doc("The audit record could not be written."),
}


def guarded_router(tag: str) -> APIRouter:
    """A router of guarded endpoints under ``tag``: each documents :data:`GUARDED_RESPONSES`
    (a route's own ``responses`` add a status or replace one)."""
    return APIRouter(tags=[tag], responses=GUARDED_RESPONSES)
