"""Plate matching for stored-read search, with the matchers' semantics (ARCHITECTURE
"Matching semantics"), built for scans: a plate's whole neighbourhood is enumerated once so a
search is a vectorised ``is_in`` over the plate column, and globs become regular expressions.

The matchers package owns matching in the flow; sinks may not import it, so this module
re-implements the two pieces search needs and says where it is exact:

* :func:`plate_variants`: every plate reachable from an entry plate with at most ``o`` OCR
  substitutions and at most ``d`` differences (insertion, deletion, other substitution, swap of
  two adjacent characters; an equivalent substitution may also count as a difference), each with
  the fewest differences, then the fewest OCR substitutions. Edits apply one after another (true
  Damerau-Levenshtein), so for ``d = 2`` a swap followed by an edit of a swapped character
  counts 2 where an optimal-string-alignment matcher counts 3.
* :func:`glob_to_regex` and :func:`glob_substitutions`: ``?`` one character, ``*`` any run,
  ``[AB8]`` one of a set (members match exactly), at most ``o`` literals matched by an
  equivalent. With ``o = 0`` the regex is exact; with ``o > 0`` it is a superset and
  :func:`glob_substitutions` decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sinks._errors import SinksError

__all__ = [
    "ALPHABET",
    "DEFAULT_OCR_CLASSES",
    "GlobToken",
    "glob_prefixes",
    "glob_substitutions",
    "glob_to_regex",
    "parse_glob",
    "plate_variants",
]

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: The default OCR confusion classes (PLATEFLOW_OCR_CLASSES).
DEFAULT_OCR_CLASSES: tuple[str, ...] = ("0ODQ", "1I", "2Z", "5S", "8B", "6G")
#: A neighbourhood larger than this is refused: the search would be a full scan anyway and the
#: caller should narrow the time range or the tolerance.
MAX_VARIANTS = 500_000
_PLATE = re.compile(r"^[A-Z0-9]{1,10}$")


def _classes(ocr_classes: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for members in ocr_classes:
        for char in members:
            found[char] = members
    return found


def _check_plate(plate: str) -> str:
    if not _PLATE.match(plate):
        msg = f"plate {plate!r} is not a normalised plate; use 1-10 characters A-Z and 0-9"
        raise SinksError(msg)
    return plate


def plate_variants(
    plate: str,
    differences: int = 0,
    ocr_equivalents: int = 0,
    ocr_classes: Sequence[str] = DEFAULT_OCR_CLASSES,
) -> dict[str, tuple[int, int]]:
    """Every plate that matches ``plate`` within the tolerance, mapped to ``(differences, OCR
    substitutions)`` of its best edit script. Raises :class:`SinksError` for a negative
    tolerance or a neighbourhood over 500,000 plates."""
    _check_plate(plate)
    if differences < 0 or ocr_equivalents < 0 or differences > 2:
        msg = (
            f"differences={differences}, ocr_equivalents={ocr_equivalents}: use differences "
            "0-2 and ocr_equivalents >= 0"
        )
        raise SinksError(msg)
    classes = _classes(ocr_classes)
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
    best: dict[str, tuple[int, int]] = {}
    for text, distance in ball.items():
        for variant, used in _ocr_variants(text, ocr_equivalents, classes):
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
            raise SinksError(msg)
    return best


def _ocr_variants(text: str, limit: int, classes: dict[str, str]) -> Iterable[tuple[str, int]]:
    """``text`` with up to ``limit`` characters replaced by an equivalent, with the count."""
    found: list[tuple[str, int]] = [(text, 0)]
    for index, char in enumerate(text):
        others = [other for other in classes.get(char, "") if other != char]
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
    if len(text) < 10:
        for index in range(len(text) + 1):
            for char in ALPHABET:
                yield text[:index] + char + text[index:]  # insertion


@dataclass(frozen=True)
class GlobToken:
    """One element of a parsed glob: ``kind`` is ``lit``, ``any`` (``?``), ``star`` or ``set``."""

    kind: str
    chars: str = ""


def parse_glob(pattern: str) -> list[GlobToken]:
    """Parse a partial-plate glob (case-insensitive; spaces and dashes are ignored)."""
    text = re.sub(r"[\s-]", "", pattern.upper())
    tokens: list[GlobToken] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "?":
            tokens.append(GlobToken("any"))
        elif char == "*":
            if not tokens or tokens[-1].kind != "star":
                tokens.append(GlobToken("star"))
        elif char == "[":
            close = text.find("]", index)
            members = text[index + 1 : close] if close > 0 else ""
            if close < 0 or not members or not re.fullmatch(r"[A-Z0-9]+", members):
                msg = (
                    f"pattern {pattern!r}: a set needs letters or digits between [ and ], "
                    "e.g. [8B]AD*"
                )
                raise SinksError(msg)
            tokens.append(GlobToken("set", "".join(sorted(set(members)))))
            index = close
        elif char in ALPHABET:
            tokens.append(GlobToken("lit", char))
        else:
            msg = f"pattern {pattern!r} has {char!r}; use A-Z, 0-9, ?, * and [..] sets"
            raise SinksError(msg)
        index += 1
    if not any(token.kind in ("lit", "set") for token in tokens):
        msg = f"pattern {pattern!r} has no known character; give at least one letter or digit"
        raise SinksError(msg)
    return tokens


def glob_to_regex(
    pattern: str, ocr_equivalents: int = 0, ocr_classes: Sequence[str] = DEFAULT_OCR_CLASSES
) -> str:
    """An anchored regex matching the whole plate. Exact for ``ocr_equivalents = 0``; with
    ``ocr_equivalents > 0`` each literal also admits its class (a superset: check candidates
    with :func:`glob_substitutions`)."""
    classes = _classes(ocr_classes)
    parts = ["^"]
    for token in parse_glob(pattern):
        if token.kind == "any":
            parts.append(".")
        elif token.kind == "star":
            parts.append(".*")
        elif token.kind == "set":
            parts.append(f"[{token.chars}]")
        elif ocr_equivalents > 0 and token.chars in classes:
            parts.append(f"[{classes[token.chars]}]")
        else:
            parts.append(token.chars)
    parts.append("$")
    return "".join(parts)


def glob_substitutions(
    pattern: str,
    plate: str,
    ocr_equivalents: int = 0,
    ocr_classes: Sequence[str] = DEFAULT_OCR_CLASSES,
) -> int | None:
    """The fewest OCR substitutions with which ``plate`` matches ``pattern``, or None when it
    does not match within ``ocr_equivalents``."""
    classes = _classes(ocr_classes)
    tokens = parse_glob(pattern)
    inf = 1 << 30  # unreachable
    # cost[j]: fewest substitutions matching the tokens so far against plate[:j].
    cost = [0] + [inf] * len(plate)
    for token in tokens:
        following = [inf] * (len(plate) + 1)
        if token.kind == "star":
            running = inf
            for j in range(len(plate) + 1):
                running = min(running, cost[j])
                following[j] = running
        else:
            for j in range(1, len(plate) + 1):
                if cost[j - 1] >= inf:
                    continue
                char = plate[j - 1]
                if token.kind == "any" or (token.kind == "set" and char in token.chars):
                    following[j] = min(following[j], cost[j - 1])
                elif token.kind == "lit":
                    if char == token.chars:
                        following[j] = min(following[j], cost[j - 1])
                    elif char in classes.get(token.chars, ""):
                        following[j] = min(following[j], cost[j - 1] + 1)
        cost = following
    found = cost[len(plate)]
    return found if found <= ocr_equivalents else None


def glob_prefixes(pattern: str, limit: int = 64) -> list[str]:
    """The literal prefixes every match starts with (sets expanded, at most ``limit``), for
    pruning row groups of plate-sorted files; ``[]`` when the pattern starts with a wildcard."""
    prefixes = [""]
    for token in parse_glob(pattern):
        if token.kind == "lit":
            prefixes = [prefix + token.chars for prefix in prefixes]
        elif token.kind == "set" and len(prefixes) * len(token.chars) <= limit:
            prefixes = [prefix + char for prefix in prefixes for char in token.chars]
        else:
            break
    return [] if prefixes == [""] else prefixes
