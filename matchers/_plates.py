"""Plate entries: a deletion-neighbourhood index over OCR-canonical forms, probed per batch.

Why it finds every match. Map every character to its OCR class representative (canonical
form). An OCR substitution then disappears, and an edit script with ``k`` differences becomes
one with at most ``k`` canonical edits. If canonical E and R are within ``k`` edits (insert,
delete, substitute, adjacent swap, possibly with one character between a swapped pair), then
deleting at most ``k`` characters from each gives a common string: a substitution or a swap
deletes one character on both sides, an insertion one on R's side, a deletion one on E's side.
So the index stores, for each entry, the hash of every string obtained by deleting up to ``d``
characters of its canonical plate (``1 + n + n(n-1)/2`` keys at most), and a read probes the
hashes of its own deletion variants. With ``d = 0`` this is a single key per entry: the
canonical plate, which covers every OCR spelling at once. Entries shorter than
``min_fuzzy_length`` match exactly only and store just that one key.

Every candidate pair is then decided exactly:

* with no difference to spend (``d = 0``, or an alternate candidate plate) fully vectorised:
  same length, same canonical codes, and the count of differing raw characters (the OCR
  substitutions) at most ``o``; an exact-only entry needs zero;
* otherwise the pairs that already match without a difference are settled the same way
  (no difference is the best possible), the rest go through a C-speed lower bound (the
  unrestricted Damerau-Levenshtein distance of the canonical strings, via rapidfuzz, can only
  be smaller than the number of differences) and the survivors through :func:`edit_cost`.

Keys are tabulation hashes (:mod:`matchers._hashing`) computed for the whole batch at once:
the deletion variants of a ``(rows, 10)`` code array are gathers through a fixed "kept columns"
matrix per number of deletions.
"""

from __future__ import annotations

import itertools
from functools import cached_property

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import DamerauLevenshtein
from rapidfuzz.process import cpdist

from matchers._compare import Comparison, edit_cost
from matchers._hashing import TAB, BucketTable, expand_buckets, salt
from matchers._text import MAX_PLATE_LENGTH, OcrClasses

__all__ = ["PlateIndex", "ReadBatch", "deletion_keys"]

W = MAX_PLATE_LENGTH
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
B = npt.NDArray[np.bool_]
U64 = npt.NDArray[np.uint64]
_CHUNK = 65536  # rows hashed at a time: bounds the (rows, variants, columns) temporaries

# for k deletions: every set of k positions, the kept columns, and the last deleted position
_COMBOS = {k: list(itertools.combinations(range(W), k)) for k in (1, 2)}
_KEEP = {
    k: np.array([[c for c in range(W) if c not in combo] for combo in _COMBOS[k]], dtype=np.intp)
    for k in (1, 2)
}
_LAST = {k: np.array([combo[-1] for combo in _COMBOS[k]], dtype=np.int64) for k in (1, 2)}
_LEN_SALT = np.array([salt(n) for n in range(W + 1)], dtype=np.uint64)


def deletion_keys(canon: U8, lengths: I64, k: int) -> tuple[U64, B]:
    """Hashes of every ``k``-deletion variant of each row: ``(rows, variants)`` and validity."""
    if k == 0:
        keys = np.empty(canon.shape[0], dtype=np.uint64)
        for lo in range(0, canon.shape[0], _CHUNK):
            words = TAB[np.arange(W), canon[lo : lo + _CHUNK]]
            keys[lo : lo + _CHUNK] = np.bitwise_xor.reduce(words, axis=1)
        keys ^= _LEN_SALT[lengths]
        return keys[:, None], np.ones((canon.shape[0], 1), dtype=bool)
    keep, cols = _KEEP[k], np.arange(W - k)
    out = np.empty((canon.shape[0], keep.shape[0]), dtype=np.uint64)
    for lo in range(0, canon.shape[0], _CHUNK):
        part = canon[lo : lo + _CHUNK]
        words = TAB[cols, part[:, keep]]  # (rows, variants, W - k)
        lens = np.maximum(lengths[lo : lo + _CHUNK] - k, 0)
        out[lo : lo + _CHUNK] = np.bitwise_xor.reduce(words, axis=2) ^ _LEN_SALT[lens][:, None]
    return out, _LAST[k][None, :] < lengths[:, None]


class ReadBatch:
    """One batch of plates to match (reads or alternates), with lazily computed keys.

    :ivar owner: for each row, the read it belongs to (alternates point at their read).
    """

    def __init__(self, plates: list[str], raw: U8, lengths: I64, owner: I64, ocr: OcrClasses):
        self.plates = plates
        self.raw = raw
        self.lengths = lengths
        self.owner = owner
        self.ocr = ocr
        self.canon: U8 = ocr.canonical_lut[raw]
        self._keys: dict[int, tuple[I64, U64]] = {}

    def __len__(self) -> int:
        return len(self.plates)

    def probe_keys(self, k: int) -> tuple[I64, U64]:
        """``(row, key)`` of every valid variant with exactly ``k`` deletions."""
        if k not in self._keys:
            keys, valid = deletion_keys(self.canon, self.lengths, k)
            rows, cols = np.nonzero(valid)
            self._keys[k] = rows.astype(np.int64), keys[rows, cols]
        return self._keys[k]

    @cached_property
    def raw_end(self) -> U8:
        """Raw codes aligned on the last character: column q holds the (q+1)-th from the end."""
        back = self.lengths[:, None] - 1 - np.arange(W)[None, :]
        picked = np.take_along_axis(self.raw, np.maximum(back, 0), axis=1)
        return np.where(back >= 0, picked, 0).astype(np.uint8)

    @cached_property
    def canon_end(self) -> U8:
        return self.ocr.canonical_lut[self.raw_end]


