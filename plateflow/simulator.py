"""Simulated camera traffic: realistic enough to exercise matching, cooldowns and storage.

- Cameras sit at fixed points around a city (plus a few on a highway through a tribal-land
  geofence of the sample set), each with an id like ``cam-017``.
- Vehicles come from a fixed population of plates in US formats by state (California-heavy,
  with neighbouring and far states); a Zipf-like visit frequency makes commuters reappear, so
  repeat hits and cooldowns happen as on a real network.
- Confidence follows a Beta(9, 1.3) distribution (most reads 0.8-0.99, a long tail below).
- OCR errors at realistic rates: ~4% of reads swap a character for a confusable one
  (0/O/D/Q, 1/I, 2/Z, 5/S, 8/B, 6/G), ~1% drop a character, ~0.5% add one; an erroneous read
  usually carries the true plate among its alternate candidates.
- A configurable share of reads are of hotlisted plates (``hot_plates``), and a small share are
  malformed (no plate, bad confidence) so the dead-letter path is exercised.

Generation is vectorised with numpy for the plates and costs about 2 us per read, so it can
feed the benchmarks at well over 100,000 reads/s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_LETTERS = np.frombuffer(b"ABCDEFGHJKLMNPRSTUVWXYZ", dtype=np.uint8)  # no I, O, Q
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)

#: State -> (share of traffic, format). L letter, D digit.
STATE_FORMATS: dict[str, tuple[float, str]] = {
    "CA": (0.72, "DLLLDDD"),
    "NV": (0.05, "DDDLDD"),
    "AZ": (0.04, "LLLDDDD"),
    "OR": (0.04, "DDDLLL"),
    "TX": (0.04, "LLLDDDD"),
    "WA": (0.03, "LLLDDDD"),
    "NY": (0.02, "LLLDDDD"),
    "FL": (0.02, "LLLLDD"),
    "MA": (0.02, "DLLLDD"),
    "NJ": (0.02, "LDDLLL"),
}

_CONFUSABLE = {
    "0": "ODQ", "O": "0DQ", "D": "0OQ", "Q": "0OD", "1": "I", "I": "1", "2": "Z", "Z": "2",
    "5": "S", "S": "5", "8": "B", "B": "8", "6": "G", "G": "6",
}  # fmt: skip


def random_plates(rng: np.random.Generator, n: int, fmt: str) -> list[str]:
    """``n`` random plates in a format such as ``DLLLDDD`` (vectorised)."""
    cols = []
    for ch in fmt:
        pool = _LETTERS if ch == "L" else _DIGITS
        cols.append(pool[rng.integers(0, len(pool), n)])
    arr = np.stack(cols, axis=1).astype(np.uint8)
    return arr.view(f"S{len(fmt)}").ravel().astype(str).tolist()


def population(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    """``n`` distinct-ish plates with their states, by each state's share of traffic."""
    plates: list[str] = []
    states: list[str] = []
    for state, (share, fmt) in STATE_FORMATS.items():
        k = max(1, round(n * share))
        plates.extend(random_plates(rng, k, fmt))
        states.extend([state] * k)
    order = rng.permutation(len(plates))
    return [plates[i] for i in order][:n], [states[i] for i in order][:n]


@dataclass(frozen=True)
class Camera:
    camera_id: str
    lat: float
    lon: float
    agency: str


def cameras(n: int, rng: np.random.Generator, center: tuple[float, float]) -> list[Camera]:
    """``n`` cameras within ~15 km of ``center``; every tenth on the highway through the
    sample geofence east of the city."""
    out = []
    for i in range(n):
        if i % 10 == 9:
            lat = center[0] + 0.02 * (rng.random() - 0.5)
            lon = center[1] + 0.35 + 0.05 * rng.random()
        else:
            r = 0.14 * math.sqrt(rng.random())
            theta = 2 * math.pi * rng.random()
            lat, lon = center[0] + r * math.sin(theta), center[1] + r * math.cos(theta)
        out.append(Camera(f"cam-{i:03d}", round(lat, 6), round(lon, 6), "Demo County SO"))
    return out


