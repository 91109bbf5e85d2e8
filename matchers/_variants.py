"""The neighbourhood of a plate: every plate that matches it within a tolerance, enumerated.

Stored-read search over a column of plates is fastest as one vectorised ``is_in`` against the
whole neighbourhood of the searched plate, so this module enumerates what :func:`compare`
decides one pair at a time (ARCHITECTURE "Matching semantics"): every plate reachable with at
most ``o`` OCR substitutions and at most ``d`` differences (insertion, deletion, other
substitution, swap of two adjacent characters; an equivalent substitution may also count as a
difference), each with the fewest differences, then the fewest OCR substitutions. Edits apply
one after another (unrestricted Damerau-Levenshtein), exactly like :func:`compare`.
"""

from __future__ import annotations

from collections.abc import Iterable

from matchers._text import ALPHABET, MAX_PLATE_LENGTH, EntryError, OcrClasses, PolicyError

__all__ = ["MAX_VARIANTS", "check_plate", "plate_variants"]

#: A neighbourhood larger than this is refused: the search would be a full scan anyway and the
#: caller should narrow the time range or the tolerance.
MAX_VARIANTS = 500_000
_PLATE_CHARS = frozenset(ALPHABET)


def check_plate(plate: str) -> str:
    """``plate`` unchanged if it is a normalised plate of 1-10 characters, else EntryError."""
    if not 1 <= len(plate) <= MAX_PLATE_LENGTH or not _PLATE_CHARS.issuperset(plate):
        msg = f"plate {plate!r} is not a normalised plate; use 1-10 characters A-Z and 0-9"
        raise EntryError(msg)
    return plate


def plate_variants(
    plate: str, differences: int = 0, ocr_equivalents: int = 0, ocr: OcrClasses | None = None
) -> dict[str, tuple[int, int]]:
    """Every plate that matches ``plate`` within the tolerance, mapped to ``(differences, OCR
    substitutions)`` of its best edit script.

    Raises :class:`EntryError` for a plate that is not normalised and :class:`PolicyError` for
    a tolerance outside ``differences`` 0-2, ``ocr_equivalents >= 0`` or a neighbourhood over
    :data:`MAX_VARIANTS` plates.
    """
    check_plate(plate)
    if differences < 0 or ocr_equivalents < 0 or differences > 2:
        msg = (
            f"differences={differences}, ocr_equivalents={ocr_equivalents}: use differences "
            "0-2 and ocr_equivalents >= 0"
        )
        raise PolicyError(msg)
    classes = ocr or OcrClasses()
    # OCR substitutions commute with the other edits (they can be applied last, to whichever
    # characters end up where), so: every plate within d differences, then its OCR variants.
    ball: dict[str, int] = {plate: 0}
    layer = [plate]
    for distance in range(1, differences + 1):
        following: list[str] = []
        for text in layer:
            for variant in _one_difference(text):
                if variant and variant not in ball:
                    ball[variant] = distance
                    following.append(variant)
        layer = following
    if ocr_equivalents == 0:
        return {text: (distance, 0) for text, distance in ball.items()}
    look_alikes = {
        c: [o for o in ALPHABET if o != c and classes.equivalent(c, o)] for c in ALPHABET
    }
    best: dict[str, tuple[int, int]] = {}
    for text, distance in ball.items():
        for variant, used in _ocr_variants(text, ocr_equivalents, look_alikes):
            cost = (distance, used)
            known = best.get(variant)
            if known is None or cost < known:
                best[variant] = cost
        if len(best) > MAX_VARIANTS:
            msg = (
                f"plate {plate!r} with differences={differences} and "
                f"ocr_equivalents={ocr_equivalents} matches over {MAX_VARIANTS:,} plates; "
                "lower the tolerance"
            )
            raise PolicyError(msg)
    return best


def _ocr_variants(
    text: str, limit: int, look_alikes: dict[str, list[str]]
) -> Iterable[tuple[str, int]]:
    """``text`` with up to ``limit`` characters replaced by an equivalent, with the count."""
    found: list[tuple[str, int]] = [(text, 0)]
    for index, char in enumerate(text):
        others = look_alikes[char]
        if not others:
            continue
        found += [
            (variant[:index] + other + variant[index + 1 :], used + 1)
            for variant, used in found
            if used < limit
            for other in others
        ]
    return found


def _one_difference(text: str) -> Iterable[str]:
    for index in range(len(text)):
        head, tail = text[:index], text[index + 1 :]
        yield head + tail  # deletion
        for char in ALPHABET:
            if char != text[index]:
                yield head + char + tail  # substitution (equivalent ones too)
        if index + 1 < len(text) and text[index] != text[index + 1]:
            yield head + text[index + 1] + text[index] + text[index + 2 :]  # adjacent swap
    if len(text) < MAX_PLATE_LENGTH:
        for index in range(len(text) + 1):
            for char in ALPHABET:
                yield text[:index] + char + text[index:]  # insertion
