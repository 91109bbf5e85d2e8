"""Plate text: the error classes, normalisation, OCR confusion classes and character codes.

A normalised plate is upper-case ``A-Z0-9`` only (ARCHITECTURE "Read"). Inside the index every
character is a small integer *code*: ``0`` is padding (no character), ``A``..``Z`` are 1..26 and
``0``..``9`` are 27..36, so a batch of plates is a ``(rows, MAX_PLATE_LENGTH)`` ``uint8`` array.

OCR classes are a partition of some characters into groups of look-alikes, ``{0 O D Q} {1 I}
{2 Z} {5 S} {8 B} {6 G}`` by default. Every character maps to a *canonical* representative (the
first character of its group, or itself); two characters are equivalent exactly when their
canonical forms agree. Canonicalising a plate turns every OCR-equivalent spelling into one
string, which is what lets the index find all of them with a single probe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from plateflow.errors import PlateflowError
from plateflow.settings import DEFAULT_OCR_CLASSES

__all__ = [
    "ALPHABET",
    "DEFAULT_OCR_CLASSES",
    "MAX_PLATE_LENGTH",
    "EntryError",
    "MatchersError",
    "OcrClassError",
    "OcrClasses",
    "PatternError",
    "PolicyError",
    "encode_plates",
    "normalise_plate",
]


class MatchersError(PlateflowError):
    """Root of the errors of :mod:`matchers`."""


class PolicyError(MatchersError):
    """A match policy field is missing, unknown or outside its allowed range."""


class PatternError(MatchersError):
    """A wildcard hotlist entry is not a valid pattern (unbalanced ``[``, bad character...)."""


class EntryError(MatchersError):
    """A hotlist entry or hotlist is malformed (plate not normalised, window inverted...)."""


class OcrClassError(MatchersError):
    """The configured OCR classes are not a partition of ``A-Z0-9``."""


#: The plate alphabet in code order: code ``k`` (1-based) is ``ALPHABET[k - 1]``.
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: Longest plate (read or entry) the index handles; ARCHITECTURE allows 2-10 characters.
MAX_PLATE_LENGTH = 10

_NOT_PLATE_CHAR = re.compile(r"[^A-Z0-9]")
_BAD_CODE = 255

#: byte value -> code (1..36), 0 for the NUL padding, 255 for anything else.
BYTE_TO_CODE: npt.NDArray[np.uint8] = np.full(256, _BAD_CODE, dtype=np.uint8)
BYTE_TO_CODE[0] = 0
for _code, _char in enumerate(ALPHABET, start=1):
    BYTE_TO_CODE[ord(_char)] = _code


def normalise_plate(text: str) -> str:
    """Upper-case ``text`` and drop every character outside ``A-Z0-9``; no length check."""
    return _NOT_PLATE_CHAR.sub("", text.upper())


class OcrClasses:
    """A partition of plate characters into OCR look-alike groups.

    :arg groups: each string is one group; its first character is the group's canonical
        representative. A character may appear in one group only (equivalence must be
        transitive), and only ``A-Z0-9`` are allowed; otherwise :class:`OcrClassError`.

    Instances are immutable and compare equal when they describe the same partition.
    """

    __slots__ = ("_canon_lut", "_groups", "_rep", "_table")

    def __init__(self, groups: Sequence[str] = DEFAULT_OCR_CLASSES) -> None:
        if isinstance(groups, str):
            message = (
                f"OCR classes must be a sequence of groups such as ('0ODQ', '1I'), got the "
                f"single string {groups!r}; split it into groups"
            )
            raise OcrClassError(message)
        rep: dict[str, str] = {}
        cleaned: list[str] = []
        for group in groups:
            chars = "".join(dict.fromkeys(str(group).upper()))
            bad = _NOT_PLATE_CHAR.findall(chars)
            if bad:
                message = (
                    f"OCR class {group!r} contains {''.join(bad)!r}; classes may only hold "
                    f"the plate characters A-Z and 0-9"
                )
                raise OcrClassError(message)
            if not chars:
                continue
            for char in chars:
                if char in rep:
                    message = (
                        f"character {char!r} is in two OCR classes ({rep[char]!r}'s and "
                        f"{group!r}); merge those groups into one"
                    )
                    raise OcrClassError(message)
                rep[char] = chars[0]
            cleaned.append(chars)
        self._groups: tuple[str, ...] = tuple(cleaned)
        self._rep = {char: rep.get(char, char) for char in ALPHABET}
        self._table = str.maketrans({c: r for c, r in self._rep.items() if c != r})
        lut = np.zeros(_BAD_CODE + 1, dtype=np.uint8)
        for code, char in enumerate(ALPHABET, start=1):
            lut[code] = ALPHABET.index(self._rep[char]) + 1
        lut[_BAD_CODE] = _BAD_CODE
        self._canon_lut: npt.NDArray[np.uint8] = lut

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups as given (upper-cased, duplicates within a group dropped)."""
        return self._groups

    @property
    def canonical_lut(self) -> npt.NDArray[np.uint8]:
        """Code -> canonical code (internal: used by the index to canonicalise arrays)."""
        return self._canon_lut

    def canonical(self, plate: str) -> str:
        """``plate`` with every character replaced by its class representative."""
        return plate.translate(self._table)

    def representative(self, char: str) -> str:
        """The canonical representative of one plate character (itself if in no class)."""
        return self._rep.get(char, char)

    def equivalent(self, a: str, b: str) -> bool:
        """Whether two single characters are in one class; a character is equivalent to itself."""
        return a == b or self._rep.get(a, a) == self._rep.get(b, b)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OcrClasses):
            return NotImplemented
        return self._rep == other._rep

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._rep.items())))

    def __repr__(self) -> str:
        return f"OcrClasses({self._groups!r})"