class Simulator:
    """Endless camera traffic. :meth:`reads` returns the next ``n`` reads as JSON-ready dicts.

    :arg hot_plates: ``(plate, state)`` pairs on hotlists; ``hit_rate`` of reads are of them.
    :arg malformed_rate: share of reads deliberately broken (for the dead-letter path).
    """

    def __init__(
        self,
        *,
        n_cameras: int = 40,
        population_size: int = 200_000,
        hot_plates: Sequence[tuple[str, str | None]] = (),
        hit_rate: float = 0.002,
        ocr_error_rate: float = 0.055,
        malformed_rate: float = 0.0005,
        center: tuple[float, float] = (38.5816, -121.4944),
        seed: int = 7,
    ) -> None:
        self._rng = np.random.default_rng(seed)
        self.cameras = cameras(n_cameras, self._rng, center)
        self.plates, self.states = population(self._rng, population_size)
        self._hot = list(hot_plates)
        self._hit_rate = hit_rate if self._hot else 0.0
        self._ocr_error_rate = ocr_error_rate
        self._malformed_rate = malformed_rate
        # Zipf-like visit weights: a few plates pass cameras daily, most rarely.
        weights = 1.0 / np.arange(1, len(self.plates) + 1) ** 0.8
        self._cdf = np.cumsum(weights / weights.sum())
        self._seq = 0

    def reads(self, n: int, ts_ms: int | None = None) -> list[dict[str, Any]]:
        """The next ``n`` reads: stamped now, or ``ts_ms`` plus one millisecond per read."""
        rng = self._rng
        live = ts_ms is None
        base = int(time.time() * 1000) if ts_ms is None else ts_ms
        picks = np.searchsorted(self._cdf, rng.random(n))
        picks = np.minimum(picks, len(self.plates) - 1)
        cams = rng.integers(0, len(self.cameras), n)
        conf = rng.beta(9.0, 1.3, n)
        roll = rng.random((n, 3))
        out: list[dict[str, Any]] = []
        for i in range(n):
            if self._hit_rate and roll[i, 0] < self._hit_rate:
                plate, state = self._hot[int(rng.integers(0, len(self._hot)))]
            else:
                plate, state = self.plates[picks[i]], self.states[picks[i]]
            cam = self.cameras[cams[i]]
            self._seq += 1
            read: dict[str, Any] = {
                "read_id": f"sim-{self._seq:012d}",
                "camera_id": cam.camera_id,
                "plate": plate,
                "ts": base if live else base + i,
                "confidence": round(float(conf[i]), 3),
                "lat": cam.lat,
                "lon": cam.lon,
                "agency": cam.agency,
            }
            if state and roll[i, 2] < 0.8:  # many cameras do not read the state reliably
                read["state"] = state
            if roll[i, 1] < self._ocr_error_rate:
                self._misread(read, plate, float(conf[i]))
            if roll[i, 2] > 1 - self._malformed_rate:
                read = self._malform(read)
            out.append(read)
        return out

    def _misread(self, read: dict[str, Any], plate: str, conf: float) -> None:
        rng = self._rng
        kind = rng.random()
        pos = int(rng.integers(0, len(plate)))
        if kind < 0.73:  # confusable substitution
            alts = _CONFUSABLE.get(plate[pos])
            if not alts:
                return
            wrong = plate[:pos] + alts[int(rng.integers(0, len(alts)))] + plate[pos + 1 :]
        elif kind < 0.91:  # dropped character
            wrong = plate[:pos] + plate[pos + 1 :]
        else:  # extra character
            extra = chr(int(_LETTERS[int(rng.integers(0, len(_LETTERS)))]))
            wrong = plate[:pos] + extra + plate[pos:]
        read["plate"] = wrong
        read["confidence"] = round(conf * 0.8, 3)
        if rng.random() < 0.7:
            read["candidates"] = [{"plate": plate, "confidence": round(conf * 0.7, 3)}]

    def _malform(self, read: dict[str, Any]) -> dict[str, Any]:
        broken = dict(read)
        choice = int(self._rng.integers(0, 3))
        if choice == 0:
            broken.pop("plate")
        elif choice == 1:
            broken["confidence"] = 97  # a percentage where a fraction belongs
        else:
            broken["plate"] = "#"
        return broken

    def stream(self, rate: float, chunk: int = 100) -> Iterator[list[dict[str, Any]]]:
        """Chunks of reads paced to ``rate`` reads/s (``rate <= 0``: as fast as possible)."""
        started = time.monotonic()
        sent = 0
        while True:
            if rate > 0:
                due = started + sent / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            batch = self.reads(chunk)
            sent += len(batch)
            yield batch