class PlateIndex:
    """The plate (non-pattern) entries of one hotlist.

    :arg plates: the entry plates; row ``i`` is the entry ``ids[i]`` of the hotlist.
    """

    def __init__(
        self,
        plates: list[str],
        raw: U8,
        lengths: I64,
        ids: I32,
        differences: int,
        ocr_equivalents: int,
        min_fuzzy_length: int,
        ocr: OcrClasses,
    ) -> None:
        self.plates = plates
        self.raw = raw
        self.lengths = lengths.astype(np.uint8)
        self.ids = ids
        self.d = differences
        self.o = ocr_equivalents
        self.ocr = ocr
        canon = ocr.canonical_lut[raw]
        self.exact_only: B = lengths < min_fuzzy_length
        rows = np.arange(len(plates), dtype=np.int32)
        key_parts, row_parts = [], []
        for k in range(differences + 1):
            fuzzy = np.flatnonzero(~self.exact_only) if k else rows
            if not fuzzy.size:
                continue
            keys, valid = deletion_keys(canon[fuzzy], lengths[fuzzy], k)
            r, c = np.nonzero(valid)
            key_parts.append(keys[r, c])
            row_parts.append(fuzzy[r].astype(np.int32))
        self.table = BucketTable(
            np.concatenate(key_parts) if key_parts else np.zeros(0, np.uint64),
            np.concatenate(row_parts) if row_parts else np.zeros(0, np.int32),
        )

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes + self.raw.nbytes + self.lengths.nbytes + self.ids.nbytes)

    def candidates(self, batch: ReadBatch, max_deletions: int) -> tuple[I64, I32]:
        """Distinct ``(batch row, plate row)`` pairs sharing a key, up to ``max_deletions``."""
        rows_parts, keys_parts = [], []
        deletions = min(max_deletions, self.d)
        for k in range(deletions + 1):
            rows, keys = batch.probe_keys(k)
            rows_parts.append(rows)
            keys_parts.append(keys)
        rows = np.concatenate(rows_parts)
        starts, counts = self.table.lookup(np.concatenate(keys_parts))
        pair_rows, plate_rows = expand_buckets(rows, starts, counts, self.table.values)
        if deletions and pair_rows.size > 1:
            combined = np.unique(pair_rows * len(self.plates) + plate_rows)
            pair_rows = combined // len(self.plates)
            plate_rows = (combined % len(self.plates)).astype(np.int32)
        return pair_rows, plate_rows

    def no_difference(self, batch: ReadBatch, rows: I64, plates: I32) -> tuple[B, I64]:
        """Which pairs match with zero differences, and their OCR substitution counts."""
        same = (self.lengths[plates] == batch.lengths[rows]) & np.all(
            self.ocr.canonical_lut[self.raw[plates]] == batch.canon[rows], axis=1
        )
        subs = np.count_nonzero(self.raw[plates] != batch.raw[rows], axis=1).astype(np.int64)
        ok = same & (subs <= self.o) & ((subs == 0) | ~self.exact_only[plates])
        return ok, subs

    def verify(
        self, batch: ReadBatch, rows: I64, plates: I32, allow_differences: bool
    ) -> list[tuple[int, int, Comparison]]:
        """Decide candidate pairs exactly: ``(batch row, plate row, comparison)`` of the hits."""
        ok, _ = self.no_difference(batch, rows, plates)
        hits = [
            (r, p, _ocr_comparison(batch.plates[r], self.plates[p]))
            for r, p in zip(rows[ok].tolist(), plates[ok].tolist(), strict=True)
        ]
        if not (allow_differences and self.d):
            return hits
        rest = ~ok & ~self.exact_only[plates]
        rest &= np.abs(self.lengths[plates].astype(np.int64) - batch.lengths[rows]) <= self.d
        r_rest, p_rest = rows[rest].tolist(), plates[rest].tolist()
        if not r_rest:
            return hits
        canonical = self.ocr.canonical
        bound = cpdist(
            [canonical(batch.plates[r]) for r in r_rest],
            [canonical(self.plates[p]) for p in p_rest],
            scorer=DamerauLevenshtein.distance,
            score_cutoff=self.d,
            dtype=np.int32,
        )
        for r, p, lower in zip(r_rest, p_rest, bound.tolist(), strict=True):
            if lower > self.d:
                continue
            got = edit_cost(batch.plates[r], self.plates[p], self.d, self.o, self.ocr)
            if got is not None:
                hits.append((r, p, got))
        return hits


def _ocr_comparison(read: str, entry: str) -> Comparison:
    subs = tuple((j, a, b) for j, (a, b) in enumerate(zip(read, entry, strict=True)) if a != b)
    return Comparison("ocr" if subs else "exact", 0, subs, ())
