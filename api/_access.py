"""Authenticated, authorised, trained, justified and audited access (policy 427.3, 427.5).

Every data endpoint takes a :class:`Guard` from :func:`guard` as a dependency. Before the
endpoint runs, the dependency:

1. resolves the session token (``Authorization: Bearer``) -> 401 if absent, unknown or expired;
2. checks the inquiry with :func:`records.check_inquiry`: the user holds the permission (else
   403), has current training (else 403, saying so), and gave a case number, an event number or
   a long enough description (else 422 naming the field);

and writes a ``denied`` audit record for each refusal, anonymous ones included, before
answering. The justification is read from the query string (``case_number``, ``event_number``,
``description``), or else from the same keys at the top of a JSON body.

The endpoint then runs its work through the guard:

* :meth:`Guard.read` runs inside :func:`records.audited`: the checks run again and the
  ``allowed`` record, with the result count, is written in the same transaction before any
  result leaves the server; if it cannot be written the request fails.
* :meth:`Guard.write` runs a records function (which audits the change itself, atomically) and
  then appends the inquiry record carrying the justification with the real outcome, ``allowed``
  or ``failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

import records
from api._errors import Refusal, status_for
from api._metrics import AUTH_FAILURES
from api._schemas import ErrorBody
from plateflow.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "ANONYMOUS",
    "GUARDED_RESPONSES",
    "Guard",
    "Justification",
    "audit_attempt",
    "bearer",
    "client_of",
    "guard",
    "justification",
]

T = TypeVar("T")

#: The username recorded for a request that carried no valid session.
ANONYMOUS = "(anonymous)"
_JUSTIFICATION_KEYS = ("case_number", "event_number", "description")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Session",
    description="The session token returned by POST /v1/auth/login, as `Bearer <token>`.",
)


@dataclass(frozen=True)
class Justification:
    """Why the data is needed (427.3(c)): a case number, an event number, or a description."""

    case_number: str | None = None
    event_number: str | None = None
    description: str | None = None

    def as_kwargs(self) -> dict[str, str | None]:
        return {
            "case_number": self.case_number,
            "event_number": self.event_number,
            "description": self.description,
        }


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
) -> Justification:
    """The justification given in the query string (documented on every data endpoint)."""
    return Justification(case_number, event_number, description)


def client_of(request: Request) -> str | None:
    """The client address recorded in the audit log."""
    return request.client.host if request.client else None


def _request_terms(request: Request) -> dict[str, Any]:
    query = {k: v for k, v in request.query_params.items() if k not in _JUSTIFICATION_KEYS}
    terms: dict[str, Any] = {"path": request.url.path}
    if query:
        terms["query"] = query
    return terms


async def _body_justification(request: Request, given: Justification) -> Justification:
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
    return Justification(**clean)


def audit_attempt(
    engine: Engine,
    *,
    username: str,
    action: str,
    kind: str,
    outcome: str,
    reason: str | None,
    terms: Mapping[str, Any],
    client: str | None,
    why: Justification | None = None,
    result_count: int | None = None,
) -> None:
    """Append one audit record in its own transaction (refusals and write outcomes)."""
    with engine.begin() as conn:
        records.append_audit(
            conn,
            username=username,
            action=action,
            kind=kind,
            outcome=outcome,
            reason=reason[:1000] if reason else None,
            terms=terms,
            client=client,
            result_count=result_count,
            case_number=why.case_number if why else None,
            event_number=why.event_number if why else None,
            description=why.description if why else None,
        )


@dataclass
class Guard:
    """The checked caller of one request, and the way its work is run and audited."""

    engine: Engine
    settings: Settings
    user: records.User
    why: Justification
    action: str
    permission: str
    kind: str
    data_access: bool
    client: str | None
    terms: dict[str, Any]

    @property
    def inquiry(self) -> records.Inquiry:
        return records.Inquiry(self.user.username, **self.why.as_kwargs())

    def can(self, permission: str) -> bool:
        return self.user.can(permission)

    def read(
        self, fn: Callable[[records.AuditedAccess], T], terms: Mapping[str, Any] | None = None
    ) -> T:
        """Run ``fn`` under :func:`records.audited`; ``fn`` sets ``access.result_count``."""
        with records.audited(
            self.engine,
            self.inquiry,
            self.action,
            permission=self.permission,
            terms={**self.terms, **(terms or {})},
            client=self.client,
            kind=self.kind,
            data_access=self.data_access,
            min_description_length=self.settings.min_description_length,
        ) as access:
            return fn(access)

    def read_all(
        self, fetch: Callable[[], list[T]], terms: Mapping[str, Any] | None = None
    ) -> list[T]:
        """:meth:`read` of a list: the audit record's ``result_count`` is its length."""

        def run(access: records.AuditedAccess) -> list[T]:
            found = fetch()
            access.result_count = len(found)
            return found

        return self.read(run, terms)

    def write(self, fn: Callable[[], T], terms: Mapping[str, Any] | None = None) -> T:
        """Run a records change, then record the justified attempt with its outcome."""
        all_terms = {**self.terms, **(terms or {})}
        try:
            result = fn()
        except records.RecordsError as exc:
            self._record("failed", f"{exc.__class__.__name__}: {exc}", all_terms)
            raise
        self._record("allowed", None, all_terms)
        return result

    def deny(self, status: int, message: str, reason: str, field: str | None = None) -> Refusal:
        """Audit a refusal decided by the endpoint (a covert list, a partial-only role, a bad
        value) and return the answer to raise."""
        self._record("denied", f"{reason}: {message}", self.terms)
        if status in (401, 403):
            AUTH_FAILURES.labels("session", reason).inc()
        return Refusal(status, message, field=field)

    def _record(self, outcome: str, reason: str | None, terms: Mapping[str, Any]) -> None:
        audit_attempt(
            self.engine,
            username=self.user.username,
            action=self.action,
            kind=self.kind,
            outcome=outcome,
            reason=reason,
            terms=terms,
            client=self.client,
            why=self.why,
        )


