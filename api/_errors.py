"""The API package's errors and the translation of service errors into HTTP answers, by
class (never by the wording of a message)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import JSONResponse

import service
from plateflow.errors import PlateflowError

log = logging.getLogger(__name__)

__all__ = [
    "ApiError",
    "Refusal",
    "refusal_response",
    "service_error_response",
    "service_status",
]


class ApiError(PlateflowError):
    """The HTTP API cannot start or serve; the message names the setting or service to fix."""


class Refusal(Exception):
    """An HTTP refusal with a sentence for the caller and, for 422, the field to fix."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})


def _body(detail: str, field: str | None) -> dict[str, str]:
    return {"detail": detail, "field": field} if field else {"detail": detail}


async def refusal_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    return JSONResponse(_body(exc.detail, exc.field), exc.status, headers=exc.headers or None)


#: service error class -> HTTP status; the most specific class listed first wins.
_SERVICE_STATUS: tuple[tuple[type[service.ServiceError], int], ...] = (
    (service.Throttled, 429),
    (service.Unauthenticated, 401),  # a locked account too: the same 401 as a wrong password
    (service.Forbidden, 403),
    (service.NotFound, 404),
    (service.Conflict, 409),
    (service.Unavailable, 503),
    (service.Invalid, 422),
)


def service_status(exc: service.ServiceError) -> int:
    """The HTTP status of a service error."""
    return next((status for cls, status in _SERVICE_STATUS if isinstance(exc, cls)), 422)


async def service_error_response(request: Request, exc: Exception) -> JSONResponse:
    """A :class:`PlateflowError` from an act, answered by its class: a service error, or
    the service error :func:`service.as_service_error` gives a records error."""
    assert isinstance(exc, PlateflowError)
    error = service.as_service_error(exc)
    if error is None:  # no act's refusal: a fault, logged with its traceback
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error; the operator has the details"}, 500)
    status = service_status(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(error, service.Throttled):
        headers = {"Retry-After": str(error.retry_after_s)}
    return JSONResponse(_body(str(error), error.field), status, headers=headers)
