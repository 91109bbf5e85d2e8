"""The canonical read: validation and normalisation of one camera read (ARCHITECTURE "Read").

Pure functions, shared by the HTTP ingest (``api/``) and the flow (``dataflow/``) so a read is
judged the same way at both doors. A read that fails becomes a :class:`ReadError` naming the
field and the fix; :func:`validate_reads` turns a batch into (accepted, rejected) without
raising, because bad records are routed, not raised.

The canonical form holds ``ts`` as integer epoch milliseconds (UTC), ``plate`` normalised
(upper-case A-Z0-9, 2-10 characters) beside ``plate_raw`` as the camera sent it, and every
optional field present (``None`` or ``[]`` when absent), so downstream code never probes keys.
``token_id`` is the id of the ingest token that posted the read: the HTTP ingest sets it
(whatever the camera sent), and a read passing through again (the flow) keeps it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from matchers._text import MatchersError, normalise_plate

__all__ = [
    "MAX_PLATE_LEN",
    "MAX_TEXT",
    "MIN_PLATE_LEN",
    "READ_FIELDS",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "ReadError",
    "derive_read_id",
    "normalise_plate",
    "parse_ts",
    "validate_read",
    "validate_reads",
]

MIN_PLATE_LEN = 2
#: The fields of a canonical read, in the order :func:`validate_read` returns them.
READ_FIELDS = (
    "read_id",
    "camera_id",
    "plate",
    "plate_raw",
    "ts",
    "confidence",
    "state",
    "lat",
    "lon",
    "candidates",
    "agency",
    "image_ref",
    "token_id",
)
MAX_PLATE_LEN = 10
TS_MIN_MS = 946_684_800_000  # 2000-01-01: older is a camera clock fault
TS_MAX_MS = 4_102_444_800_000  # 2100-01-01
_STATE = re.compile(r"^[A-Z]{2}$")
MAX_TEXT = 256


class ReadError(MatchersError):
    """A read is malformed. ``field`` names the offending field; the message says the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = f"{field}: {message}"


def derive_read_id(camera_id: str, ts_ms: int, plate: str) -> str:
    """A deterministic id for a read that came without one: the same read gets the same id on
    every replay, so alert ids (derived from it) and Parquet rows stay stable."""
    digest = hashlib.blake2b(f"{camera_id}\x1f{ts_ms}\x1f{plate}".encode(), digest_size=12)
    return "r-" + digest.hexdigest()


def parse_ts(value: Any, field: str = "ts") -> int:
    """RFC 3339 text (with an offset) or epoch milliseconds -> epoch milliseconds (UTC)."""
    if isinstance(value, bool):
        raise ReadError(field, "expected epoch milliseconds or RFC 3339 text, got a boolean")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ReadError(field, "must be a finite number of epoch milliseconds")
        ms = int(value)
        if 0 < ms < 100_000_000_000:
            raise ReadError(
                field, f"{value} looks like epoch seconds; send epoch milliseconds (x1000)"
            )
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            msg = f"{value!r} is not RFC 3339 (e.g. 2026-11-28T12:00:00Z) nor epoch milliseconds"
            raise ReadError(field, msg) from exc
        if parsed.tzinfo is None:
            raise ReadError(field, f"{value!r} has no UTC offset; append Z or +hh:mm")
        ms = int(parsed.timestamp() * 1000)
    else:
        raise ReadError(field, "is required: epoch milliseconds or RFC 3339 text")
    if not TS_MIN_MS <= ms <= TS_MAX_MS:
        raise ReadError(field, f"{value!r} is outside 2000-01-01..2100-01-01; check the clock")
    return ms