def guard(
    action: str,
    permission: str | tuple[str, ...],
    *,
    kind: str = "inquiry",
    data_access: bool = True,
) -> Callable[..., Any]:
    """A FastAPI dependency that admits only a justified, permitted, trained, logged-in user.

    ``permission`` may be a tuple: the first one the user holds is checked (the endpoint then
    narrows what a weaker permission may do). Every refusal is audited under ``action``.
    """
    wanted = (permission,) if isinstance(permission, str) else permission

    async def dependency(
        *,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        given: Annotated[Justification, Security(justification)],
    ) -> Guard:
        engine: Engine = request.app.state.engine
        settings: Settings = request.app.state.settings
        client = client_of(request)
        terms = _request_terms(request)
        why = await _body_justification(request, given)

        def refuse(
            username: str, status: int, reason: str, message: str, field: str | None = None
        ) -> Refusal:
            audit_attempt(
                engine,
                username=username,
                action=action,
                kind=kind,
                outcome="denied",
                reason=f"{reason}: {message}",
                terms=terms,
                client=client,
                why=why,
            )
            AUTH_FAILURES.labels("session", reason).inc()
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return Refusal(status, message, field=field, headers=headers)

        def check() -> Guard:
            if credentials is None:
                raise refuse(
                    ANONYMOUS,
                    401,
                    "no_login",
                    "log in first: POST /v1/auth/login, then send `Authorization: Bearer <token>`",
                )
            try:
                user = records.resolve_session(engine, credentials.credentials)
            except records.SessionError as exc:
                raise refuse(ANONYMOUS, 401, "session", str(exc)) from exc
            chosen = next((p for p in wanted if user.can(p)), wanted[0])
            inquiry = records.Inquiry(user.username, **why.as_kwargs())
            try:
                records.check_inquiry(
                    engine,
                    inquiry,
                    chosen,
                    data_access=data_access,
                    min_description_length=settings.min_description_length,
                )
            except records.AccessDenied as exc:
                message = str(exc)
                if exc.reason == "forbidden" and len(wanted) > 1:
                    message += f" (any of {', '.join(wanted)} is needed)"
                raise refuse(
                    user.username, status_for(exc), exc.reason, message, exc.field
                ) from exc
            return Guard(
                engine, settings, user, why, action, chosen, kind, data_access, client, terms
            )

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
