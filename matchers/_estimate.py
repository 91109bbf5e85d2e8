"""What a policy will cost before it goes live: its hit rate on ordinary traffic.

A policy's false-alert rate depends on the size of the list far more than on intuition:
ARCHITECTURE measured that one allowed difference hits a third of innocent plates against a
million entries, but 0.5 % against ten thousand. So before a policy is activated, the operator
is shown the share of traffic it would alert on, estimated by matching a sample of plates
against the list alone with the real index (:func:`estimate_hit_rate`). The sample is the
agency's own stored reads when there are some; otherwise :func:`simulate_plates` makes
plausible traffic in common US formats (digits and letters in fixed positions, the letters I, O
and Q left out as most states do), which is what the simulated figures in ARCHITECTURE used.

Both functions are pure and deterministic (a seed, no clock, no I/O); the CLI owns the reading
of stored plates, the read rate and the refusal threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matchers._index import HotlistIndex, _Compiled
from matchers._model import Hotlist
from matchers._text import MatchersError, OcrClasses

__all__ = ["US_FORMATS", "estimate_hit_rate", "simulate_plates"]

#: (format, share): ``D`` a digit, ``L`` a letter; 7ABC123, ABC1234, 123ABC...
US_FORMATS: tuple[tuple[str, float], ...] = (
    ("DLLLDDD", 0.40),
    ("LLLDDDD", 0.25),
    ("DDDLLL", 0.12),
    ("LLLDDD", 0.10),
    ("DLLDDDD", 0.08),
    ("LLDDDDD", 0.05),
)
_LETTERS = np.frombuffer(b"ABCDEFGHJKLMNPRSTUVWXYZ", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_BATCH = 10_000


def simulate_plates(
    count: int, seed: int = 0, formats: Sequence[tuple[str, float]] = US_FORMATS
) -> list[str]:
    """``count`` random plates drawn from ``formats`` (weights need not sum to 1).

    Same seed, same plates. Duplicates are possible, as in real traffic. Raises
    :class:`MatchersError` for a format with characters other than ``D``/``L`` or a format
    longer than a plate.
    """
    if count <= 0:
        return []
    for fmt, _ in formats:
        if not fmt or set(fmt) - {"D", "L"} or len(fmt) > 10:
            message = f"plate format {fmt!r}: use 1-10 of D (digit) and L (letter)"
            raise MatchersError(message)
    rng = np.random.default_rng(seed)
    weights = np.array([w for _, w in formats], dtype=float)
    picks = rng.choice(len(formats), size=count, p=weights / weights.sum())
    out: list[str] = [""] * count
    for f, (fmt, _) in enumerate(formats):
        rows = np.flatnonzero(picks == f)
        cols = [
            (_LETTERS if c == "L" else _DIGITS)[
                rng.integers(0, _LETTERS.size if c == "L" else _DIGITS.size, rows.size)
            ]
            for c in fmt
        ]
        text = np.ascontiguousarray(np.stack(cols, axis=1)).view(f"S{len(fmt)}").ravel()
        for row, plate in zip(rows.tolist(), text.astype(str).tolist(), strict=True):
            out[row] = plate
    return out


def estimate_hit_rate(
    hotlist: Hotlist, sample_plates: Sequence[str], ocr: OcrClasses | None = None
) -> float:
    """The share of ``sample_plates`` (normalised) that would alert on ``hotlist``.

    The list is matched alone, with its own policy. Entries count as live whatever their
    window and the sample carries no state or alternates, so the figure is the policy's cost on
    ordinary traffic. Multiply by the read rate for alerts per hour. 0.0 for an empty sample.
    """
    if not sample_plates:
        return 0.0
    ocr = ocr if ocr is not None else OcrClasses()
    compiled = _Compiled(hotlist, ocr)
    compiled.live_from = compiled.live_until = None  # windows do not enter the estimate
    index = HotlistIndex({hotlist.name: compiled}, ocr)
    hits = 0
    for lo in range(0, len(sample_plates), _BATCH):
        part = sample_plates[lo : lo + _BATCH]
        found = index.match_batch(part, [None] * len(part), [0] * len(part), max_per_read=1)
        hits += sum(1 for f in found if f)
    return hits / len(sample_plates)