def _text(obj: Mapping[str, Any], field: str, required: bool) -> str | None:
    value = obj.get(field)
    if value is None or value == "":
        if required:
            raise ReadError(field, "is required (a non-empty string)")
        return None
    if not isinstance(value, str):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        else:
            raise ReadError(field, f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise ReadError(field, f"is longer than {MAX_TEXT} characters")
    return value


def _confidence(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReadError(field, "is required: a number from 0 to 1")
    conf = float(value)
    if not 0.0 <= conf <= 1.0:  # NaN fails too
        raise ReadError(field, f"{value!r} is outside 0..1 (percentages must be divided by 100)")
    return conf


def _plate(value: Any, field: str) -> tuple[str, str]:
    if not isinstance(value, str):
        raise ReadError(field, "is required: the plate text as a string")
    plate = normalise_plate(value)
    if not MIN_PLATE_LEN <= len(plate) <= MAX_PLATE_LEN:
        msg = (
            f"{value!r} normalises to {plate!r}: {MIN_PLATE_LEN}-{MAX_PLATE_LEN} letters/digits "
            "are required"
        )
        raise ReadError(field, msg)
    return plate, value


def _coordinate(value: Any, field: str, limit: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReadError(field, f"must be a number in degrees, got {type(value).__name__}")
    coord = float(value)
    if not -limit <= coord <= limit:
        raise ReadError(field, f"{value!r} is outside -{limit:g}..{limit:g} degrees")
    return coord


def _canonical(
    read_id: str,
    camera_id: str,
    plate: str,
    plate_raw: str,
    ts: int,
    confidence: float,
    state: str | None,
    lat: float | None,
    lon: float | None,
    candidates: list[dict[str, Any]],
    agency: str | None,
    image_ref: str | None,
    token_id: str | None,
) -> dict[str, Any]:
    """The canonical read: every field present, in one order (positional: this is per read)."""
    return {
        "read_id": read_id,
        "camera_id": camera_id,
        "plate": plate,
        "plate_raw": plate_raw,
        "ts": ts,
        "confidence": confidence,
        "state": state,
        "lat": lat,
        "lon": lon,
        "candidates": candidates,
        "agency": agency,
        "image_ref": image_ref,
        "token_id": token_id,
    }


def _fast_row(obj: dict[str, Any]) -> tuple[Any, ...] | None:
    """The common case in one function without calls per field: a dict whose fields all have
    their usual types and values, as the canonical read's values in :data:`READ_FIELDS` order.
    Returns None whenever anything is unusual, and the careful path then accepts it or names
    what is wrong. Worth it: this runs once per read. Fields beyond the read's are ignored
    here as there (a property test holds the two paths together)."""
    camera_id = obj.get("camera_id")
    plate_raw = obj.get("plate")
    ts = obj.get("ts")
    conf = obj.get("confidence")
    if (
        type(camera_id) is not str
        or not 0 < len(camera_id) <= MAX_TEXT
        or type(plate_raw) is not str
        or type(ts) is not int
        or not TS_MIN_MS <= ts <= TS_MAX_MS
        or type(conf) is not float
        or not 0.0 <= conf <= 1.0
    ):
        return None
    plate = plate_raw if plate_raw.isalnum() and plate_raw.isascii() else normalise_plate(plate_raw)
    if not plate.isupper() and not plate.isdigit():
        plate = plate.upper()
    if not MIN_PLATE_LEN <= len(plate) <= MAX_PLATE_LEN:
        return None
    state = obj.get("state")
    if state is not None and (
        type(state) is not str or len(state) != 2 or not state.isalpha() or not state.isascii()
    ):
        return None
    lat = obj.get("lat")
    lon = obj.get("lon")
    if lat is not None or lon is not None:
        if type(lat) is not float or type(lon) is not float:
            return None
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return None
    read_id = obj.get("read_id")
    if read_id is None:
        read_id = derive_read_id(camera_id, ts, plate)
    elif type(read_id) is not str or not 0 < len(read_id) <= MAX_TEXT:
        return None
    agency = obj.get("agency")
    if agency is not None and (type(agency) is not str or len(agency) > MAX_TEXT):
        return None
    image_ref = obj.get("image_ref")
    if image_ref is not None and (type(image_ref) is not str or len(image_ref) > MAX_TEXT):
        return None
    cands = obj.get("candidates")
    if cands is not None and (type(cands) is not list or cands):
        return None  # alternates need the careful path's per-candidate checks
    raw = obj.get("plate_raw")
    if raw is not None:  # a canonical read passing through again keeps what the camera sent
        if type(raw) is not str or len(raw) > MAX_TEXT:
            return None
        plate_raw = raw
    token_id = obj.get("token_id")
    if token_id is not None and (type(token_id) is not str or len(token_id) > MAX_TEXT):
        return None
    state = state.upper() if state is not None else None
    return (
        read_id, camera_id, plate, plate_raw, ts, conf, state, lat, lon, (), agency or None,
        image_ref or None, token_id or None,
    )  # fmt: skip


def validate_read(obj: Any) -> dict[str, Any]:
    """Validate and normalise one read; raise :class:`ReadError` naming the field."""
    if type(obj) is dict:
        row = _fast_row(obj)
        if row is not None:
            read = dict(zip(READ_FIELDS, row, strict=True))
            read["candidates"] = []
            return read
    return _careful_read(obj)


def validate_row(obj: Any) -> tuple[Any, ...]:
    """:func:`validate_read`'s read as its values in :data:`READ_FIELDS` order: the flow's
    form, which builds no dict per read (columns are made of the rows). ``candidates`` is a
    tuple here: a row of plain values holds nothing the garbage collector must track (it
    untracks such tuples), and a batch holds tens of thousands of rows."""
    if type(obj) is dict:
        row = _fast_row(obj)
        if row is not None:
            return row
    read = _careful_read(obj)
    read["candidates"] = tuple(read["candidates"])
    return tuple(read.values())


def _careful_read(obj: Any) -> dict[str, Any]:
    """Every check one at a time, naming the first field that fails."""
    if not isinstance(obj, Mapping):
        raise ReadError("read", f"must be a JSON object, got {type(obj).__name__}")
    camera_id = _text(obj, "camera_id", required=True)
    assert camera_id is not None
    plate, plate_raw = _plate(obj.get("plate"), "plate")
    raw = obj.get("plate_raw")
    if raw is not None:  # a canonical read passing through again keeps what the camera sent
        if not isinstance(raw, str) or len(raw) > MAX_TEXT:
            raise ReadError("plate_raw", f"must be text of at most {MAX_TEXT} characters")
        plate_raw = raw
    ts = parse_ts(obj.get("ts"))
    confidence = _confidence(obj.get("confidence"), "confidence")
    state = obj.get("state")
    if state is not None and state != "":
        if not isinstance(state, str) or not _STATE.match(state.strip().upper()):
            raise ReadError("state", f"{state!r} is not a two-letter state or province code")
        state = state.strip().upper()
    else:
        state = None
    lat = _coordinate(obj.get("lat"), "lat", 90.0)
    lon = _coordinate(obj.get("lon"), "lon", 180.0)
    if (lat is None) != (lon is None):
        raise ReadError("lat" if lat is None else "lon", "lat and lon come together or not at all")
    candidates: list[dict[str, Any]] = []
    raw_candidates = obj.get("candidates")
    if raw_candidates is not None:
        if not isinstance(raw_candidates, list):
            raise ReadError("candidates", "must be a list of {plate, confidence}")
        for i, cand in enumerate(raw_candidates[:20]):
            where = f"candidates[{i}]"
            if not isinstance(cand, Mapping):
                raise ReadError(where, "must be an object {plate, confidence}")
            cplate, _ = _plate(cand.get("plate"), where + ".plate")
            cconf = _confidence(cand.get("confidence"), where + ".confidence")
            if cplate != plate:
                candidates.append({"plate": cplate, "confidence": cconf})
    read_id = _text(obj, "read_id", required=False) or derive_read_id(camera_id, ts, plate)
    return _canonical(
        read_id, camera_id, plate, plate_raw, ts, confidence, state, lat, lon, candidates,
        _text(obj, "agency", required=False), _text(obj, "image_ref", required=False),
        _text(obj, "token_id", required=False),
    )  # fmt: skip


def validate_reads(
    objs: Iterable[Any],
) -> tuple[list[dict[str, Any]], list[tuple[int, Any, str]]]:
    """Split a batch into canonical reads and ``(index, raw object, reason)`` rejections."""
    ok: list[dict[str, Any]] = []
    bad: list[tuple[int, Any, str]] = []
    for i, obj in enumerate(objs):
        try:
            ok.append(validate_read(obj))
        except ReadError as exc:
            bad.append((i, obj, exc.reason))
    return ok, bad
