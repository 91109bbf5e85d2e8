"""The errors records raises: one root, :class:`RecordsError`, and a narrow class per refusal.

Every message names the thing that is wrong and what to do about it, because an operator or an
API client reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

from plateflow.errors import PlateflowError


class RecordsError(PlateflowError):
    """Root of the errors of the system of record."""


class NotFoundError(RecordsError):
    """A hotlist, user, entry or release request that does not exist."""


class ConflictError(RecordsError):
    """The change collides with what is recorded (a duplicate name, a second decision...)."""


class HotlistImportError(RecordsError):
    """A hotlist file has bad rows; nothing was imported and the previous version stays live.

    ``problems`` holds ``(line, reason)`` for every bad row, ``lines`` just the line numbers.
    """

    def __init__(self, name: str, problems: Sequence[tuple[int, str]], *, source: str = "") -> None:
        self.name = name
        self.problems = list(problems)
        self.lines = [line for line, _ in self.problems]
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        if not self.problems:
            return f"hotlist {self.name!r}: nothing to import"
        if len(self.problems) == 1:
            line, reason = self.problems[0]
            where = f" line {line}" if line else ""
            return f"hotlist {self.name!r}{where}: {reason}"
        shown = "; ".join(
            (f"line {line}: {reason}" if line else reason) for line, reason in self.problems[:20]
        )
        more = f"; and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        lines = ", ".join(str(n) for n in self.lines[:50]) + (
            ", ..." if len(self.lines) > 50 else ""
        )
        return (
            f"hotlist {self.name!r} has {len(self.problems)} bad rows (lines {lines}): "
            f"{shown}{more}; fix them and import again (the previous version stays live)"
        )


class PolicyCostError(RecordsError):
    """A policy would alert on more ordinary traffic than the configured ceiling allows."""


class NotifyError(RecordsError):
    """A hotlist change was saved, but the change notice could not be published."""


class AuthError(RecordsError):
    """Login or session refused (bad credentials, locked or disabled account, expired session)."""


class AccountLockedError(AuthError):
    """Too many failed logins: the account is locked until ``locked_until_ms``."""

    def __init__(self, message: str, locked_until_ms: int) -> None:
        super().__init__(message)
        self.locked_until_ms = locked_until_ms


class SessionError(AuthError):
    """The session token is unknown, closed or expired: log in again."""


class WeakPasswordError(RecordsError):
    """A password that does not meet the password rules; the message lists what is missing."""


class AccessDenied(RecordsError):
    """An access refused by the rules of the policy; it has been written to the audit log.

    ``reason`` is one of ``no_justification``, ``inactive``, ``untrained``, ``forbidden``,
    ``unknown_user``, ``unauthenticated``; ``field`` names the missing field for
    ``no_justification``. :attr:`http_status` maps the reason to the API's status code.
    """

    def __init__(self, message: str, *, reason: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field

    @property
    def http_status(self) -> int:
        """The HTTP status an API answers with: 422 for a missing justification, 401 for no
        (known) user, 403 otherwise."""
        return {"no_justification": 422, "unknown_user": 401, "unauthenticated": 401}.get(
            self.reason, 403
        )


class AuditError(RecordsError):
    """The audit record could not be written, so the operation it records did not happen."""


class ReleaseError(RecordsError):
    """A release request step that the 427.7 workflow does not allow."""


class DispositionError(RecordsError):
    """A disposition transition that lacks what it needs (a reason, the action taken, a note);
    ``field`` names the value to give."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
