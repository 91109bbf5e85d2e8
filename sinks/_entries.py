"""A read-stream entry (or a camera's ingest body) of ordinary reads, decoded and validated in
one step with msgspec.

A camera batch is almost always a list of well-typed reads, and so is almost every entry of a
read stream (the ingest writes canonical reads). For such a payload, msgspec's C decoder checks
the types and ranges while it parses (about a third of the cost of decoding with orjson and
checking each field in Python), and what is left per read is the plate normalisation. A read
that is well typed but not ordinary (an odd state, a lone coordinate) goes through
:func:`matchers.reads.validate_row` on its own. Whenever the payload does not decode as
well-typed reads, or any read would be rejected, :func:`ordinary_rows` returns ``None`` and the
caller takes the full path (``validate_read`` on every item as sent), which accepts or rejects
each read with its reason and dead-letters it exactly as sent. This path never rejects anything.

The contract, checked by a property test against :func:`matchers.reads.validate_row`: when
:func:`ordinary_rows` returns a list, it equals ``[validate_row(item) for item in
orjson.loads(payload)]`` and none of them would have raised. The conditions below mirror
``matchers.reads._fast_row``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from matchers.reads import (
    MAX_PLATE_LEN,
    MAX_TEXT,
    MIN_PLATE_LEN,
    TS_MAX_MS,
    TS_MIN_MS,
    ReadError,
    derive_read_id,
    normalise_plate,
    validate_read,
    validate_row,
)

__all__ = ["ordinary_reads", "ordinary_rows"]

_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]


class _Candidate(msgspec.Struct, gc=False):
    """An alternate plate the camera's OCR also considered (extra fields are ignored)."""

    plate: str
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class _Read(msgspec.Struct, gc=False):
    """An ordinary read; anything outside these types fails the decode (full path).

    Not tracked by the garbage collector (a decoded read holds no reference cycle): a hundred
    tracked objects per payload would only make the collector run more often on the hot path.
    """

    camera_id: _Id
    plate: str
    ts: Annotated[int, msgspec.Meta(ge=TS_MIN_MS, le=TS_MAX_MS)]
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    read_id: _Id | None = None
    state: str | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)] | None = None
    agency: _Text | None = None
    image_ref: _Text | None = None
    plate_raw: _Text | None = None
    candidates: list[_Candidate] | None = None
    token_id: _Text | None = None


_ONE = msgspec.json.Decoder(_Read)
_MANY = msgspec.json.Decoder(list[_Read])


def _normalised(raw: str) -> str:
    plate = raw if raw.isalnum() and raw.isascii() else normalise_plate(raw)
    return plate if plate.isupper() or plate.isdigit() else plate.upper()


def ordinary_rows(payload: bytes) -> list[tuple[Any, ...]] | None:
    """The canonical reads of ``payload`` (a JSON read or array of reads) as rows in
    :data:`matchers.reads.READ_FIELDS` order (the flow's form, ``candidates`` a tuple), if
    every one is ordinary, else ``None``: see the module docstring. Each keeps the
    ``token_id`` it carries (the ingest wrote it)."""
    return _ordinary(payload, dicts=False)


def ordinary_reads(body: bytes, token_id: str | None = None) -> list[dict[str, Any]] | None:
    """:func:`ordinary_rows` as canonical read dicts for the HTTP ingest, each recording
    ``token_id`` (the ingest token that posted it; a ``token_id`` in the body is never
    believed, though an ill-typed one still sends the body the full way, which rejects it)."""
    return _ordinary(body, dicts=True, token_id=token_id)


def _ordinary(payload: bytes, *, dicts: bool, token_id: str | None = None) -> list[Any] | None:
    head = payload.lstrip()[:1]
    try:
        if head == b"[":
            parsed = _MANY.decode(payload)
        elif head == b"{":
            parsed = [_ONE.decode(payload)]
        else:
            return None
    except msgspec.DecodeError:  # ValidationError included: the full path says what is wrong
        return None
    out: list[Any] = []
    for r in parsed:
        raw = r.plate
        plate = _normalised(raw)
        state = r.state
        if (
            not MIN_PLATE_LEN <= len(plate) <= MAX_PLATE_LEN
            or (r.lat is None) != (r.lon is None)
            or (
                state is not None
                and (len(state) != 2 or not state.isalpha() or not state.isascii())
            )
        ):
            # Well typed but not ordinary: the definition decides (unknown fields, which msgspec
            # dropped, are ignored by it too); a rejection sends the whole payload the full way.
            try:
                if dicts:
                    out.append(validate_read(msgspec.to_builtins(r)) | {"token_id": token_id})
                else:
                    out.append(validate_row(msgspec.to_builtins(r)))
            except ReadError:
                return None
            continue
        found: list[dict[str, Any]] | None = None
        if r.candidates:  # as the definition: the first 20, each a plate, the read's own dropped
            found = []
            for cand in r.candidates[:20]:
                alternate = _normalised(cand.plate)
                if not MIN_PLATE_LEN <= len(alternate) <= MAX_PLATE_LEN:
                    return None
                if alternate != plate:
                    found.append({"plate": alternate, "confidence": cand.confidence})
        read_id = r.read_id or derive_read_id(r.camera_id, r.ts, plate)
        plate_raw = r.plate_raw if r.plate_raw is not None else raw
        if state is not None:
            state = state.upper()
        # A literal each way: a dict built from a row (zip) costs half a microsecond a read more.
        if dicts:
            out.append(
                {
                    "read_id": read_id,
                    "camera_id": r.camera_id,
                    "plate": plate,
                    "plate_raw": plate_raw,
                    "ts": r.ts,
                    "confidence": r.confidence,
                    "state": state,
                    "lat": r.lat,
                    "lon": r.lon,
                    "candidates": found if found is not None else [],
                    "agency": r.agency or None,
                    "image_ref": r.image_ref or None,
                    "token_id": token_id,
                }
            )
        else:
            row = (
                read_id, r.camera_id, plate, plate_raw, r.ts, r.confidence, state, r.lat, r.lon,
                tuple(found) if found else (), r.agency or None, r.image_ref or None,
                r.token_id or None,
            )  # fmt: skip
            out.append(row)
    return out
