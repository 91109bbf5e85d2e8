"""The API package's errors."""

from __future__ import annotations

from plateflow.errors import PlateflowError

__all__ = ["ApiError"]


class ApiError(PlateflowError):
    """The HTTP API cannot start or serve; the message names the setting or service to fix."""
