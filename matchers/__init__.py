"""Hotlist matching: plate normalisation, OCR classes, policies, the index and patterns.

Pure code (numpy, rapidfuzz and shapely only; no I/O, no Redis, no Bytewax). The contract is
ARCHITECTURE.md "Matching semantics"; :func:`compare` is its literal, one-pair implementation
and :class:`HotlistIndex` the batch engine that must agree with it on every read.
:func:`compile_glob` is the one glob compiler (the store's partial search scans with it) and
:func:`build_alert` turns a match into the alert of ARCHITECTURE "Alert", for the flow and for
past-read matching alike.

Typical use::

    index = HotlistIndex.build(hotlists, OcrClasses())
    hits = index.match_batch(plates, states, ts_ms, candidates, max_per_read=3)
    index = index.with_hotlist(changed)  # built beside the old one; swap the reference
"""

from matchers._alerts import VERIFY_ADVISORY, GeofenceError, Geofences, alert_id, build_alert
from matchers._compare import Comparison, compare
from matchers._estimate import US_FORMATS, estimate_hit_rate, simulate_plates
from matchers._glob import (
    MIN_KNOWN_CHARACTERS,
    Glob,
    compile_glob,
    is_pattern,
    normalise_entry_plate,
    parse_pattern,
    require_known_characters,
    validate_pattern,
)
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
from matchers._variants import MAX_VARIANTS, check_plate, plate_variants
from matchers.reads import ReadError, derive_read_id, parse_ts, validate_read, validate_reads

__all__ = [
    "DEFAULT_OCR_CLASSES",
    "MAX_PLATE_LENGTH",
    "MAX_VARIANTS",
    "MIN_KNOWN_CHARACTERS",
    "US_FORMATS",
    "VERIFY_ADVISORY",
    "Comparison",
    "Entry",
    "EntryError",
    "GeofenceError",
    "Geofences",
    "Glob",
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
    "alert_id",
    "build_alert",
    "check_plate",
    "compare",
    "compile_glob",
    "derive_read_id",
    "estimate_hit_rate",
    "is_pattern",
    "normalise_entry_plate",
    "normalise_plate",
    "parse_pattern",
    "parse_ts",
    "plate_variants",
    "require_known_characters",
    "simulate_plates",
    "validate_pattern",
    "validate_read",
    "validate_reads",
]
