"""The common case of ``POST /v1/reads`` decoded and validated in one step (msgspec).

A camera batch is almost always a list of well-typed reads. For such a body, msgspec's C decoder
checks the types and ranges while it parses (about a third of the cost of decoding with orjson
and checking each field in Python), and what is left per read is the plate normalisation. A read
that is well typed but not ordinary (alternate candidates, an odd state) goes through
:func:`matchers.reads.validate_read` on its own. Whenever the body does not decode as well-typed
reads, or any read would be rejected, :func:`ordinary_reads` returns ``None`` and the caller
takes the full path (``validate_read`` on every item as sent), which accepts or rejects each
read with its reason and dead-letters the item exactly as the camera sent it. The fast path
never rejects anything itself.

The contract, checked by a property test against :func:`matchers.reads.validate_read`: when
this returns a list, it equals ``[validate_read(item) for item in orjson.loads(body)]`` (and
none of them would have raised), but for ``token_id``, which is the caller's (the token that
authenticated the request), never the body's. The conditions below mirror
``matchers.reads._fast_row``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from matchers.reads import (
    MAX_PLATE_LEN,
    MIN_PLATE_LEN,
    ReadError,
    derive_read_id,
    normalise_plate,
    validate_read,
)

__all__ = ["ordinary_reads"]

_TS_MIN_MS = 946_684_800_000  # 2000-01-01, as matchers.reads
_TS_MAX_MS = 4_102_444_800_000  # 2100-01-01
_MAX_TEXT = 256

_Text = Annotated[str, msgspec.Meta(max_length=_MAX_TEXT)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_TEXT)]


class _Read(msgspec.Struct, gc=False):
    """An ordinary read; anything outside these types fails the decode (full path).

    Not tracked by the garbage collector (a decoded read holds no reference cycle): a hundred
    tracked objects per request would only make the collector run more often on the hot path.
    """

    camera_id: _Id
    plate: str
    ts: Annotated[int, msgspec.Meta(ge=_TS_MIN_MS, le=_TS_MAX_MS)]
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    read_id: _Id | None = None
    state: str | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)] | None = None
    agency: _Text | None = None
    image_ref: _Text | None = None
    plate_raw: _Text | None = None
    candidates: list[Any] | None = None
    #: Decoded only so that an ill-typed ``token_id`` in the body takes the full path, which
    #: rejects it as ``validate_read`` does; the read records the caller's ``token_id``.
    token_id: _Text | None = None


_ONE = msgspec.json.Decoder(_Read)
_MANY = msgspec.json.Decoder(list[_Read])


def ordinary_reads(body: bytes, token_id: str | None = None) -> list[dict[str, Any]] | None:
    """The canonical reads of ``body`` (a JSON read or array of reads) if every one is
    ordinary, else ``None``: see the module docstring. Each read records ``token_id`` (the
    ingest token that posted it; a ``token_id`` in the body is never believed)."""
    head = body.lstrip()[:1]
    try:
        if head == b"[":
            parsed = _MANY.decode(body)
        elif head == b"{":
            parsed = [_ONE.decode(body)]
        else:
            return None
    except msgspec.DecodeError:  # ValidationError included: the full path says what is wrong
        return None
    out: list[dict[str, Any]] = []
    for r in parsed:
        raw = r.plate
        plate = raw if raw.isalnum() and raw.isascii() else normalise_plate(raw)
        if not plate.isupper() and not plate.isdigit():
            plate = plate.upper()
        state = r.state
        if (
            not MIN_PLATE_LEN <= len(plate) <= MAX_PLATE_LEN
            or (r.lat is None) != (r.lon is None)
            or r.candidates
            or (
                state is not None
                and (len(state) != 2 or not state.isalpha() or not state.isascii())
            )
        ):
            # Well typed but not ordinary: the definition decides (unknown fields, which msgspec
            # dropped, are ignored by it too); a rejection sends the whole body the full way.
            try:
                careful = validate_read(msgspec.structs.asdict(r))
            except ReadError:
                return None
            careful["token_id"] = token_id
            out.append(careful)
            continue
        out.append(
            {
                "read_id": r.read_id or derive_read_id(r.camera_id, r.ts, plate),
                "camera_id": r.camera_id,
                "plate": plate,
                "plate_raw": r.plate_raw if r.plate_raw is not None else raw,
                "ts": r.ts,
                "confidence": r.confidence,
                "state": state.upper() if state is not None else None,
                "lat": r.lat,
                "lon": r.lon,
                "candidates": [],
                "agency": r.agency or None,
                "image_ref": r.image_ref or None,
                "token_id": token_id,
            }
        )
    return out
