"""HotlistIndex (step 1: simple, correct; replaced by the array index)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from matchers._compare import Comparison, compare
from matchers._model import Entry, Hotlist, Match
from matchers._text import MatchersError, OcrClasses, encode_plates, normalise_plate

__all__ = ["HotlistIndex", "estimate_hit_rate"]


class _Compiled:
    def __init__(self, hotlist: Hotlist, ocr: OcrClasses) -> None:
        self.hotlist = hotlist
        self.by_canon: dict[str, list[Entry]] = {}
        self.others: list[Entry] = []
        for entry in hotlist.entries:
            if entry.is_pattern:
                self.others.append(entry)
            else:
                self.by_canon.setdefault(ocr.canonical(entry.plate), []).append(entry)
        if hotlist.policy.differences:
            self.others.extend(e for es in self.by_canon.values() for e in es)
            self.by_canon = {}


class HotlistIndex:
    """Step 1 index."""

    def __init__(self, compiled: Mapping[str, _Compiled], ocr: OcrClasses) -> None:
        self._compiled = dict(compiled)
        self._ocr = ocr
        self._size = sum(len(c.hotlist.entries) for c in self._compiled.values())

    @classmethod
    def build(cls, hotlists: Iterable[Hotlist], ocr: OcrClasses | None = None) -> HotlistIndex:
        ocr = ocr or OcrClasses()
        compiled: dict[str, _Compiled] = {}
        for hotlist in hotlists:
            if hotlist.name in compiled:
                raise MatchersError(f"hotlist {hotlist.name!r} given twice")
            compiled[hotlist.name] = _Compiled(hotlist, ocr)
        return cls(compiled, ocr)

    @property
    def hotlists(self) -> Mapping[str, Hotlist]:
        return MappingProxyType({n: c.hotlist for n, c in self._compiled.items()})

    @property
    def ocr(self) -> OcrClasses:
        return self._ocr

    def __len__(self) -> int:
        return self._size

    def with_hotlist(self, hotlist: Hotlist) -> HotlistIndex:
        compiled = dict(self._compiled)
        compiled[hotlist.name] = _Compiled(hotlist, self._ocr)
        return HotlistIndex(compiled, self._ocr)

    def without_hotlist(self, name: str) -> HotlistIndex:
        compiled = dict(self._compiled)
        compiled.pop(name, None)
        return HotlistIndex(compiled, self._ocr)

    def match_batch(
        self,
        plates: Sequence[str],
        states: Sequence[str | None],
        ts_ms: Sequence[int],
        candidates: Sequence[Sequence[str]] | None = None,
        max_per_read: int = 3,
    ) -> list[list[Match]]:
        if not len(plates) == len(states) == len(ts_ms):
            raise MatchersError("plates, states and ts_ms must have the same length")
        encode_plates(plates)
        results: list[list[Match]] = []
        for i, plate in enumerate(plates):
            state = (states[i] or "").strip().upper() or None
            found: dict[tuple[str, int], Match] = {}
            for c in self._compiled.values():
                texts = [(plate, False)]
                if c.hotlist.policy.candidates and candidates is not None:
                    for alt in candidates[i]:
                        alt = normalise_plate(alt)
                        if alt and alt != plate:
                            texts.append((alt, True))
                for text, via in texts:
                    pool = c.by_canon.get(self._ocr.canonical(text), []) + c.others
                    for entry in pool:
                        if not entry.live_at(int(ts_ms[i])):
                            continue
                        policy = c.hotlist.policy
                        if via:
                            if entry.is_pattern:
                                continue
                            policy = dataclasses.replace(policy, differences=0)
                        got: Comparison | None = compare(text, entry.plate, policy, self._ocr)
                        if got is None:
                            continue
                        mismatch = bool(state and entry.state and state != entry.state)
                        if mismatch and policy.state == "require":
                            continue
                        match = Match(
                            c.hotlist, entry, got.kind, got.differences, got.substitutions,
                            got.edits, text, via, mismatch and policy.state == "prefer",
                        )
                        key = (c.hotlist.name, id(entry))
                        if key not in found or match.rank_key < found[key].rank_key:
                            found[key] = match
            results.append(sorted(found.values(), key=lambda m: m.rank_key)[:max_per_read])
        return results


def estimate_hit_rate(
    hotlist: Hotlist, sample_plates: Sequence[str], ocr: OcrClasses | None = None
) -> float:
    if not sample_plates:
        return 0.0
    index = HotlistIndex.build([hotlist], ocr)
    hits = index.match_batch(sample_plates, [None] * len(sample_plates), [0] * len(sample_plates))
    return sum(1 for h in hits if h) / len(sample_plates)
