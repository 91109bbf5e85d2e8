"""The canonical read: validation, normalisation, the fast path agreeing with the careful one."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers.reads import (
    READ_FIELDS,
    ReadError,
    derive_read_id,
    parse_ts,
    validate_read,
    validate_reads,
    validate_row,
)

GOOD = {"camera_id": "cam-1", "plate": "7abc-123", "ts": 1_795_867_200_000, "confidence": 0.93}


def test_normalises_plate_state_and_derives_a_stable_id() -> None:
    read = validate_read(GOOD | {"state": "ca"})
    assert read["plate"] == "7ABC123" and read["plate_raw"] == "7abc-123"
    assert read["state"] == "CA"
    assert tuple(read) == READ_FIELDS  # every field present, in the canonical order
    assert read["read_id"] == derive_read_id("cam-1", 1_795_867_200_000, "7ABC123")
    assert validate_read(dict(GOOD))["read_id"] == read["read_id"]


def test_rfc3339_and_epoch_ms_agree() -> None:
    assert parse_ts("2026-11-28T12:00:00Z") == 1_795_867_200_000
    assert parse_ts("2026-11-28T04:00:00-08:00") == 1_795_867_200_000
    assert parse_ts(1_795_867_200_000) == 1_795_867_200_000


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"plate": "#"}, r"^plate: '#' normalises to ''"),
        ({"plate": None}, r"^plate: is required"),
        ({"confidence": 93}, r"^confidence: 93 is outside 0..1 \(percentages"),
        ({"ts": 1_795_867_200}, r"^ts: .* looks like epoch seconds"),
        ({"ts": "2026-11-28T08:00:00"}, r"^ts: .* has no UTC offset"),
        ({"ts": "yesterday"}, r"^ts: 'yesterday' is not RFC 3339"),
        ({"camera_id": ""}, r"^camera_id: is required"),
        ({"state": "California"}, r"^state: 'California' is not a two-letter"),
        ({"lat": 38.5}, r"^lon: lat and lon come together"),
        ({"lat": 95.0, "lon": 1.0}, r"^lat: 95.0 is outside"),
        ({"candidates": [{"plate": "X", "confidence": 0.5}]}, r"^candidates\[0\].plate:"),
    ],
)
def test_bad_reads_name_the_field_and_the_fix(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ReadError, match=match):
        validate_read(GOOD | change)


def test_a_canonical_read_passes_through_unchanged() -> None:
    canonical = validate_read(GOOD | {"state": "ca", "lat": 38.5, "lon": -121.4})
    assert validate_read(dict(canonical)) == canonical  # the flow re-validates API reads


def test_batch_splits_accepted_and_rejected_without_raising() -> None:
    ok, bad = validate_reads([GOOD, "not an object", GOOD | {"plate": ""}])
    assert len(ok) == 1
    assert [(i, reason.split(":")[0]) for i, _, reason in bad] == [(1, "read"), (2, "plate")]


values = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**13), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["CA", "ca", "7ABC123", "cam-1", "2026-11-28T08:00:00Z"]),
)  # fmt: skip
reads = st.fixed_dictionaries(
    {},
    # fields a camera may send beyond the read's: both paths ignore them
    optional={k: values for k in (*READ_FIELDS, "heading", "Plate", "speed_kmh")},
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(reads, st.builds(lambda d: GOOD | d, reads)))
def test_fast_path_agrees_with_the_careful_path(obj: dict[str, Any]) -> None:
    def outcome(value: Any) -> Any:
        try:
            return validate_read(value)
        except ReadError as exc:
            return ("error", exc.field)

    fast, careful = outcome(obj), outcome(MappingProxyType(obj))  # a proxy skips the fast path
    if isinstance(fast, tuple) or isinstance(careful, tuple):
        assert isinstance(fast, tuple) and isinstance(careful, tuple)
        with pytest.raises(ReadError):
            validate_row(obj)
    else:
        assert fast == careful
        # the flow's form: the same values, the alternates as a tuple
        assert validate_row(obj) == tuple(
            tuple(value) if name == "candidates" else value for name, value in careful.items()
        )
