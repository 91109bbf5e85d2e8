"""The msgspec fast path of ``POST /v1/reads`` and of the flow's entries against the definition,
``validate_read``.

Whenever :func:`sinks.ordinary_reads` (or :func:`sinks.ordinary_rows`) answers, its answer must
be exactly what
validating every item one by one gives; when anything is unusual it must step aside (``None``),
never reject or alter a read itself.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from matchers.reads import ReadError, validate_read, validate_row
from plateflow.simulator import Simulator
from sinks import ordinary_reads, ordinary_rows

_int = st.integers(-(2**63), 2**63 - 1)
_TS = st.integers(946_684_800_000 - 5, 4_102_444_800_000 + 5)
_text = st.text(max_size=12) | st.text(min_size=250, max_size=260)
_plate = st.text(alphabet="ab-C 1Ω0o8Bz·", max_size=12)
_read_like = st.fixed_dictionaries(
    {},
    optional={
        "camera_id": _text | _int | st.none(),
        "plate": _plate | _int | st.none(),
        "plate_raw": _text | st.none(),
        "ts": _TS | st.floats() | st.text(max_size=25) | st.booleans(),
        "confidence": st.floats(-0.5, 1.5) | st.integers(-1, 2) | st.booleans(),
        "read_id": _text | st.none() | _int,
        "state": st.text(alphabet="caNVé1 ", max_size=3) | st.none(),
        "lat": st.floats(-100, 100) | st.integers(-91, 91) | st.none(),
        "lon": st.floats(-190, 190) | st.integers(-181, 181) | st.none(),
        "agency": _text | st.none(),
        "image_ref": _text | st.none(),
        "candidates": st.just([]) | st.none() | st.lists(st.fixed_dictionaries(
            {"plate": _plate, "confidence": st.floats(0, 1)}), max_size=2),
        "token_id": _text | _int | st.lists(_int, max_size=1) | st.none(),
        "extra": _int,
    },
)  # fmt: skip


_coords = st.none() | st.tuples(
    st.floats(-90, 90) | st.integers(-90, 90), st.floats(-180, 180) | st.integers(-180, 180)
)
#: Mostly ordinary reads (the fast path's answer branch), each field sometimes at its edge.
_ordinary = st.builds(
    lambda base, coords, extra: (
        base | ({"lat": coords[0], "lon": coords[1]} if coords else {}) | extra
    ),
    st.fixed_dictionaries(
        {
            "camera_id": st.text(min_size=1, max_size=20),
            "plate": st.text(alphabet="abcXYZ0189 -", min_size=2, max_size=12),
            "ts": st.integers(946_684_800_000, 4_102_444_800_000),
            "confidence": st.floats(0, 1) | st.sampled_from([0, 1]),
        }
    ),
    _coords,
    st.fixed_dictionaries(
        {},
        optional={
            "read_id": st.text(min_size=1, max_size=30),
            "state": st.sampled_from(["CA", "ca", "Nv", "", "C1", "É!"]) | st.none(),
            "agency": st.sampled_from(["", "SO"]) | st.none(),
            "image_ref": st.text(max_size=5) | st.none(),
            "plate_raw": st.text(max_size=8) | st.none(),
            "candidates": st.just([])
            | st.none()
            | st.lists(
                st.fixed_dictionaries(
                    {
                        "plate": st.text(alphabet="abcXYZ0189 -", max_size=12),
                        "confidence": st.floats(0, 1) | st.sampled_from([0, 1]),
                    },
                    optional={"source": st.just("ocr2")},
                ),
                max_size=3,
            ),
            "speed_kmh": st.integers(0, 200),
            "token_id": st.text(max_size=8) | st.none(),
        },
    ),
)


def _definition(items: list[Any]) -> list[dict[str, Any]] | None:
    try:
        return [validate_read(item) for item in items]
    except ReadError:
        return None


def _check(body: bytes) -> bool:
    fast = ordinary_reads(body, "tok-caller")
    rows = ordinary_rows(body)
    if fast is None:
        assert rows is None
        return False
    decoded = orjson.loads(body)
    items = decoded if isinstance(decoded, list) else [decoded]
    definition = _definition(items)
    assert definition is not None
    # the token that posted the reads is recorded, whatever the body said
    assert fast == [read | {"token_id": "tok-caller"} for read in definition]
    # the flow's form: rows, keeping the token_id the ingest wrote into the entry
    assert rows == [validate_row(item) for item in items]
    return True


@hsettings(max_examples=400, deadline=None)
@given(st.lists(_ordinary | _read_like, max_size=4) | _ordinary | _read_like)
def test_the_fast_path_agrees_with_validate_read_or_steps_aside(payload: Any) -> None:
    _check(orjson.dumps(payload))


def test_simulated_camera_traffic_takes_the_fast_path() -> None:
    reads = Simulator(malformed_rate=0.0, ocr_error_rate=0.0, seed=3).reads(500)
    assert _check(orjson.dumps(reads))
    assert _check(orjson.dumps(reads[0]))
    assert ordinary_reads(b" [] ") == []


def test_anything_unusual_steps_aside() -> None:
    ok = {"camera_id": "c", "plate": "ABC123", "ts": 1_700_000_000_000, "confidence": 0.5}
    unusual = [
        ok | {"ts": "2026-11-28T12:00:00Z"},  # RFC 3339: parsed by the full path
        ok | {"plate": "X"},  # rejected by the full path, with its reason
        ok | {"lat": 38.5},  # lat without lon
        ok | {"state": "Cal"},
        ok | {"camera_id": 17},
        ok | {"token_id": [1]},  # rejected by the full path, though the body's id is not kept
        "not an object",
    ]
    for item in unusual:
        assert ordinary_reads(orjson.dumps([ok, item])) is None, item
    assert ordinary_reads(b"") is None
    # well typed but not ordinary: answered, by the definition
    assert _check(orjson.dumps([ok, ok | {"candidates": [{"plate": "A8C123", "confidence": 0.4}]}]))
    assert ordinary_reads(b"{not json") is None
    assert ordinary_reads(b"42") is None
