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
probing without wrap-around, load factor <= 0.5, home slot = the key's top bits). Building and
probing are vectorised over all keys at once: a build round places every pending key at its
current slot and only the keys that lost a slot take another round; a lookup first reads every
key's home slot (which settles most keys: hit or empty), then the rest read a window of 8
slots at a time. Memory is about ``16 bytes * 2 * distinct keys + 4 bytes * pairs``; there is
no Python object per key, and the table is never binary-searched.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["TAB", "BucketTable", "expand_buckets", "salt"]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

_COLUMNS = 32  # key columns: start-aligned, end-aligned, padding and gram positions
_CODES = 256
_rng = np.random.default_rng(0x9E3779B97F4A7C15)
#: TAB[column, code]: the tabulation words; code 0 (padding) hashes to 0.
TAB: U64 = _rng.integers(1, 2**64 - 1, size=(_COLUMNS, _CODES), dtype=np.uint64)
TAB[:, 0] = 0
_MASK64 = (1 << 64) - 1
_WINDOW = 8  # slots read per probe round
_OFFSETS = np.arange(_WINDOW, dtype=np.int64)[None, :]


def salt(family: int) -> np.uint64:
    """A fixed pseudo-random word for a key family (a length, a template...): splitmix64."""
    z = (family * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return np.uint64(z ^ (z >> 31))


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
        self._shift = np.uint64(64 - bits)
        self._keys: U64 = np.zeros(0, dtype=np.uint64)
        self._starts: I32 = np.zeros(0, dtype=np.int32)
        self._counts: I32 = np.zeros(0, dtype=np.int32)
        self._place(distinct, starts.astype(np.int32), counts.astype(np.int32), 1 << bits)

    def _place(self, keys: U64, starts: I32, counts: I32, size: int) -> None:
        # Linear probing without wrap-around: a run may spill past ``size`` into an overflow
        # tail, so a lookup reads one contiguous window of slots.
        slot = (keys >> self._shift).astype(np.int64)
        taken = np.zeros(size + _WINDOW, dtype=bool)
        where = np.empty(keys.size, dtype=np.int64)
        pending = np.arange(keys.size)
        while pending.size:
            if taken.size < int(slot[pending].max()) + 1 + _WINDOW:
                taken = np.concatenate([taken, np.zeros(taken.size, dtype=bool)])
            want = slot[pending]
            free = ~taken[want]
            # among the pending keys that want a free slot, the first one per slot takes it
            cand = pending[free]
            _, first = np.unique(want[free], return_index=True)
            won = cand[first]
            where[won] = slot[won]
            taken[slot[won]] = True
            placed = np.zeros(keys.size, dtype=bool)
            placed[won] = True
            pending = pending[~placed[pending]]
            slot[pending] += 1
        total = int(where.max()) + 1 + _WINDOW if keys.size else size + _WINDOW
        self._keys = np.zeros(max(total, size + _WINDOW), dtype=np.uint64)
        self._starts = np.zeros(self._keys.size, dtype=np.int32)
        self._counts = np.zeros(self._keys.size, dtype=np.int32)
        self._keys[where], self._starts[where], self._counts[where] = keys, starts, counts

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays of this table."""
        return int(
            self._keys.nbytes + self._starts.nbytes + self._counts.nbytes + self.values.nbytes
        )

    def lookup(self, keys: U64) -> tuple[I32, I32]:
        """``(start, count)`` of each key's bucket in :attr:`values`; count 0 when absent.

        Reads a window of slots per key at once; a key is in the table if it appears before
        the first empty slot of its run, which nearly always lies inside the first window.
        """
        keys = np.where(keys == 0, np.uint64(1), keys)
        starts = np.zeros(keys.size, dtype=np.int32)
        counts = np.zeros(keys.size, dtype=np.int32)
        base = (keys >> self._shift).astype(np.intp)
        # first the home slot alone: at load <= 0.5 it settles most keys (hit or empty)
        found = self._keys[base]
        hit = np.flatnonzero(found == keys)
        if hit.size:
            starts[hit] = self._starts[base[hit]]
            counts[hit] = self._counts[base[hit]]
        pending = np.flatnonzero((found != keys) & (found != 0))
        base[pending] += 1
        limit = self._keys.size - _WINDOW
        while pending.size:
            at = np.minimum(base[pending], limit)[:, None] + _OFFSETS
            window = self._keys[at]
            stop = (window == keys[pending][:, None]) | (window == 0)
            first = np.argmax(stop, axis=1)
            rows = np.arange(pending.size)
            ended = stop[rows, first]
            slot = at[rows, first]
            hit = ended & (window[rows, first] != 0)
            starts[pending[hit]] = self._starts[slot[hit]]
            counts[pending[hit]] = self._counts[slot[hit]]
            more = ~ended & (base[pending] < limit)
            base[pending[more]] += _WINDOW
            pending = pending[more]
        return starts, counts


def expand_buckets(owner: I64, starts: I32, counts: I32, values: I32) -> tuple[I64, I32]:
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
