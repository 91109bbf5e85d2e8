"""Hotlist matching: plate normalisation, OCR classes, policies, the index and patterns.

Pure code (numpy and rapidfuzz only; no I/O, no Redis, no Bytewax). The contract is
ARCHITECTURE.md "Matching semantics"; :func:`compare` is its literal, one-pair implementation
and :class:`HotlistIndex` the batch engine that must agree with it on every read.

Typical use::

    index = HotlistIndex.build(hotlists, OcrClasses())
    hits = index.match_batch(plates, states, ts_ms, candidates, max_per_read=3)
    index = index.with_hotlist(changed)  # built beside the old one; swap the reference
"""

from matchers._compare import Comparison, compare
from matchers._estimate import US_FORMATS, estimate_hit_rate, simulate_plates
from matchers._glob import is_pattern, normalise_entry_plate, parse_pattern, validate_pattern
from matchers._index import HotlistIndex
from matchers._model import Entry, Hotlist, Kind, Match, Policy, StateMode
from matchers._text import (
    DEFAULT_OCR_CLASSES,
    MAX_PLATE_LENGTH,
    EntryError,
    MatchersError,
    OcrClassError,
    OcrClasses,
    PatternError,
    PolicyError,
    normalise_plate,
)
from matchers.reads import ReadError, derive_read_id, parse_ts, validate_read, validate_reads

__all__ = [
    "DEFAULT_OCR_CLASSES",
    "MAX_PLATE_LENGTH",
    "US_FORMATS",
    "Comparison",
    "Entry",
    "EntryError",
    "Hotlist",
    "HotlistIndex",
    "Kind",
    "Match",
    "MatchersError",
    "OcrClassError",
    "OcrClasses",
    "PatternError",
    "Policy",
    "PolicyError",
    "ReadError",
    "StateMode",
    "compare",
    "derive_read_id",
    "estimate_hit_rate",
    "is_pattern",
    "normalise_entry_plate",
    "normalise_plate",
    "parse_pattern",
    "parse_ts",
    "simulate_plates",
    "validate_pattern",
    "validate_read",
    "validate_reads",
]

