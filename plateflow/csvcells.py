"""CSV cells that a spreadsheet will not run (OWASP "CSV injection"): the one rule every CSV
plateflow writes follows (evidence exports, search results, the audit report).

Plates, camera ids, hotlist reasons, user names and the like come from cameras and people; a
cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula. Such a cell gets a leading apostrophe, which the
spreadsheets show as text and drop from the value. Like :mod:`plateflow.errors`, this module
imports nothing else of the project, so every package may use it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row"]

#: The first characters that make a spreadsheet cell a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged unless it is text starting like a formula; then ``'`` + value."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Any) -> list[Any]:
    """:func:`safe_cell` of every cell of ``row``."""
    return [safe_cell(value) for value in row]
