"""The root of every error plateflow raises on purpose.

Each package subclasses :class:`PlateflowError` once (``MatchersError``, ``SinksError``,
``RecordsError``, ``ApiError``, ``DataflowError``) and narrows from there. Messages name the
thing that is wrong and the fix, because an operator reads them, not a developer.
"""

from __future__ import annotations


class PlateflowError(Exception):
    """Root of all plateflow errors."""


class SettingsError(PlateflowError):
    """A setting has a value that is not allowed; the message names the setting and the fix."""
