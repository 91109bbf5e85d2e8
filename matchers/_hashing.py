"""Vectorised key hashing and the flat bucket hash table behind every index structure.

Keys are short strings of character codes (see :mod:`matchers._text`). They are hashed by
*tabulation*: a fixed table holds one random 64-bit word per (column, code); a key's hash is the
XOR of the words of its characters, XOR a salt for its length (or family). Code 0 (padding) has
the word 0, so a whole zero-padded ``(rows, columns)`` array hashes with one gather and one XOR
reduction, with no per-row Python. Tabulation hashing is 3-independent, and every hit is verified
afterwards, so a (2^-64) collision costs a wasted verification, never a wrong answer.

:class:`BucketTable` maps a 64-bit key to a *bucket*, a run of int32 values (entry or pattern
ids): the (key, value) pairs are sorted by key once, so each distinct key owns the contiguous run
``values[start:start + count]``; the distinct keys sit in an open-addressed array (linear
probing, load factor <= 0.5, home slot = the key's top bits). Building and probing are both
vectorised over all keys at once: each round places (or looks up) every pending key at its
current slot, and only the keys that collided take another round. Memory is about
``16 bytes * 2 * distinct keys + 4 bytes * pairs``; there is no Python object per key.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["TAB", "BucketTable", "expand_buckets", "salt", "xor_hash"]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

_COLUMNS = 24  # widest key layout hashed (start-aligned + end-aligned columns of a plate)
_CODES = 256
_rng = np.random.default_rng(0x9E3779B97F4A7C15)
#: TAB[column, code]: the tabulation words; code 0 (padding) hashes to 0.
TAB: U64 = _rng.integers(1, 2**64 - 1, size=(_COLUMNS, _CODES), dtype=np.uint64)
TAB[:, 0] = 0
_SALTS: U64 = _rng.integers(1, 2**64 - 1, size=4096, dtype=np.uint64)


def salt(family: int) -> np.uint64:
    """A fixed random word for a key family (length, signature...), ``0 <= family < 4096``."""
    return _SALTS[family]


def xor_hash(codes: npt.NDArray[np.uint8], columns: npt.NDArray[np.intp] | None = None) -> U64:
    """Hash the last axis of ``codes``: XOR over ``TAB[column, code]``.

    ``columns`` gives the TAB column of each position of the last axis (default 0, 1, 2...).
    """
    if columns is None:
        columns = np.arange(codes.shape[-1])
    words = TAB[columns, codes]
    return np.bitwise_xor.reduce(words, axis=-1)


class BucketTable:
    """An immutable map ``uint64 key -> int32 values``, built and probed in batches."""

    __slots__ = ("_counts", "_keys", "_shift", "_starts", "values")

    def __init__(self, keys: U64, values: I32) -> None:
        """Build from parallel arrays of (key, value) pairs; duplicate pairs are kept once."""
        keys = np.where(keys == 0, np.uint64(1), keys)  # 0 marks an empty slot
        order = np.lexsort((values, keys))
        keys, values = keys[order], values[order]
        if keys.size:
            keep = np.ones(keys.size, dtype=bool)
            keep[1:] = (keys[1:] != keys[:-1]) | (values[1:] != values[:-1])
            keys, values = keys[keep], values[keep]
        self.values: I32 = np.ascontiguousarray(values, dtype=np.int32)
        first = np.ones(keys.size, dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        starts = np.flatnonzero(first)
        distinct = keys[starts]
        counts = np.diff(np.append(starts, keys.size))
        bits = max(4, int(np.ceil(np.log2(max(1, distinct.size) * 2 + 1))))
        size = 1 << bits
        self._shift = np.uint64(64 - bits)
        self._keys: U64 = np.zeros(size, dtype=np.uint64)
        self._starts: I32 = np.zeros(size, dtype=np.int32)
        self._counts: I32 = np.zeros(size, dtype=np.int32)
        self._place(distinct, starts.astype(np.int32), counts.astype(np.int32))

    def _place(self, keys: U64, starts: I32, counts: I32) -> None:
        mask = np.int64(self._keys.size - 1)
        slot = (keys >> self._shift).astype(np.int64)
        pending = np.arange(keys.size)
        while pending.size:
            want = slot[pending]
            free = self._keys[want] == 0
            # among the pending keys that want a free slot, the first one per slot takes it
            cand = pending[free]
            _, first = np.unique(want[free], return_index=True)
            won = cand[first]
            self._keys[slot[won]] = keys[won]
            self._starts[slot[won]] = starts[won]
            self._counts[slot[won]] = counts[won]
            placed = np.zeros(keys.size, dtype=bool)
            placed[won] = True
            pending = pending[~placed[pending]]
            slot[pending] = (slot[pending] + 1) & mask

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays of this table."""
        return int(self._keys.nbytes + self._starts.nbytes + self._counts.nbytes + self.values.nbytes)

    def lookup(self, keys: U64) -> tuple[I32, I32]:
        """``(start, count)`` of each key's bucket in :attr:`values`; count 0 when absent."""
        keys = np.where(keys == 0, np.uint64(1), keys)
        starts = np.zeros(keys.size, dtype=np.int32)
        counts = np.zeros(keys.size, dtype=np.int32)
        mask = np.int64(self._keys.size - 1)
        slot = (keys >> self._shift).astype(np.int64)
        pending = np.arange(keys.size)
        while pending.size:
            at = slot[pending]
            found = self._keys[at]
            hit = found == keys[pending]
            if hit.any():
                rows = pending[hit]
                starts[rows] = self._starts[at[hit]]
                counts[rows] = self._counts[at[hit]]
            going = ~hit & (found != 0)
            pending = pending[going]
            slot[pending] = (at[going] + 1) & mask
        return starts, counts


def expand_buckets(
    owner: I64, starts: I32, counts: I32, values: I32
) -> tuple[I64, I32]:
    """Flatten buckets: one ``(owner, value)`` pair per value of every probed bucket."""
    nonzero = counts > 0
    owner, starts, counts = owner[nonzero], starts[nonzero], counts[nonzero]
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    rep_owner = np.repeat(owner, counts)
    offsets = np.cumsum(counts) - counts
    within = np.arange(total) - np.repeat(offsets, counts)
    return rep_owner, values[np.repeat(starts, counts) + within]
