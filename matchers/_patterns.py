"""Wildcard entries: a structure that finds the few patterns a read can match, per batch.

Checking thousands of globs against every read would cost milliseconds per read, so each
pattern is filed under one *key* built from characters it pins down, and a read only verifies
the patterns whose key it produces. All keys are canonical (OCR classes collapsed), because a
literal may be read as a look-alike.

* **Anchored key** (most patterns). Literals before the first ``*`` sit at fixed offsets from
  the start of the plate, literals after the last ``*`` at fixed offsets from the end; a pattern
  without ``*`` is anchored throughout and also fixes the plate length. A pattern's key is up to
  four such (offset, character) pairs, a *template*. Templates are chosen so that few distinct
  ones exist: among the four-position subsets a pattern could use, it takes the one most other
  patterns of its length group use. A read then computes one key per template that fits its
  length (``?``, sets and ``*`` never enter a key) -- a gather and an XOR over a
  ``(reads, templates, 4)`` array per plate length, vectorised over the batch.
* **Gram key** (patterns whose pinned characters mostly float between stars, ``*AB12*``): the
  first (up to) four characters of the longest run of literals; a read probes all its
  substrings of those lengths.
* **Scan** (no literal at all, ``???`` or ``[AB]*``): verified against every read whose length
  fits, vectorised for fixed-length ones.

Candidates are then decided for the whole batch at once on the anchored segments: each
position from the start (and from the end) holds a 64-bit mask of the raw characters it accepts
(a literal's OCR class, a set's members, anything for ``?``), the OCR substitutions are counted
as the literal positions whose raw character differs, and the plate length must fit. For a
pattern with at most one ``*`` that is the complete decision (with the length check the two
segments cannot overlap, and the star takes whatever lies between). Patterns with floating
segments (two or more ``*``) are finished by :func:`glob_cost` on the survivors.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from matchers._compare import Comparison
from matchers._glob import LIT, SET, STAR, Token, glob_cost, parse_pattern
from matchers._hashing import TAB, BucketTable, expand_buckets, salt
from matchers._plates import ReadBatch
from matchers._text import ALPHABET, MAX_PLATE_LENGTH, OcrClasses

__all__ = ["PatternIndex"]

W = MAX_PLATE_LENGTH
PAD_COL = 2 * W  # an always-zero column of the read layout
GRAM_COL = 2 * W + 1  # TAB columns used by gram keys
TEMPLATE = 4  # characters in an anchored key
GRAM = 4  # characters in a gram key
_SIG_SALT, _GRAM_SALT = 100, 50
_POPULAR = 64  # templates tried per pattern, most used first
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
_CODE = {c: i for i, c in enumerate(ALPHABET, start=1)}
_ANY_BITS = sum(1 << code for code in _CODE.values())


def _bits(token: Token, ocr: OcrClasses) -> int:
    """The raw character codes one token accepts, as bits of a 64-bit mask."""
    if token.kind == LIT:
        return sum(1 << _CODE[c] for c in ALPHABET if ocr.equivalent(c, token.char))
    if token.kind == SET:
        return sum(1 << _CODE[c] for c in token.allowed)
    return _ANY_BITS


def _anchored(tokens: tuple[Token, ...]) -> list[tuple[int, str]]:
    """(read column, literal) of every literal at a fixed offset from the start or the end."""
    if all(t.kind != STAR for t in tokens):
        return [(p, t.char) for p, t in enumerate(tokens) if t.kind == LIT]
    first = next(i for i, t in enumerate(tokens) if t.kind == STAR)
    last = max(i for i, t in enumerate(tokens) if t.kind == STAR)
    out = [(p, t.char) for p, t in enumerate(tokens[:first]) if t.kind == LIT]
    n = len(tokens)
    out += [(W + n - 1 - i, tokens[i].char) for i in range(last + 1, n) if tokens[i].kind == LIT]
    return out


def _floating_run(tokens: tuple[Token, ...]) -> str:
    """The longest run of literals between the first and the last ``*``."""
    stars = [i for i, t in enumerate(tokens) if t.kind == STAR]
    best, run = "", ""
    for t in tokens[stars[0] + 1 : stars[-1]] if len(stars) > 1 else ():
        run = run + t.char if t.kind == LIT else ""
        if len(run) > len(best):
            best = run
    return best


class PatternIndex:
    """The wildcard entries of one hotlist; row ``i`` is entry ``ids[i]`` of the hotlist."""

    def __init__(self, patterns: list[str], ids: I32, ocr_equivalents: int, ocr: OcrClasses):
        self.patterns = patterns
        self.ids = ids
        self.o = ocr_equivalents
        self.ocr = ocr
        self.tokens = [parse_pattern(p) for p in patterns]
        count = len(patterns)
        self.fixed = np.array([all(t.kind != STAR for t in ts) for ts in self.tokens], dtype=bool)
        self.min_len = np.array([sum(t.kind != STAR for t in ts) for ts in self.tokens], np.int64)
        self.max_len = np.where(self.fixed, self.min_len, W)
        self._build_checks(ocr)
        canon = {c: _CODE[ocr.representative(c)] for c in ALPHABET}

        anchored = [_anchored(ts) for ts in self.tokens]
        runs = [
            "" if f else _floating_run(ts) for ts, f in zip(self.tokens, self.fixed, strict=True)
        ]
        use_gram = [len(a) < min(len(r), GRAM) for a, r in zip(anchored, runs, strict=True)]
        groups = [int(self.min_len[i]) if self.fixed[i] else -1 for i in range(count)]
        # template choice: the most popular subset of a pattern's pinned columns
        preferred = Counter(
            (groups[i], tuple(sorted(c for c, _ in anchored[i])[:TEMPLATE]))
            for i in range(count)
            if anchored[i] and not use_gram[i]
        )
        ranked: dict[tuple[int, int], list[tuple[int, ...]]] = {}
        for group, cols in sorted(preferred, key=lambda t: (-preferred[t], t)):
            ranked.setdefault((group, len(cols)), []).append(cols)
        sig_of: dict[tuple[int, tuple[int, ...]], int] = {}
        keys: list[int] = []
        values: list[int] = []
        grams: set[int] = set()
        scan: list[int] = []
        for i in range(count):
            pinned = dict(anchored[i])
            if use_gram[i]:
                gram = runs[i][:GRAM]
                grams.add(len(gram))
                word = salt(_GRAM_SALT + len(gram))
                for t, c in enumerate(gram):
                    word ^= TAB[GRAM_COL + t, canon[c]]
                keys.append(int(word))
                values.append(i)
                continue
            if not pinned:
                scan.append(i)
                continue
            own = tuple(sorted(pinned)[:TEMPLATE])
            popular = ranked[(groups[i], len(own))][:_POPULAR]
            template = next((t for t in popular if all(c in pinned for c in t)), own)
            sig = sig_of.setdefault((groups[i], template), len(sig_of))
            word = salt(_SIG_SALT + sig)
            for col in template:
                word ^= TAB[col, canon[pinned[col]]]
            keys.append(int(word))
            values.append(i)
        self.table = BucketTable(np.array(keys, dtype=np.uint64), np.array(values, dtype=np.int32))
        self.grams = sorted(grams)
        self.scan = np.array(scan, dtype=np.int32)
        sigs = sorted(sig_of, key=sig_of.__getitem__)
        self._sig_cols = np.full((len(sigs), TEMPLATE), PAD_COL, dtype=np.intp)
        need = np.zeros(len(sigs), dtype=np.int64)
        for s, (_, cols) in enumerate(sigs):
            self._sig_cols[s, : len(cols)] = cols
            need[s] = max(c + 1 if c < W else c - W + 1 for c in cols)
        self._sig_salt = np.array([salt(_SIG_SALT + s) for s in range(len(sigs))], np.uint64)
        lengths = np.array([g for g, _ in sigs], dtype=np.int64)
        self._sigs_for_len = [
            np.flatnonzero((lengths == n) | ((lengths == -1) & (need <= n))) for n in range(W + 1)
        ]

    def _build_checks(self, ocr: OcrClasses) -> None:
        """Per-position accept masks of the anchored start and end segments, and literals."""
        count = len(self.patterns)
        free = np.uint64(_ANY_BITS | 1)  # any character, or none (padding)
        self.accept_start = np.full((count, W), free, dtype=np.uint64)
        self.accept_end = np.full((count, W), free, dtype=np.uint64)
        self.literal_start = np.zeros((count, W), dtype=np.uint8)
        self.literal_end = np.zeros((count, W), dtype=np.uint8)
        self.stars = np.zeros(count, dtype=np.int64)
        for i, tokens in enumerate(self.tokens):
            stars = [k for k, t in enumerate(tokens) if t.kind == STAR]
            self.stars[i] = len(stars)
            head: tuple[Token, ...] = tokens
            tail: tuple[Token, ...] = ()
            if not stars:
                self.accept_start[i, :] = np.uint64(1)  # past the end: only padding
            else:
                head, tail = tokens[: stars[0]], tokens[stars[-1] + 1 :][::-1]
            for accept, literal, segment in (
                (self.accept_start, self.literal_start, head),
                (self.accept_end, self.literal_end, tail),
            ):
                for p, t in enumerate(segment):
                    accept[i, p] = np.uint64(_bits(t, ocr))
                    literal[i, p] = _CODE[t.char] if t.kind == LIT else 0

    def __len__(self) -> int:
        return len(self.patterns)

    @property
    def nbytes(self) -> int:
        arrays = (self.accept_start, self.accept_end, self.literal_start, self.literal_end)
        return int(self.table.nbytes + sum(a.nbytes for a in arrays))

    def candidates(self, batch: ReadBatch) -> tuple[I64, I32]:
        """Distinct ``(batch row, pattern row)`` pairs worth verifying."""
        lengths, canon = batch.lengths, batch.canon
        row_parts: list[I64] = []
        key_parts: list[npt.NDArray[np.uint64]] = []
        if self._sig_cols.shape[0]:
            layout = np.zeros((len(batch), 2 * W + 1), dtype=np.uint8)
            layout[:, :W] = canon
            layout[:, W : 2 * W] = batch.canon_end
            for n in np.unique(lengths).tolist():
                sigs = self._sigs_for_len[n]
                if not sigs.size:
                    continue
                rows = np.flatnonzero(lengths == n)
                cols = self._sig_cols[sigs]  # (templates, 4)
                words = TAB[cols[None, :, :], layout[rows][:, cols]]
                keys = np.bitwise_xor.reduce(words, axis=2) ^ self._sig_salt[sigs][None, :]
                row_parts.append(np.repeat(rows, sigs.size))
                key_parts.append(keys.ravel())
        for g in self.grams:
            windows = sliding_window_view(canon, g, axis=1)  # (rows, W - g + 1, g)
            keys = np.bitwise_xor.reduce(TAB[GRAM_COL + np.arange(g), windows], axis=2)
            keys ^= salt(_GRAM_SALT + g)
            valid = np.arange(W - g + 1)[None, :] + g <= lengths[:, None]
            r, c = np.nonzero(valid)
            row_parts.append(r.astype(np.int64))
            key_parts.append(keys[r, c])
        pair_rows = np.zeros(0, dtype=np.int64)
        pats = np.zeros(0, dtype=np.int32)
        if key_parts:
            rows_all = np.concatenate(row_parts)
            starts, counts = self.table.lookup(np.concatenate(key_parts))
            pair_rows, pats = expand_buckets(rows_all, starts, counts, self.table.values)
        if self.scan.size:
            fits = (lengths[:, None] >= self.min_len[self.scan][None, :]) & (
                lengths[:, None] <= self.max_len[self.scan][None, :]
            )
            r, c = np.nonzero(fits)
            pair_rows = np.concatenate([pair_rows, r.astype(np.int64)])
            pats = np.concatenate([pats, self.scan[c]])
        if self.grams and pair_rows.size > 1:
            combined = np.unique(pair_rows * len(self.patterns) + pats)
            pair_rows = combined // len(self.patterns)
            pats = (combined % len(self.patterns)).astype(np.int32)
        return pair_rows, pats

    def verify(self, batch: ReadBatch, rows: I64, pats: I32) -> list[tuple[int, int, Comparison]]:
        """Decide candidate pairs exactly: ``(batch row, pattern row, comparison)`` of hits.

        The anchored segments are checked for all pairs at once (length range, accepted
        characters, OCR substitutions of their literals); that is the whole decision for a
        pattern with at most one ``*``. Patterns with floating segments then go through
        :func:`glob_cost`.
        """
        if not rows.size:
            return []
        n = batch.lengths[rows]
        raw, raw_end = batch.raw[rows], batch.raw_end[rows]
        ok = (self.min_len[pats] <= n) & (n <= self.max_len[pats])
        for accept, codes in ((self.accept_start, raw), (self.accept_end, raw_end)):
            bits = (accept[pats] >> codes.astype(np.uint64)) & np.uint64(1)
            ok &= np.all(bits == 1, axis=1)
        subs = np.zeros(rows.size, dtype=np.int64)
        for literal, codes in ((self.literal_start, raw), (self.literal_end, raw_end)):
            lit = literal[pats]
            subs += np.count_nonzero((lit != 0) & (lit != codes), axis=1)
        ok &= subs <= self.o
        hits: list[tuple[int, int, Comparison]] = []
        for r, p in zip(rows[ok].tolist(), pats[ok].tolist(), strict=True):
            text = batch.plates[r]
            if self.stars[p] > 1:
                got = glob_cost(self.tokens[p], text, self.o, self.ocr)
                if got is not None:
                    hits.append((r, p, Comparison("partial", 0, got, ())))
                continue
            tokens = self.tokens[p]
            star = next((k for k, t in enumerate(tokens) if t.kind == STAR), len(tokens))
            shift = len(text) - len(tokens)  # positions after the star move by the star's run
            used = tuple(
                (j, text[j], t.char)
                for k, t in enumerate(tokens)
                if t.kind == LIT and text[j := (k if k < star else k + shift)] != t.char
            )
            hits.append((r, p, Comparison("partial", 0, used, ())))
        return hits
