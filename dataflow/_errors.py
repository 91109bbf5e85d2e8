from __future__ import annotations

from plateflow.errors import PlateflowError


class DataflowError(PlateflowError):
    """Something the flow cannot run with; the message names it and the fix."""
