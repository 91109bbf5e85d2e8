"""Login, logout, the caller's own record, and users and training (administration).

Login and logout are audited by :mod:`records` (every attempt, failures included). User and
training administration goes through :func:`api._access.guard` like every data endpoint: the
administrator is a named, trained member too, and says why (a case, event or ticket number, or
a description) each time; that justification sits in the audit log beside the change.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

import service
from api._access import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Credentials,
    Guard,
    client_of,
    door_of,
    error_doc,
    guard,
    guarded_router,
    session_token,
)
from api._errors import Refusal
from api._metrics import AUTH_FAILURES
from api._schemas import (
    DisableIn,
    LoginIn,
    LoginOut,
    OwnPasswordIn,
    PasswordIn,
    RolesIn,
    TotpCodeIn,
    TotpIn,
    TotpOut,
    TrainingIn,
    TrainingOut,
    UserDetailOut,
    UserIn,
    UserOut,
    iso,
)
from service import Acts

__all__ = ["router"]

_session = APIRouter(tags=["session"])
_users = guarded_router("users")

_LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error_doc("The body is not valid JSON."),
    422: error_doc("Username or password missing."),
    401: error_doc(
        "Unknown username, wrong password or one-time code, or a locked account "
        "(one answer for all), or a disabled account."
    ),
    429: error_doc("Too many failed logins from this client; `Retry-After` says when to retry."),
}


@_session.post(
    "/v1/auth/login",
    response_model=LoginOut,
    responses=_LOGIN_ERRORS,
    summary="Log in",
    description="Check the password (argon2), and `totp_code` for an account with a second "
    "factor, and open a session. Repeated failures lock the account for PLATEFLOW_LOCKOUT_S "
    "seconds; a client failing too often is throttled (429). Every attempt is in the audit log. "
    'With `"cookie": true` (a browser) the session also goes into the HttpOnly, SameSite=Strict '
    "cookie `plateflow_session` (Secure over https), and `csrf_token` (also the cookie "
    "`plateflow_csrf`) must come back as header `X-CSRF-Token` on every POST, PUT or DELETE.",
)
def login(*, body: LoginIn, request: Request, response: Response) -> LoginOut:
    try:
        session = service.login(
            door_of(request),
            body.username,
            body.password,
            client=client_of(request),
            totp_code=body.totp_code,
        )
    except service.Unauthenticated as exc:
        locked = isinstance(exc, service.Locked)
        AUTH_FAILURES.labels("login", "locked" if locked else "credentials").inc()
        raise
    csrf = _set_cookies(request, response, session) if body.cookie else None
    return LoginOut(
        token=session.token,
        expires_at=iso(session.expires_at_ms),
        user=UserOut.of(session.user),
        csrf_token=csrf,
    )


def _set_cookies(request: Request, response: Response, session: service.Session) -> str:
    """Set the browser's session and CSRF cookies; returns the CSRF token."""
    csrf = secrets.token_urlsafe(32)
    ttl = None
    if session.expires_at_ms is not None:
        ttl = max(1, (session.expires_at_ms - int(time.time() * 1000)) // 1000)
    secure = request.url.scheme == "https"
    common: dict[str, Any] = {"max_age": ttl, "path": "/", "samesite": "strict", "secure": secure}
    response.set_cookie(SESSION_COOKIE, session.token, httponly=True, **common)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)
    return csrf


def _clear_cookies(request: Request, response: Response) -> None:
    secure = request.url.scheme == "https"
    for name, httponly in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", samesite="strict", secure=secure, httponly=httponly)


@_session.post(
    "/v1/auth/logout",
    status_code=204,
    response_class=Response,
    responses={
        401: error_doc("No session token sent."),
        403: error_doc("Cookie session without `X-CSRF-Token`."),
    },
    summary="Log out",
    description="Close the session (idempotent); the logout is audited and the session "
    "cookies are cleared.",
)
def logout(*, request: Request, credentials: Credentials) -> Response:
    token = _token(
        request,
        credentials,
        missing="no session token: send `Authorization: Bearer <token>` or the session cookie",
    )
    service.logout(door_of(request), token, client=client_of(request))
    response = Response(status_code=204)
    _clear_cookies(request, response)
    return response


@_session.get(
    "/v1/auth/me",
    response_model=UserDetailOut,
    responses={401: error_doc("No session, or an expired one.")},
    summary="The logged-in user",
    description="Your own record, roles, permissions and training; no ALPR data. "
    "Bearer token or session cookie.",
)
def me(*, request: Request, credentials: Credentials) -> UserDetailOut:
    door = door_of(request)
    return _detail(service.describe_user(door, door.session_user(_token(request, credentials))))


def _token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    *,
    missing: str = "log in first: POST /v1/auth/login",
) -> str:
    """The caller's own session: the bearer token or the cookie (then, but for a GET, with
    its CSRF header). Without one, a 401 that says ``missing``."""
    token, csrf_refusal = session_token(request, credentials)
    if token is None:
        raise Refusal(401, missing, headers={"WWW-Authenticate": "Bearer"})
    if csrf_refusal is not None:
        raise Refusal(403, csrf_refusal, field="X-CSRF-Token")
    return token


_OWN: dict[int | str, dict[str, Any]] = {
    401: error_doc("No session, or an expired one."),
    403: error_doc("The current password (or the code) is wrong."),
    409: error_doc("Already enrolled, nothing to confirm, or no TOTP key configured."),
    422: error_doc("The new password breaks the password rules."),
}


