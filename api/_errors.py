"""The API package's errors and the translation of records errors into HTTP answers."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import JSONResponse

import records
import sinks
from plateflow.errors import PlateflowError

__all__ = [
    "ApiError",
    "Refusal",
    "records_error_response",
    "refusal_response",
    "sinks_status",
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


#: records error class -> HTTP status; the most specific class listed first wins.
_STATUS: tuple[tuple[type[records.RecordsError], int], ...] = (
    (records.AccountLockedError, 423),
    (records.SessionError, 401),
    (records.AuthError, 401),
    (records.NotFoundError, 404),
    (records.ConflictError, 409),
    (records.ReleaseError, 409),
    (records.PolicyCostError, 409),
    (records.WeakPasswordError, 422),
    (records.HotlistImportError, 422),
    (records.NotifyError, 503),
    (records.AuditError, 503),
)


def status_for(exc: records.RecordsError) -> int:
    """The HTTP status of a records error (an unlisted one is a bad value: 422)."""
    if isinstance(exc, records.AccessDenied):
        return {"unknown_user": 401, "no_justification": 422}.get(exc.reason, 403)
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 422


#: sinks error class -> HTTP status (SinksValueError and any other: 422).
_SINKS_STATUS: tuple[tuple[type[sinks.SinksError], int], ...] = (
    (sinks.SinksNotFoundError, 404),
    (sinks.SinksConflictError, 409),
)


def sinks_status(exc: sinks.SinksError) -> int:
    """The HTTP status of a sinks refusal, chosen by its class (never by its message)."""
    return next((status for cls, status in _SINKS_STATUS if isinstance(exc, cls)), 422)


async def records_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, records.RecordsError)
    status = status_for(exc)
    field = exc.field if isinstance(exc, records.AccessDenied) else None
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(_body(str(exc), field), status, headers=headers)
