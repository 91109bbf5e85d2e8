"""The errors of the service layer: one root, :class:`ServiceError`, one class per kind of
refusal, so an adapter (the HTTP API, the CLI) answers by class and never parses a sentence.

Every error carries ``kind`` (``invalid``, ``not_found``, ``conflict``, ``forbidden``,
``unauthenticated``) and, when one parameter is to blame, ``field``: the name of the value to
fix, in the service's vocabulary (the API's query and body names are the same words).
"""

from __future__ import annotations

from typing import ClassVar

import records
from plateflow.errors import PlateflowError

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "ServiceError",
    "Unauthenticated",
    "from_access_denied",
    "from_refusal",
]


class ServiceError(PlateflowError):
    """An act that cannot be done as asked; the message names the thing and the fix."""

    kind: ClassVar[str] = "invalid"

    def __init__(
        self, message: str, field: str | None = None, *, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        #: the audit log's word for the refusal (``untrained``, ``no_justification``...)
        self.reason = reason or self.kind


class Invalid(ServiceError):
    """A value the act cannot use (``field`` names it)."""

    kind = "invalid"


class NotFound(ServiceError):
    """The thing asked for does not exist, or does not exist for this actor (a covert list)."""

    kind = "not_found"


class Conflict(ServiceError):
    """What is recorded (a hold, a release request, an export directory) does not allow it."""

    kind = "conflict"


class Forbidden(ServiceError):
    """The actor's role, training or covert rights do not allow it."""

    kind = "forbidden"


class Unauthenticated(ServiceError):
    """No session, or an unknown, closed or expired one: log in first."""

    kind = "unauthenticated"


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