@_session.put(
    "/v1/auth/password",
    status_code=204,
    response_class=Response,
    responses=_OWN,
    summary="Change your own password",
    description="The current password proves it is you; the new one must pass the rules. The "
    "one act allowed after an administrator's reset. Your other sessions are closed.",
)
def change_password(*, body: OwnPasswordIn, request: Request, credentials: Credentials) -> Response:
    service.change_password(
        door_of(request),
        _token(request, credentials),
        body.current_password,
        body.new_password,
        client=client_of(request),
    )
    return Response(status_code=204)


@_session.post(
    "/v1/auth/totp",
    status_code=201,
    response_model=TotpOut,
    responses=_OWN,
    summary="Enrol in the TOTP second factor",
    description="Your password proves it is you. The provisioning URI (it holds the secret) "
    "is returned this once; confirm it with a first code (POST /v1/auth/totp/confirm), and "
    "from then on login needs `totp_code`.",
)
def enrol_totp(*, body: TotpIn, request: Request, credentials: Credentials) -> TotpOut:
    uri = service.enrol_totp(
        door_of(request), _token(request, credentials), body.password, client=client_of(request)
    )
    return TotpOut(provisioning_uri=uri)


@_session.post(
    "/v1/auth/totp/confirm",
    response_model=UserOut,
    responses=_OWN,
    summary="Confirm the second factor with a first code",
    description="A code from the app just enrolled; from now on login needs `totp_code`. A "
    "wrong code counts as a failed login.",
)
def confirm_totp(*, body: TotpCodeIn, request: Request, credentials: Credentials) -> UserOut:
    user = service.confirm_totp(
        door_of(request), _token(request, credentials), body.code, client=client_of(request)
    )
    return UserOut.of(user)


def _detail(found: service.UserDetail) -> UserDetailOut:
    today = service.today()
    training = [TrainingOut.of(t, today) for t in found.training]
    return UserDetailOut(
        user=UserOut.of(found.user),
        training=training,
        training_current=any(t.current for t in training),
    )


# -- users (administrator) ----------------------------------------------------------------------


@_users.get("/v1/users", response_model=list[UserOut], summary="List users")
def list_users(
    *,
    include_disabled: Annotated[bool, Query(description="Also disabled accounts.")] = True,
    g: Annotated[Guard, Depends(guard(Acts.USER_LIST))],
) -> list[UserOut]:
    found = service.list_users(g.door, g.actor, include_disabled=include_disabled)
    return [UserOut.of(u) for u in found]


@_users.post("/v1/users", status_code=201, response_model=UserOut, summary="Add a user")
def add_user(*, body: UserIn, g: Annotated[Guard, Depends(guard(Acts.USER_ADD))]) -> UserOut:
    new = service.NewUser(body.username, body.name, body.agency, body.job_title, tuple(body.roles))
    user = service.add_user(g.door, g.actor, new, password=body.password)
    return UserOut.of(user)


@_users.get("/v1/users/{username}", response_model=UserDetailOut, summary="One user with training")
def get_user(
    *, username: str, g: Annotated[Guard, Depends(guard(Acts.USER_VIEW))]
) -> UserDetailOut:
    return _detail(service.view_user(g.door, g.actor, username))


@_users.put("/v1/users/{username}/roles", response_model=UserOut, summary="Set roles")
def set_roles(
    *, username: str, body: RolesIn, g: Annotated[Guard, Depends(guard(Acts.USER_ROLES))]
) -> UserOut:
    return UserOut.of(service.set_roles(g.door, g.actor, username, body.roles))


@_users.post(
    "/v1/users/{username}/disable", response_model=UserOut, summary="Disable a user (never deleted)"
)
def disable_user(
    *, username: str, body: DisableIn, g: Annotated[Guard, Depends(guard(Acts.USER_DISABLE))]
) -> UserOut:
    return UserOut.of(service.disable_user(g.door, g.actor, username, reason=body.reason))


@_users.post("/v1/users/{username}/enable", response_model=UserOut, summary="Re-enable a user")
def enable_user(*, username: str, g: Annotated[Guard, Depends(guard(Acts.USER_ENABLE))]) -> UserOut:
    return UserOut.of(service.enable_user(g.door, g.actor, username))


@_users.put(
    "/v1/users/{username}/password",
    status_code=204,
    response_class=Response,
    summary="Set a user's password (closes their sessions)",
)
def set_password(
    *, username: str, body: PasswordIn, g: Annotated[Guard, Depends(guard(Acts.USER_PASSWORD))]
) -> Response:
    service.set_password(g.door, g.actor, username, body.password)
    return Response(status_code=204)


@_users.get(
    "/v1/users/{username}/training", response_model=list[TrainingOut], summary="A user's training"
)
def list_training(
    *, username: str, g: Annotated[Guard, Depends(guard(Acts.TRAINING_LIST))]
) -> list[TrainingOut]:
    today = service.today()
    return [TrainingOut.of(t, today) for t in service.list_training(g.door, g.actor, username)]


@_users.post(
    "/v1/users/{username}/training",
    status_code=201,
    response_model=TrainingOut,
    summary="Record completed training",
)
def record_training(
    *, username: str, body: TrainingIn, g: Annotated[Guard, Depends(guard(Acts.TRAINING_RECORD))]
) -> TrainingOut:
    done = service.record_training(
        g.door,
        g.actor,
        username,
        course=body.course,
        completed_on=body.completed_on,
        expires_on=body.expires_on,
    )
    return TrainingOut.of(done, service.today())


@_users.get(
    "/v1/training/lapsed",
    response_model=list[UserOut],
    summary="Active users without current training",
)
def lapsed_training(*, g: Annotated[Guard, Depends(guard(Acts.TRAINING_LAPSED))]) -> list[UserOut]:
    return [UserOut.of(u) for u in service.lapsed_training(g.door, g.actor)]


router = APIRouter()
for _part in (_session, _users):
    router.include_router(_part)
