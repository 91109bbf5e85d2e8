"""The errors the sinks package raises on purpose: one root and a narrow class per kind of
refusal, so a caller (the HTTP API, the CLI) chooses its answer by class, never by reading the
message."""

from __future__ import annotations

from plateflow.errors import PlateflowError

__all__ = [
    "EvidenceError",
    "SinksConflictError",
    "SinksError",
    "SinksNotFoundError",
    "SinksValueError",
]


class SinksError(PlateflowError):
    """Storage or the alert bus refused an operation; the message names the thing and the fix.

    ``field`` names the argument the caller should change, when one argument is to blame.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SinksValueError(SinksError):
    """An argument is not usable as given (a pattern, a tolerance, a naive time, an empty
    reason...): the caller must change ``field``."""


class SinksNotFoundError(SinksError):
    """The thing to act on is not in the store (read ids, reads matching a query)."""


class SinksConflictError(SinksError):
    """The stored state does not allow the act (a hold released or absent, a directory in use)."""


class EvidenceError(SinksError):
    """An evidence export failed verification: a file or the custody chain was altered."""