def _row_error(what: str, plates: Sequence[str], row: int, problem: str) -> MatchersError:
    """The error naming the first refused plate of a batch, its row and ``problem``."""
    message = f"{what} {plates[row]!r} (row {row}) {problem}"
    return MatchersError(message)


def encode_plates(
    plates: Sequence[str], *, what: str = "plate"
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Plates -> ``(codes, lengths)``: a zero-padded ``(len(plates), MAX_PLATE_LENGTH)`` array.

    Raises :class:`MatchersError` naming the first plate that is longer than
    :data:`MAX_PLATE_LENGTH` or holds a character outside ``A-Z0-9``.
    """
    rows = len(plates)
    if rows == 0:
        return np.zeros((0, MAX_PLATE_LENGTH), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    lengths = np.fromiter(map(len, plates), dtype=np.int64, count=rows)
    too_long = np.flatnonzero(lengths > MAX_PLATE_LENGTH)
    if too_long.size:
        i = int(too_long[0])
        problem = (
            f"has {lengths[i]} characters, at most {MAX_PLATE_LENGTH}; reject it before matching"
        )
        raise _row_error(what, plates, i, problem)
    try:
        # fixed-width bytes: one C-level conversion, zero-padded, no per-character temporaries
        fixed = np.array(plates, dtype=f"S{MAX_PLATE_LENGTH}")
    except UnicodeEncodeError as exc:
        message = f"{what}s must be normalised A-Z0-9 text before matching ({exc})"
        raise MatchersError(message) from exc
    codes = BYTE_TO_CODE[fixed.view(np.uint8).reshape(rows, MAX_PLATE_LENGTH)]
    bad = np.flatnonzero(
        (codes == _BAD_CODE).any(axis=1) | (np.count_nonzero(codes, axis=1) != lengths)
    )
    if bad.size:
        problem = (
            "is not normalised; pass it through normalise_plate() first "
            "(only A-Z and 0-9 are allowed)"
        )
        raise _row_error(what, plates, int(bad[0]), problem)
    return codes, lengths
