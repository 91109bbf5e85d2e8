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

Two cheaper exact cases run first, because they settle nearly every real hit: with no
difference, the only script aligns position by position, so equal canonical forms with at most
``o`` differing characters is the answer; with exactly one difference, every other character
stays aligned to an equivalent one, so trying each insertion, deletion, replacement and swap
position on the canonical strings (slice comparisons) finds all such scripts. Fewer
differences always win, so the programme only runs when both fail and ``d = 2``.
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


def _one_difference(read: str, entry: str, cr: str, ce: str, max_subs: int) -> Comparison | None:
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
                cr[j] == ce[j + 1]
                and cr[j + 1] == ce[j]
                and cr[:j] == ce[:j]
                and cr[j + 2 :] == ce[j + 2 :]
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


def _dp(read: str, entry: str, cr: str, ce: str, d: int, o: int) -> Comparison | None:
    n, m = len(entry), len(read)
    inf = d + 1
    layers = range(o + 1)
    outside = [inf] * (o + 1)  # shared by the cells outside the band; never written
    cost: list[list[list[int]]] = [[outside] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = [0] + [inf] * o
    # a swap with gap_e entry characters deleted and gap_r read characters inserted between
    gaps = [(ge, gr) for ge in range(d) for gr in range(d - ge)]
    for i in range(n + 1):
        row = cost[i]
        up = cost[i - 1] if i else row  # only read when i > 0
        for j in range(max(0, i - d), min(m, i + d) + 1):
            if not (i or j):
                continue
            cell = [inf] * (o + 1)
            if i:
                c = up[j]
                for s in layers:
                    if c[s] + 1 < cell[s]:
                        cell[s] = c[s] + 1
            if j:
                c = row[j - 1]
                for s in layers:
                    if c[s] + 1 < cell[s]:
                        cell[s] = c[s] + 1
                if i:
                    c = up[j - 1]
                    same = entry[i - 1] == read[j - 1]
                    step = 0 if same else 1
                    for s in layers:
                        if c[s] + step < cell[s]:
                            cell[s] = c[s] + step
                    if not same and ce[i - 1] == cr[j - 1]:
                        for s in layers[1:]:
                            if c[s - 1] < cell[s]:
                                cell[s] = c[s - 1]
            for ge, gr in gaps:
                k, q = i - 1 - ge, j - 1 - gr
                if k < 1 or q < 1 or ce[k - 1] != cr[j - 1] or ce[i - 1] != cr[q - 1]:
                    continue
                used = (entry[k - 1] != read[j - 1]) + (entry[i - 1] != read[q - 1])
                c, add = cost[k - 1][q - 1], 1 + ge + gr
                for s in layers[used:]:
                    if c[s - used] + add < cell[s]:
                        cell[s] = c[s - used] + add
            row[j] = cell
    diffs, s_best = min((cost[n][m][s], s) for s in layers)
    if diffs > d:
        return None
    return _traceback(read, entry, cr, ce, cost, d, s_best, diffs)


def _traceback(
    read: str,
    entry: str,
    cr: str,
    ce: str,
    cost: list[list[list[int]]],
    d: int,
    s: int,
    diffs: int,
) -> Comparison:
    """Walk back from the final cell, re-deriving which transition gave each cell its value."""
    subs: list[tuple[int, str, str]] = []
    edits: list[tuple[int, str]] = []
    gaps = [(ge, gr) for ge in range(d) for gr in range(d - ge)]
    i, j = len(entry), len(read)
    while i or j:
        here = cost[i][j][s]
        if i and j:
            diag = cost[i - 1][j - 1]
            a, b = entry[i - 1], read[j - 1]
            if a == b and diag[s] == here:
                i, j = i - 1, j - 1
                continue
            if a != b and s and ce[i - 1] == cr[j - 1] and diag[s - 1] == here:
                subs.append((j - 1, b, a))
                i, j, s = i - 1, j - 1, s - 1
                continue
            if a != b and diag[s] + 1 == here:
                edits.append((j - 1, f"replace {a} with {b} at {j - 1}"))
                i, j = i - 1, j - 1
                continue
        swapped = False
        for ge, gr in gaps:
            k, q = i - 1 - ge, j - 1 - gr
            if k < 1 or q < 1 or ce[k - 1] != cr[j - 1] or ce[i - 1] != cr[q - 1]:
                continue
            used = (entry[k - 1] != read[j - 1]) + (entry[i - 1] != read[q - 1])
            if used > s or cost[k - 1][q - 1][s - used] + 1 + ge + gr != here:
                continue
            first, last = q - 1, j - 1  # read positions of the two swapped characters
            edits.append((first, f"swap {first}-{last}"))
            edits.extend((first + 1, f"delete {entry[t]} at {first + 1}") for t in range(k, i - 1))
            edits.extend((t, f"insert {read[t]} at {t}") for t in range(first + 1, last))
            if read[first] != entry[i - 1]:
                subs.append((first, read[first], entry[i - 1]))
            if read[last] != entry[k - 1]:
                subs.append((last, read[last], entry[k - 1]))
            i, j, s = k - 1, q - 1, s - used
            swapped = True
            break
        if swapped:
            continue
        if i and cost[i - 1][j][s] + 1 == here:
            edits.append((j, f"delete {entry[i - 1]} at {j}"))
            i -= 1
        else:
            edits.append((j - 1, f"insert {read[j - 1]} at {j - 1}"))
            j -= 1
    subs.sort()
    edits.sort(key=lambda e: e[0])
    kind: Kind = "fuzzy" if diffs else ("ocr" if subs else "exact")
    return Comparison(kind, diffs, tuple(subs), tuple(text for _, text in edits))
