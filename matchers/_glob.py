"""Wildcard hotlist entries: parsing, validation and the exact glob match of one plate.

A pattern is a glob over the *whole* normalised plate (ARCHITECTURE "Matching semantics"):

* ``A-Z0-9`` a literal; it matches itself, or an OCR-equivalent character at the price of one
  substitution (at most ``ocr_equivalents`` of those in one match);
* ``?`` exactly one character;
* ``*`` any run of characters, the empty run included;
* ``[AB8]`` one character of the set; members match exactly (no OCR equivalence inside a set).
  Ranges ``[A-F]`` / ``[0-4]`` and a leading ``!`` for "none of" (``[!8B]``) are accepted too.

``differences`` never apply to patterns and the kind is always ``partial``.

:func:`glob_cost` decides one plate with a dynamic programme over (token, character): the cell
holds the fewest substitutions that match a token prefix against a text prefix, ``*`` takes the
minimum of "skip the star" and "the star eats one more character". It is the verification step
of the pattern structure in :mod:`matchers._patterns` and the pattern branch of ``compare``.

:func:`compile_glob` is the one compiler every other consumer uses: stored-read search (in
:mod:`sinks`) scans a column with its regular expression, prunes row groups with its prefix
ranges and decides OCR substitutions with :func:`glob_cost`, so the flow and the store can never
disagree on what a pattern means.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from matchers._text import ALPHABET, MAX_PLATE_LENGTH, OcrClasses, PatternError, normalise_plate
from plateflow.settings import MIN_KNOWN_CHARACTERS

__all__ = [
    "ANY",
    "LIT",
    "MIN_KNOWN_CHARACTERS",
    "SET",
    "STAR",
    "Glob",
    "Token",
    "compile_glob",
    "glob_cost",
    "is_pattern",
    "normalise_entry_plate",
    "parse_pattern",
    "require_known_characters",
    "validate_pattern",
]

LIT, ANY, SET, STAR = 0, 1, 2, 3
_WILDCARDS = frozenset("?*[")
_ALL = frozenset(ALPHABET)


class Token(NamedTuple):
    """One element of a parsed pattern; ``char`` for literals, ``allowed`` for sets."""

    kind: int
    char: str = ""
    allowed: frozenset[str] = frozenset()


def is_pattern(text: str) -> bool:
    """Whether an entry plate is a wildcard pattern (holds ``?``, ``*`` or ``[``)."""
    return not _WILDCARDS.isdisjoint(text)


def normalise_entry_plate(text: str) -> str:
    """Normalise a hotlist entry's plate text, keeping wildcards if it is a pattern.

    A plate goes through :func:`normalise_plate`. A pattern (``?``, ``*`` or ``[`` present) is
    upper-cased and loses its separators (spaces, dashes, dots...) outside sets, while ``!`` and
    ``-`` inside a set are kept; the result is validated (:class:`PatternError`). Use this, not
    ``normalise_plate``, on imported entries: that one would strip the wildcards.
    """
    upper = text.upper()
    if not is_pattern(upper):
        return normalise_plate(upper)
    out: list[str] = []
    in_set = False
    for char in upper:
        if char == "[":
            in_set = True
        elif char == "]":
            in_set = False
        keep = char in _ALL or char in "?*[]" or (in_set and char in "!-")
        if keep:
            out.append(char)
    pattern = "".join(out)
    parse_pattern(pattern)
    return pattern


def _parse_set(pattern: str, start: int) -> tuple[Token, int]:
    """Parse ``[...]`` beginning at ``pattern[start] == '['``; return the token and next index."""
    end = pattern.find("]", start + 1)
    if end < 0:
        message = (
            f"pattern {pattern!r}: the '[' at position {start} is never closed; "
            f"add the ']' that ends the character set"
        )
        raise PatternError(message)
    body = pattern[start + 1 : end]
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    if "[" in body:
        message = (
            f"pattern {pattern!r}: '[' inside the character set at position {start}; "
            f"sets do not nest"
        )
        raise PatternError(message)
    members: set[str] = set()
    i = 0
    while i < len(body):
        char = body[i]
        if i + 2 < len(body) and body[i + 1] == "-":
            last = body[i + 2]
            same_kind = char.isdigit() == last.isdigit()
            if char not in _ALL or last not in _ALL or not same_kind or last < char:
                message = (
                    f"pattern {pattern!r}: range {char}-{last} in the set at position {start} "
                    f"is not a range of letters or of digits in ascending order"
                )
                raise PatternError(message)
            members.update(
                c for c in ALPHABET if char <= c <= last and c.isdigit() == char.isdigit()
            )
            i += 3
            continue
        if char not in _ALL:
            message = (
                f"pattern {pattern!r}: {char!r} in the set at position {start} is not a plate "
                f"character; sets hold A-Z, 0-9 and ranges such as A-F"
            )
            raise PatternError(message)
        members.add(char)
        i += 1
    allowed = _ALL - members if negate else frozenset(members)
    if not allowed:
        message = f"pattern {pattern!r}: the set at position {start} matches no character"
        raise PatternError(message)
    return Token(SET, allowed=frozenset(allowed)), end + 1


@lru_cache(maxsize=65536)
def parse_pattern(pattern: str) -> tuple[Token, ...]:
    """Parse and validate a pattern; consecutive ``*`` collapse into one.

    Raises :class:`PatternError` naming the position and the fix: an unbalanced ``[`` or ``]``,
    an empty set, a lower-case letter or any character that is not a plate character or a
    wildcard, or a pattern that needs more than ``MAX_PLATE_LENGTH`` characters.
    """
    tokens: list[Token] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "[":
            token, i = _parse_set(pattern, i)
            tokens.append(token)
            continue
        if char == "*":
            if not tokens or tokens[-1].kind != STAR:
                tokens.append(Token(STAR))
        elif char == "?":
            tokens.append(Token(ANY))
        elif char in _ALL:
            tokens.append(Token(LIT, char))
        elif char == "]":
            message = (
                f"pattern {pattern!r}: ']' at position {i} closes no '['; remove it or add the '['"
            )
            raise PatternError(message)
        else:
            hint = "upper-case it" if char.upper() in _ALL else "remove it"
            message = (
                f"pattern {pattern!r}: {char!r} at position {i} is not a plate character or a "
                f"wildcard (?, *, [..]); {hint}"
            )
            raise PatternError(message)
        i += 1
    if not tokens:
        raise PatternError("pattern is empty; enter at least one character or wildcard")
    fixed = sum(1 for t in tokens if t.kind != STAR)
    if fixed > MAX_PLATE_LENGTH:
        message = (
            f"pattern {pattern!r} needs {fixed} characters but plates have at most "
            f"{MAX_PLATE_LENGTH}; shorten it"
        )
        raise PatternError(message)
    return tuple(tokens)


def validate_pattern(pattern: str) -> str:
    """Return ``pattern`` unchanged if it is a valid wildcard pattern, else raise PatternError."""
    parse_pattern(pattern)
    return pattern


def require_known_characters(pattern: str, minimum: int = MIN_KNOWN_CHARACTERS) -> int:
    """The one rule of partial plates (hotlist patterns and partial searches, 427.3(d)): the
    positions ``pattern`` pins down (its literals and ``[...]`` sets); raises
    :class:`PatternError` for an invalid pattern or one that pins fewer than ``minimum``."""
    known = sum(1 for token in parse_pattern(pattern) if token.kind in (LIT, SET))
    if known < minimum:
        message = (
            f"pattern {pattern!r} fixes {known} known character(s) (letters, digits or [...] "
            f"sets); a partial plate names at least {minimum}, else it matches almost every plate"
        )
        raise PatternError(message)
    return known


def glob_cost(
    tokens: tuple[Token, ...], text: str, max_subs: int, ocr: OcrClasses
) -> tuple[tuple[int, str, str], ...] | None:
    """The fewest-substitution glob match of ``text``, or ``None`` if over ``max_subs``.

    Returns the substitutions used as ``(position in text, text char, pattern char)``.
    """
    n = len(text)
    n_tok = len(tokens)
    inf = max_subs + 1
    # cost[t][j]: fewest substitutions matching tokens[:t] against text[:j]
    cost = [[inf] * (n + 1) for _ in range(n_tok + 1)]
    cost[0][0] = 0
    for t in range(1, n_tok + 1):
        token = tokens[t - 1]
        prev, row = cost[t - 1], cost[t]
        if token.kind == STAR:
            row[0] = prev[0]
            for j in range(1, n + 1):
                row[j] = min(prev[j], row[j - 1])
            continue
        for j in range(1, n + 1):
            before = prev[j - 1]
            if before >= inf:
                continue
            char = text[j - 1]
            if token.kind == LIT:
                if char == token.char:
                    step = 0
                elif ocr.equivalent(char, token.char):
                    step = 1
                else:
                    continue
            elif token.kind == SET and char not in token.allowed:
                continue
            else:
                step = 0
            if before + step < row[j]:
                row[j] = before + step
    if cost[n_tok][n] > max_subs:
        return None
    subs: list[tuple[int, str, str]] = []
    t, j = n_tok, n
    while t > 0:
        token = tokens[t - 1]
        here = cost[t][j]
        if token.kind == STAR:
            if cost[t - 1][j] == here:
                t -= 1
            else:
                j -= 1
            continue
        if token.kind == LIT and text[j - 1] != token.char:
            subs.append((j - 1, text[j - 1], token.char))
        t, j = t - 1, j - 1
    subs.reverse()
    return tuple(subs)


def _char_class(chars: Collection[str]) -> str:
    """A regex for one character out of ``chars`` (plate characters), runs written as ranges."""
    ordered = [c for c in ALPHABET if c in chars]
    if len(ordered) == 1:
        return ordered[0]
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ord(ordered[j + 1]) == ord(ordered[j]) + 1:
            j += 1
        if j == i:
            parts.append(ordered[i])
        elif j == i + 1:
            parts.append(ordered[i] + ordered[j])
        else:
            parts.append(f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return "[" + "".join(parts) + "]"


@dataclass(frozen=True)
class Glob:
    """A validated pattern compiled for scanning a column of plates (build: :func:`compile_glob`).

    Every form below is derived from the same tokens that :func:`glob_cost` (and so
    :func:`matchers.compare` and the hotlist index) decides with.
    """

    pattern: str
    tokens: tuple[Token, ...]
    ocr_equivalents: int
    ocr: OcrClasses

    def accepts(self, token: Token) -> frozenset[str]:
        """The plate characters one non-star token can consume in some match within budget."""
        if token.kind == LIT:
            if self.ocr_equivalents == 0:
                return frozenset(token.char)
            return frozenset(c for c in ALPHABET if self.ocr.equivalent(c, token.char))
        if token.kind == SET:
            return token.allowed
        return _ALL

    @property
    def known_characters(self) -> int:
        """Positions the pattern pins down: its literals and its ``[...]`` sets."""
        return sum(1 for t in self.tokens if t.kind in (LIT, SET))

    @property
    def regex(self) -> str:
        """An anchored regular expression over the whole plate (Python and Rust syntax).

        With :attr:`exact` it decides a match by itself; otherwise it is a superset (a literal
        admits its whole OCR class however many substitutions that uses) and
        :meth:`substitutions` decides.
        """
        parts = [
            ".*" if t.kind == STAR else "." if t.kind == ANY else _char_class(self.accepts(t))
            for t in self.tokens
        ]
        return "^" + "".join(parts) + "$"

    @property
    def search_regex(self) -> str:
        """:attr:`regex` in the form a substring engine runs fastest: ``^.*HE0.*$`` becomes
        ``HE0`` (a literal scan). Plates hold no line breaks, so both are the same test."""
        regex = self.regex
        if regex.startswith("^.*"):
            regex = regex[3:]
        if regex.endswith(".*$"):
            regex = regex[:-3]
        return regex

    @property
    def confusable(self) -> int:
        """Literals that have an OCR look-alike (whatever the budget)."""
        return sum(
            1
            for t in self.tokens
            if t.kind == LIT
            and any(self.ocr.equivalent(c, t.char) for c in ALPHABET if c != t.char)
        )

    @property
    def exact(self) -> bool:
        """Whether :attr:`regex` alone decides: no OCR budget, or a budget that covers every
        literal that has a look-alike (one alignment substitutes each literal at most once)."""
        return self.ocr_equivalents == 0 or self.ocr_equivalents >= self.confusable

    def substitutions(self, plate: str) -> int | None:
        """The fewest OCR substitutions with which ``plate`` matches, or ``None``."""
        found = glob_cost(self.tokens, plate, self.ocr_equivalents, self.ocr)
        return None if found is None else len(found)

    def prefix_ranges(self, limit: int = 64) -> list[tuple[str, str]]:
        """Half-open string ranges ``[low, high)`` that every matching plate falls in, for
        pruning row groups of plate-sorted files on their min/max statistics: the leading
        literals and sets expanded into at most ``limit`` prefixes, adjacent ones merged.
        ``[]`` when the pattern starts with ``?`` or ``*`` (nothing to prune on)."""
        prefixes = [""]
        for token in self.tokens:
            if token.kind in (ANY, STAR):
                break
            chars = sorted(self.accepts(token))
            if len(prefixes) * len(chars) > limit:
                break
            prefixes = [prefix + char for prefix in prefixes for char in chars]
        if prefixes == [""]:
            return []
        ranges: list[tuple[str, str]] = []
        for prefix in sorted(prefixes):
            high = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            if ranges and ranges[-1][1] == prefix:
                ranges[-1] = (ranges[-1][0], high)
            else:
                ranges.append((prefix, high))
        return ranges


def compile_glob(pattern: str, ocr_equivalents: int = 0, ocr: OcrClasses | None = None) -> Glob:
    """Compile a normalised pattern (see :func:`normalise_entry_plate`) that may use at most
    ``ocr_equivalents`` OCR substitutions. A plain plate is a pattern of literals.

    Raises :class:`PatternError` for an invalid pattern or a negative budget.
    """
    if ocr_equivalents < 0:
        message = f"ocr_equivalents is {ocr_equivalents}; use 0 or more"
        raise PatternError(message)
    return Glob(pattern, parse_pattern(pattern), ocr_equivalents, ocr or OcrClasses())
