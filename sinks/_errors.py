"""The one error type the sinks package raises on purpose."""

from __future__ import annotations

from plateflow.errors import PlateflowError

__all__ = ["SinksError"]


class SinksError(PlateflowError):
    """Storage or the alert bus refused an operation; the message names the thing and the fix."""
