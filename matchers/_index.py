"""HotlistIndex: every hotlist compiled into flat arrays, matched a batch of reads at a time.

Each hotlist is compiled on its own (:class:`_Compiled`): a :class:`PlateIndex` for its plates,
a :class:`PatternIndex` for its patterns, and per-entry arrays for the state and the time window.
An index is an immutable mapping of compiled lists, so :meth:`HotlistIndex.with_hotlist` builds
only the changed list, beside the live index, and returns a new index that shares the others:
the caller swaps one reference and matching never waits for a build.

``match_batch`` turns the batch into code arrays once (:class:`ReadBatch`), and for each list:

1. probes its structures with the batch's keys, giving candidate ``(read, entry)`` pairs;
2. drops, vectorised, pairs whose entry is outside its window at the read's time or whose state
   disagrees under ``state = require`` (prefer flags the mismatch instead);
3. verifies the remaining pairs exactly (see :mod:`matchers._plates` and
   :mod:`matchers._patterns`);
4. with ``candidates`` on, repeats 1-3 for the reads' alternate plates, with no difference
   allowed and plates only (a pattern hit is ``partial``, neither exact nor OCR).

Per read, each entry keeps its best match (the read's own plate wins a tie with an alternate);
matches are sorted by :attr:`Match.rank_key` and cut to ``max_per_read``. Python objects are
made only for hits, so the cost per read is a few array operations shared by the whole batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from matchers._glob import is_pattern
from matchers._model import Hotlist, Match
from matchers._patterns import PatternIndex
from matchers._plates import PlateIndex, ReadBatch
from matchers._text import (
    MAX_PLATE_LENGTH,
    MatchersError,
    OcrClasses,
    encode_plates,
    normalise_plate,
)

__all__ = ["HotlistIndex"]

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
_NEVER = np.iinfo(np.int64).max
_ALWAYS = np.iinfo(np.int64).min


class _Compiled:
    """One hotlist's structures; immutable once built."""

    def __init__(self, hotlist: Hotlist, ocr: OcrClasses) -> None:
        self.hotlist = hotlist
        self.policy = policy = hotlist.policy
        entries = hotlist.entries
        texts = [e.plate for e in entries]
        pattern_rows = [i for i, t in enumerate(texts) if is_pattern(t)]
        if pattern_rows:
            is_pat = np.zeros(len(texts), dtype=bool)
            is_pat[pattern_rows] = True
            plate_ids = np.flatnonzero(~is_pat).astype(np.int32)
            plates = [texts[i] for i in plate_ids.tolist()]
        else:
            plate_ids = np.arange(len(texts), dtype=np.int32)
            plates = texts
        raw, lengths = encode_plates(plates, what=f"hotlist {hotlist.name!r} plate")
        self.plates = (
            PlateIndex(
                plates,
                raw,
                lengths,
                plate_ids,
                policy.differences,
                policy.ocr_equivalents,
                policy.min_fuzzy_length,
                ocr,
            )
            if plates
            else None
        )
        self.patterns = (
            PatternIndex(
                [texts[i] for i in pattern_rows],
                np.array(pattern_rows, dtype=np.int32),
                policy.ocr_equivalents,
                ocr,
            )
            if pattern_rows
            else None
        )
        self.state_codes: dict[str, int] = {}
        self.entry_state: I32 | None = None
        if policy.state != "ignore":
            codes = [
                self.state_codes.setdefault(e.state, len(self.state_codes) + 1) if e.state else 0
                for e in entries
            ]
            if self.state_codes:
                self.entry_state = np.array(codes, dtype=np.int32)
        self.live_from: I64 | None = None
        self.live_until: I64 | None = None
        starts = [e.effective_from_ms for e in entries]
        ends = [e.expires_at_ms for e in entries]
        if any(s is not None for s in starts) or any(e is not None for e in ends):
            self.live_from = np.array([_ALWAYS if s is None else s for s in starts], np.int64)
            self.live_until = np.array([_NEVER if e is None else e for e in ends], np.int64)

    @property
    def nbytes(self) -> int:
        total = self.plates.nbytes if self.plates else 0
        total += self.patterns.nbytes if self.patterns else 0
        for arr in (self.entry_state, self.live_from, self.live_until):
            total += arr.nbytes if arr is not None else 0
        return total

    def admissible(
        self, reads: I64, entries: I32, ts: I64, state_of: I32 | None
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(keep, state mismatch) for candidate pairs, by window and state policy."""
        keep = np.ones(reads.size, dtype=bool)
        if self.live_from is not None and self.live_until is not None:
            t = ts[reads]
            keep &= (self.live_from[entries] <= t) & (t < self.live_until[entries])
        mismatch = np.zeros(reads.size, dtype=bool)
        if self.entry_state is not None and state_of is not None:
            es, rs = self.entry_state[entries], state_of[reads]
            mismatch = (es != 0) & (rs != 0) & (es != rs)
            if self.policy.state == "require":
                keep &= ~mismatch
        return keep, mismatch

    def match(self, ctx: _Context) -> None:
        """Append this list's matches of the batch to ``ctx.out``."""
        state_of = None
        if self.entry_state is not None:
            codes = self.state_codes
            state_of = np.array([codes.get(s, -1) if s else 0 for s in ctx.states], dtype=np.int32)
        if self.plates is not None:
            rows, prow = self.plates.candidates(ctx.reads, self.policy.differences)
            self._emit(ctx, ctx.reads, rows, prow, self.plates, state_of, via=False)
            if ctx.alts is not None and self.policy.candidates and len(ctx.alts):
                rows, prow = self.plates.candidates(ctx.alts, 0)
                self._emit(ctx, ctx.alts, rows, prow, self.plates, state_of, via=True)
        if self.patterns is not None:
            rows, prow = self.patterns.candidates(ctx.reads)
            self._emit(ctx, ctx.reads, rows, prow, self.patterns, state_of, via=False)

    def _emit(
        self,
        ctx: _Context,
        batch: ReadBatch,
        rows: I64,
        prow: I32,
        where: PlateIndex | PatternIndex,
        state_of: I32 | None,
        *,
        via: bool,
    ) -> None:
        if not rows.size:
            return
        owners = batch.owner[rows]
        keep, mismatch = self.admissible(owners, where.ids[prow], ctx.ts, state_of)
        rows, prow = rows[keep], prow[keep]
        flagged: set[tuple[int, int]] = set()
        if self.policy.state == "prefer":
            bad = mismatch[keep]
            flagged = set(zip(rows[bad].tolist(), prow[bad].tolist(), strict=True))
        if isinstance(where, PlateIndex):
            hits = where.verify(batch, rows, prow, allow_differences=not via)
        else:
            hits = where.verify(batch, rows, prow)
        entries, owner, ids = self.hotlist.entries, batch.owner, where.ids
        for r, p, c in hits:
            read = int(owner[r])
            ctx.touched.add(read)
            ctx.out[read].append(
                Match(
                    self.hotlist,
                    entries[int(ids[p])],
                    c.kind,
                    c.differences,
                    c.substitutions,
                    c.edits,
                    batch.plates[r],
                    via,
                    (r, p) in flagged,
                )
            )


class _Context:
    """One ``match_batch`` call: the encoded batch, and the matches found so far."""

    def __init__(
        self, reads: ReadBatch, alts: ReadBatch | None, ts: I64, states: Sequence[str | None]
    ) -> None:
        self.reads = reads
        self.alts = alts
        self.ts = ts
        self._raw_states = states
        self.out: list[list[Match]] = [[] for _ in range(len(reads))]
        self.touched: set[int] = set()  # reads with at least one match

    @cached_property
    def states(self) -> list[str | None]:
        """The read states upper-cased, blank as None (only computed if a list needs them)."""
        return [(s.strip().upper() or None) if s else None for s in self._raw_states]


class HotlistIndex:
    """All live hotlists, compiled for batch matching. Immutable; see the module docstring.

    Build with :meth:`build`; change with :meth:`with_hotlist` / :meth:`without_hotlist`, which
    return a new index and leave this one untouched (and usable) while they build.
    """

    __slots__ = ("_compiled", "_ocr", "_size")

    def __init__(self, compiled: Mapping[str, _Compiled], ocr: OcrClasses) -> None:
        self._compiled = dict(compiled)
        self._ocr = ocr
        self._size = sum(len(c.hotlist.entries) for c in self._compiled.values())

    @classmethod
    def build(cls, hotlists: Iterable[Hotlist], ocr: OcrClasses | None = None) -> HotlistIndex:
        """Compile ``hotlists`` (unique names) with ``ocr`` classes (the defaults if None).

        Raises :class:`MatchersError` for a repeated name or an entry plate the index cannot
        hold; :class:`PatternError` for a bad pattern.
        """
        ocr = ocr if ocr is not None else OcrClasses()
        compiled: dict[str, _Compiled] = {}
        for hotlist in hotlists:
            if hotlist.name in compiled:
                message = f"hotlist {hotlist.name!r} given twice; hotlist names must be unique"
                raise MatchersError(message)
            compiled[hotlist.name] = _compile(hotlist, ocr)
        return cls(compiled, ocr)

    @property
    def hotlists(self) -> Mapping[str, Hotlist]:
        """The indexed hotlists by name (read-only)."""
        return MappingProxyType({name: c.hotlist for name, c in self._compiled.items()})

    @property
    def ocr(self) -> OcrClasses:
        """The OCR classes every list of this index is compiled with."""
        return self._ocr

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays (not the Hotlist and Entry objects)."""
        return sum(c.nbytes for c in self._compiled.values())

    def __len__(self) -> int:
        """Total entries (plates and patterns) over all lists."""
        return self._size

    def with_hotlist(self, hotlist: Hotlist) -> HotlistIndex:
        """A new index where ``hotlist`` replaces the list of that name (or is added)."""
        compiled = dict(self._compiled)
        compiled[hotlist.name] = _compile(hotlist, self._ocr)
        return HotlistIndex(compiled, self._ocr)

    def without_hotlist(self, name: str) -> HotlistIndex:
        """A new index without list ``name`` (the same lists if it is not there)."""
        compiled = {n: c for n, c in self._compiled.items() if n != name}
        return HotlistIndex(compiled, self._ocr)

    def match_batch(
        self,
        plates: Sequence[str],
        states: Sequence[str | None],
        ts_ms: Sequence[int],
        candidates: Sequence[Sequence[str]] | None = None,
        max_per_read: int = 3,
    ) -> list[list[Match]]:
        """Match a batch of reads against every list.

        :arg plates: normalised plates (``A-Z0-9``, at most 10 characters).
        :arg states: each read's state or ``None``; compared case-insensitively.
        :arg ts_ms: each read's time (epoch ms), for the entries' windows.
        :arg candidates: each read's alternate plates (normalised here; empty, over-long and
            repeated ones are skipped), used by lists whose policy has ``candidates``.
        :returns: per read, its matches best first, at most ``max_per_read``.
        :raises MatchersError: the sequences differ in length or a plate is not normalised.
        """
        count = len(plates)
        if (
            len(states) != count
            or len(ts_ms) != count
            or (candidates is not None and len(candidates) != count)
        ):
            message = (
                f"match_batch: plates ({count}), states ({len(states)}), ts_ms ({len(ts_ms)})"
                + (f", candidates ({len(candidates)})" if candidates is not None else "")
                + " must have the same length"
            )
            raise MatchersError(message)
        if count == 0 or not self._compiled:
            if count:
                encode_plates(plates, what="read plate")
            return [[] for _ in range(count)]
        plate_list = list(plates)
        raw, lengths = encode_plates(plate_list, what="read plate")
        reads = ReadBatch(plate_list, raw, lengths, np.arange(count, dtype=np.int64), self._ocr)
        ts = np.fromiter(ts_ms, dtype=np.int64, count=count)
        alts = None
        if candidates is not None and any(c.policy.candidates for c in self._compiled.values()):
            alts = _alternates(plate_list, candidates, self._ocr)
        ctx = _Context(reads, alts, ts, states)
        for compiled in self._compiled.values():
            compiled.match(ctx)
        out = ctx.out
        for i in ctx.touched:
            if len(out[i]) > 1 or max_per_read < 1:
                out[i] = _rank(out[i], max_per_read)
        return out


def _compile(hotlist: Hotlist, ocr: OcrClasses) -> _Compiled:
    started = time.perf_counter()
    compiled = _Compiled(hotlist, ocr)
    log.debug(
        "compiled hotlist %r v%d: %d entries, %.1f MB of arrays in %.2f s",
        hotlist.name,
        hotlist.version,
        len(hotlist.entries),
        compiled.nbytes / 2**20,
        time.perf_counter() - started,
    )
    return compiled


def _alternates(
    plates: list[str], candidates: Sequence[Sequence[str]], ocr: OcrClasses
) -> ReadBatch:
    texts: list[str] = []
    owner: list[int] = []
    for i, alts in enumerate(candidates):
        seen = {plates[i]}
        for alt in alts:
            text = _normalised(alt)
            if text and len(text) <= MAX_PLATE_LENGTH and text not in seen:
                seen.add(text)
                texts.append(text)
                owner.append(i)
    raw, lengths = encode_plates(texts, what="candidate plate")
    return ReadBatch(texts, raw, lengths, np.array(owner, dtype=np.int64), ocr)


def _normalised(text: str) -> str:
    """normalise_plate, skipping the regex for text that is already normalised."""
    if text.isascii() and text.isalnum() and (text.isupper() or text.isdigit()):
        return text
    return normalise_plate(text)


def _rank(found: list[Match], top: int) -> list[Match]:
    best: dict[tuple[str, str, int], Match] = {}
    for m in found:
        key = (m.hotlist.name, m.entry.entry_id, id(m.entry))
        held = best.get(key)
        if held is None or m.rank_key < held.rank_key:
            best[key] = m
    return sorted(best.values(), key=lambda m: m.rank_key)[: max(top, 0)]
