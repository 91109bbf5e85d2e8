"""The exact decision for one read against one entry: :func:`compare`.

Definition (ARCHITECTURE "Matching semantics"): a read R matches an entry plate E when some edit
script from E to R uses at most ``o`` OCR substitutions (a character replaced by an equivalent
one) and at most ``d`` differences (an insertion, a deletion, any other substitution, or the
swap of two adjacent characters; an equivalent substitution may also be counted as a
difference). The reported script has the fewest differences, then the fewest substitutions.

An *edit script* is read literally as a sequence of operations, so a swap may be combined with
an insertion or deletion between the swapped characters (``CA`` -> ``AC`` -> ``ABC`` is two
differences): this is the unrestricted Damerau-Levenshtein distance, not the "optimal string
alignment" variant. OCR substitutions commute with the other operations, so they can always be
applied last, on characters that end up aligned (or swapped) to their look-alike.

The dynamic programme is the Lowrance-Wagner recurrence with a third dimension ``s``, the exact
number of OCR substitutions used (0..o); a cell holds the fewest differences (capped at d+1):

* delete ``E[i-1]`` or insert ``R[j-1]``: +1 difference;
* align ``E[i-1]`` with ``R[j-1]``: free if equal; if equivalent either one OCR substitution or
  one difference; otherwise one difference;
* swap: ``E[k-1] .. E[i-1]`` becomes ``R[l-1] .. R[j-1]`` with ``E[k-1] ~ R[j-1]`` and
  ``E[i-1] ~ R[l-1]`` (equal or equivalent, each equivalent pair one OCR substitution), the
  characters between deleted from E and inserted into R: ``1 + (i-k-1) + (j-l-1)``
  differences. Lowrance and Wagner showed nothing else happens between two swapped characters
  when a swap costs no less than half an insertion plus a deletion, which holds here, and
  ``d <= 2`` bounds the gaps to one character. A swap whose characters then need a
  *non-equivalent* substitution is never better than two plain substitutions, so it is skipped.

The answer is ``min over s <= o of (cost[n][m][s], s)``; a traceback names the operations.
Cells with ``|i - j| > d`` can never lead to a match and are skipped (a band of width 2d+1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from matchers._glob import glob_cost, is_pattern, parse_pattern
from matchers._model import Kind, Policy
from matchers._text import OcrClasses

__all__ = ["Comparison", "compare", "edit_cost"]


class Comparison(NamedTuple):
    """The outcome of :func:`compare` when the read matches.

    :ivar kind: ``exact``, ``ocr``, ``fuzzy`` or ``partial``.
    :ivar differences: differences used (always 0 for exact, ocr and partial).
    :ivar substitutions: OCR substitutions used, ``(position in the read, read char, entry
        char)``, in read order.
    :ivar edits: the differences in words (see :class:`matchers.Match`), in read order.
    """

    kind: Kind
    differences: int
    substitutions: tuple[tuple[int, str, str], ...]
    edits: tuple[str, ...]


_EXACT = Comparison("exact", 0, (), ())


def compare(
    read_plate: str, entry_plate: str, policy: Policy, ocr: OcrClasses
) -> Comparison | None:
    """Decide one normalised read against one entry plate or pattern under ``policy``.

    Returns ``None`` when the read does not match, else the best :class:`Comparison` (fewest
    differences, then fewest substitutions). Entry plates shorter than
    ``policy.min_fuzzy_length`` match identical reads only (kind ``exact``). State and the
    entry's time window are not part of this decision (they need the read's context); the
    index applies them.
    """
    if is_pattern(entry_plate):
        subs = glob_cost(parse_pattern(entry_plate), read_plate, policy.ocr_equivalents, ocr)
        return None if subs is None else Comparison("partial", 0, subs, ())
    if len(entry_plate) < policy.min_fuzzy_length:
        return _EXACT if read_plate == entry_plate else None
    return edit_cost(read_plate, entry_plate, policy.differences, policy.ocr_equivalents, ocr)


def edit_cost(
    read: str, entry: str, max_diffs: int, max_subs: int, ocr: OcrClasses
) -> Comparison | None:
    """The best edit script from ``entry`` to ``read`` within the budgets, or ``None``."""
    n, m = len(entry), len(read)
    if abs(n - m) > max_diffs:
        return None
    if read == entry:
        return _EXACT
    cr, ce = ocr.canonical(read), ocr.canonical(entry)
    if cr == ce:
        # Position by position: no difference needed, and every 0-difference script is this one.
        subs = tuple((j, read[j], entry[j]) for j in range(m) if read[j] != entry[j])
        if len(subs) <= max_subs:
            return Comparison("ocr", 0, subs, ())
    if max_diffs == 0:
        return None
    # Fewest differences first: a one-difference script, if any, beats every two-difference one.
    one = _one_difference(read, entry, cr, ce, max_subs)
    if one is not None or max_diffs == 1:
        return one
    return _dp(read, entry, cr, ce, max_diffs, max_subs)


def _subs(read: str, entry: str, pairs: Iterable[tuple[int, int]]) -> list[tuple[int, str, str]]:
    """OCR substitutions of the aligned (read position, entry position) pairs that differ."""
    return [(j, read[j], entry[i]) for j, i in pairs if read[j] != entry[i]]


def _one_difference(
    read: str, entry: str, cr: str, ce: str, max_subs: int
) -> Comparison | None:
    """The best script with exactly one difference (``cr``/``ce``: canonical forms).

    One difference leaves every other character aligned to an equivalent one, so the options
    are few: insert any read position, delete any entry position, replace a differing
    position, or swap an adjacent pair. Each is checked on the canonical strings (a slice
    comparison), and the OCR substitutions of the valid ones are counted.
    """
    n, m = len(entry), len(read)
    best: tuple[list[tuple[int, str, str]], str] | None = None
    options: list[tuple[list[tuple[int, str, str]], str]] = []
    if m == n + 1:
        for j in range(m):
            if cr[:j] + cr[j + 1 :] == ce:
                pairs = [(t, t if t < j else t - 1) for t in range(m) if t != j]
                options.append((_subs(read, entry, pairs), f"insert {read[j]} at {j}"))
    elif m == n - 1:
        for i in range(n):
            if ce[:i] + ce[i + 1 :] == cr:
                pairs = [(t, t if t < i else t + 1) for t in range(m)]
                options.append((_subs(read, entry, pairs), f"delete {entry[i]} at {i}"))
    elif m == n:
        for j in range(m):
            if read[j] != entry[j] and cr[:j] == ce[:j] and cr[j + 1 :] == ce[j + 1 :]:
                pairs = [(t, t) for t in range(m) if t != j]
                edit = f"replace {entry[j]} with {read[j]} at {j}"
                options.append((_subs(read, entry, pairs), edit))
        for j in range(m - 1):
            # a swap of two equal characters is never better than a plain alignment
            if read[j] == read[j + 1] or entry[j] == entry[j + 1]:
                continue
            if (
                cr[j] == ce[j + 1] and cr[j + 1] == ce[j]
                and cr[:j] == ce[:j] and cr[j + 2 :] == ce[j + 2 :]
            ):
                pairs = [(t, t) for t in range(m) if t not in (j, j + 1)]
                pairs += [(j, j + 1), (j + 1, j)]
                options.append((sorted(_subs(read, entry, pairs)), f"swap {j}-{j + 1}"))
    for subs, edit in options:
        if len(subs) <= max_subs and (best is None or len(subs) < len(best[0])):
            best = (subs, edit)
    if best is None:
        return None
    return Comparison("fuzzy", 1, tuple(best[0]), (best[1],))


# back-pointer operations
_ALIGN, _OCR, _REPLACE, _DELETE, _INSERT, _SWAP = range(6)
_Back = tuple[int, int, int, int]  # (operation, previous i, previous j, previous s)


def _dp(read: str, entry: str, cr: str, ce: str, d: int, o: int) -> Comparison | None:
    n, m = len(entry), len(read)
    inf = d + 1
    layers = o + 1
    cost = [[[inf] * layers for _ in range(m + 1)] for _ in range(n + 1)]
    back: list[list[list[_Back | None]]] = [
        [[None] * layers for _ in range(m + 1)] for _ in range(n + 1)
    ]
    cost[0][0][0] = 0
    for i in range(n + 1):
        for j in range(max(0, i - d), min(m, i + d) + 1):
            if i == 0 and j == 0:
                continue
            cell, ptr = cost[i][j], back[i][j]
            for s in range(layers):
                best, how = inf, None
                if i and j:
                    a, b = entry[i - 1], read[j - 1]
                    prev = cost[i - 1][j - 1]
                    if a == b:
                        if prev[s] < best:
                            best, how = prev[s], (_ALIGN, i - 1, j - 1, s)
                    else:
                        if s and cr[j - 1] == ce[i - 1] and prev[s - 1] < best:
                            best, how = prev[s - 1], (_OCR, i - 1, j - 1, s - 1)
                        if prev[s] + 1 < best:
                            best, how = prev[s] + 1, (_REPLACE, i - 1, j - 1, s)
                # swap E[k-1]..E[i-1] -> R[q-1]..R[j-1], gaps deleted / inserted
                for k in range(i - 1, max(0, i - d - 1), -1):
                    gap_e = i - k - 1
                    for q in range(j - 1, max(0, j - d + gap_e - 1), -1):
                        gap_r = j - q - 1
                        x, u = entry[k - 1], entry[i - 1]
                        y, v = read[j - 1], read[q - 1]
                        if ce[k - 1] != cr[j - 1] or ce[i - 1] != cr[q - 1]:
                            continue
                        used = (x != y) + (u != v)
                        if used > s:
                            continue
                        total = cost[k - 1][q - 1][s - used] + 1 + gap_e + gap_r
                        if total < best:
                            best, how = total, (_SWAP, k - 1, q - 1, s - used)
                if i and cost[i - 1][j][s] + 1 < best:
                    best, how = cost[i - 1][j][s] + 1, (_DELETE, i - 1, j, s)
                if j and cost[i][j - 1][s] + 1 < best:
                    best, how = cost[i][j - 1][s] + 1, (_INSERT, i, j - 1, s)
                cell[s], ptr[s] = best, how
    final = cost[n][m]
    diffs, s_best = min((final[s], s) for s in range(layers))
    if diffs > d:
        return None
    return _traceback(read, entry, back, n, m, s_best, diffs)


def _traceback(
    read: str,
    entry: str,
    back: list[list[list[_Back | None]]],
    i: int,
    j: int,
    s: int,
    diffs: int,
) -> Comparison:
    subs: list[tuple[int, str, str]] = []
    edits: list[tuple[int, str]] = []
    while i or j:
        step = back[i][j][s]
        assert step is not None  # every finite cell has a back-pointer
        op, pi, pj, ps = step
        if op == _OCR:
            subs.append((j - 1, read[j - 1], entry[i - 1]))
        elif op == _REPLACE:
            edits.append((j - 1, f"replace {entry[i - 1]} with {read[j - 1]} at {j - 1}"))
        elif op == _DELETE:
            edits.append((j, f"delete {entry[i - 1]} at {j}"))
        elif op == _INSERT:
            edits.append((j - 1, f"insert {read[j - 1]} at {j - 1}"))
        elif op == _SWAP:
            first, last = pj, j - 1  # read positions of the two swapped characters
            edits.append((first, f"swap {first}-{last}"))
            for t in range(pi + 1, i - 1):
                edits.append((first + 1, f"delete {entry[t]} at {first + 1}"))
            for t in range(first + 1, last):
                edits.append((t, f"insert {read[t]} at {t}"))
            if read[first] != entry[i - 1]:
                subs.append((first, read[first], entry[i - 1]))
            if read[last] != entry[pi]:
                subs.append((last, read[last], entry[pi]))
        i, j, s = pi, pj, ps
    subs.sort()
    edits.sort(key=lambda e: e[0])
    kind: Kind = "fuzzy" if diffs else ("ocr" if subs else "exact")
    return Comparison(kind, diffs, tuple(subs), tuple(text for _, text in edits))
