"""The errors of the service layer: one root, :class:`ServiceError`, one class per kind of
refusal, so an adapter (the HTTP API, the CLI) answers by class and never parses a sentence.

Every error carries ``kind`` (``invalid``, ``not_found``, ``conflict``, ``forbidden``,
``unauthenticated``) and, when one parameter is to blame, ``field``: the name of the value to
fix, in the service's vocabulary (the API's query and body names are the same words).
"""

from __future__ import annotations

from typing import ClassVar

import records
import sinks
from plateflow.errors import PlateflowError

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "Locked",
    "NotFound",
    "ServiceError",
    "Throttled",
    "Unauthenticated",
    "Unavailable",
    "as_service_error",
    "from_access_denied",
    "from_refusal",
    "from_sinks",
]


class ServiceError(PlateflowError):
    """An act that cannot be done as asked; the message names the thing and the fix."""

    kind: ClassVar[str] = "invalid"

    def __init_subclass__(cls, kind: str | None = None, **kwargs: object) -> None:
        # A class names its kind in its header, ``class NotFound(ServiceError, kind=...)``;
        # without one it keeps its parent's.
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind

    def __init__(
        self, message: str, field: str | None = None, *, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        #: the audit log's word for the refusal (``untrained``, ``no_justification``...)
        self.reason = reason or self.kind


class Invalid(ServiceError, kind="invalid"):
    """A value the act cannot use (``field`` names it)."""


class NotFound(ServiceError, kind="not_found"):
    """The thing asked for does not exist, or does not exist for this actor (a covert list)."""


class Conflict(ServiceError, kind="conflict"):
    """What is recorded (a hold, a release request, an export directory) does not allow it."""


class Forbidden(ServiceError, kind="forbidden"):
    """The actor's role, training or covert rights do not allow it."""


class Unauthenticated(ServiceError, kind="unauthenticated"):
    """No session, or an unknown, closed or expired one: log in first."""


class Locked(Unauthenticated, kind="locked"):
    """Too many failed logins: the account is locked until ``locked_until_ms``."""

    def __init__(self, message: str, locked_until_ms: int) -> None:
        super().__init__(message, reason="locked")
        self.locked_until_ms = locked_until_ms


class Throttled(ServiceError, kind="throttled"):
    """Too many failed logins from one client: try again in ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, reason="throttled")
        self.retry_after_s = retry_after_s


class Unavailable(ServiceError, kind="unavailable"):
    """The audit record (or a change notice) could not be written: nothing was returned."""


#: records error class -> service error class; the most specific class listed first wins.
_RECORDS: tuple[tuple[type[records.RecordsError], type[ServiceError]], ...] = (
    (records.AuthError, Unauthenticated),
    (records.NotFoundError, NotFound),
    (records.ConflictError, Conflict),
    (records.ReleaseError, Conflict),
    (records.PolicyCostError, Conflict),
    (records.NotifyError, Unavailable),
    (records.AuditError, Unavailable),
)


def from_sinks(exc: sinks.SinksError, field: str | None = None) -> ServiceError:
    """The service error of a store refusal, by its class (not found, conflict, else a bad
    value), naming the store's ``field`` or else ``field``."""
    if isinstance(exc, sinks.SinksNotFoundError):
        return NotFound(str(exc), exc.field or field)
    if isinstance(exc, sinks.SinksConflictError):
        return Conflict(str(exc), exc.field or field)
    return Invalid(str(exc), exc.field or field)


def as_service_error(exc: PlateflowError) -> ServiceError | None:
    """The service error an adapter answers for ``exc``: itself, or the kind of a records or
    store error the acts let through (a bad value when unlisted); None for any other error."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, sinks.SinksError):
        return from_sinks(exc)
    if not isinstance(exc, records.RecordsError):
        return None
    if isinstance(exc, records.AccessDenied):
        return from_access_denied(exc)
    if isinstance(exc, records.LoginThrottled):
        return Throttled(str(exc), exc.retry_after_s)
    if isinstance(exc, records.AccountLockedError):
        return Locked(str(exc), exc.locked_until_ms)
    if isinstance(exc, records.SessionError):
        return Unauthenticated(str(exc), reason="session")
    cls = next((kind for source, kind in _RECORDS if isinstance(exc, source)), Invalid)
    return cls(str(exc), getattr(exc, "field", None))


def from_access_denied(exc: records.AccessDenied) -> ServiceError:
    """The service error of a refusal :mod:`records` decided (and already audited)."""
    return from_refusal(str(exc), exc.reason, exc.field)


def from_refusal(message: str, reason: str, field: str | None = None) -> ServiceError:
    """The service error of a refusal with the audit reason ``reason``."""
    if reason in ("unknown_user", "unauthenticated"):
        return Unauthenticated(message, field, reason=reason)
    if reason == "no_justification":
        return Invalid(message, field, reason=reason)
    return Forbidden(message, field, reason=reason)
