"""Searches of stored reads through the API and the CLI, checked against an independent reader.

Every result is compared with what pyarrow reads from the same Parquet files and plain Python
decides (exact, OCR look-alike, one difference, glob, distance). Every call must leave an audit
record with its query terms and result count; refusals must be audited too.
"""

from __future__ import annotations

import getpass
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import service
from plateflow._cli_session import cli_client
from tests.test_store_support import (
    CASE,
    END,
    NOW,
    SCENE,
    START,
    TARGET,
    Env,
    expected_ids,
    glob,
    haversine_m,
    in_window,
    iso,
    ocr_equal,
    one_difference,
    pages,
    shared_env_fixture,  # noqa: F401  (registers the module-scoped `shared_env` fixture)
    stored,
)

SCENE_START = NOW - timedelta(days=2, hours=1)
SCENE_END = NOW - timedelta(days=2) + timedelta(hours=2)


@pytest.mark.parametrize(
    ("match", "accept"),
    [
        ("exact", lambda plate: plate == TARGET),
        ("ocr", lambda plate: ocr_equal(plate, TARGET)),
        ("one_difference", lambda plate: one_difference(plate, TARGET)),
    ],
)
def test_plate_history_agrees_with_the_independent_reader_page_by_page(
    shared_env: Env, match: str, accept: Any
) -> None:
    env = shared_env
    expected = expected_ids(env, accept)
    assert len(expected) >= 9
    params = {"plate": "7abc-123", "match": match, "start": iso(START), "end": iso(END)}
    found = pages(env, "/v1/search/plate", "otto", params={**params, "page_size": 4})
    got = [read["read_id"] for page in found for read in page["reads"]]
    assert len(got) == len(set(got)) and set(got) == expected
    assert found[0]["total"] == len(expected) and len(found) == -(-len(expected) // 4)
    times = [read["ts"] for page in found for read in page["reads"]]
    assert times == sorted(times, reverse=True)  # newest first by default
    audited = env.audit("reads.plate")[-len(found) :]
    for record, page in zip(audited, found, strict=True):
        assert (record.username, record.outcome, record.kind) == ("otto", "allowed", "inquiry")
        assert record.case_number == CASE["case_number"] and record.client
        assert record.terms["plate"] == TARGET and record.terms["match"] == match
        assert record.terms["start"] == iso(START) and record.terms["end"] == iso(END)
        assert record.result_count == len(page["reads"])
    assert audited[0].terms["total"] == len(expected)


def test_candidates_state_and_cameras_narrow_a_plate_history(shared_env: Env) -> None:
    env = shared_env
    rows = stored(env.data_dir)
    base = {"plate": TARGET, "start": iso(START), "end": iso(END), "page_size": 100}
    [page] = pages(env, "/v1/search/plate", "ivy", params={**base, "candidates": "true"})
    via = [read for read in page["reads"] if read["via_candidate"]]
    assert [read["plate"] for read in via] == ["QQQ9999"] and via[0]["matched_plate"] == TARGET
    [page] = pages(env, "/v1/search/plate", "ivy", params={**base, "state": "ca"})
    expected = {r["read_id"] for r in rows if r["plate"] == TARGET and r["state"] == "CA"}
    assert {read["read_id"] for read in page["reads"]} == expected & expected_ids(
        env, lambda p: p == TARGET
    )
    cameras = ["cam-1", "cam-2"]
    [page] = pages(env, "/v1/search/plate", "ivy", params={**base, "camera_id": cameras})
    assert {read["camera_id"] for read in page["reads"]} <= set(cameras)
    assert page["total"] == sum(
        1
        for r in rows
        if r["plate"] == TARGET and r["camera_id"] in cameras and in_window(r, START, END)
    )


@pytest.mark.parametrize(
    "pattern", ["7AB?12*", "*XYZ*", "[8B]AD*", "[A-C]?[A-F]1*", "M?M29[0-4]6", "[!A-M]*99"]
)
def test_partial_search_agrees_with_fnmatch(shared_env: Env, pattern: str) -> None:
    env = shared_env
    expected = expected_ids(env, glob(pattern))
    assert expected
    params = {"pattern": pattern, "start": iso(START), "end": iso(END), "page_size": 3}
    found = pages(env, "/v1/search/partial", "otto", params=params)
    got = [read["read_id"] for page in found for read in page["reads"]]
    assert sorted(got) == sorted(expected) and found[0]["total"] == len(expected)
    assert {read["match_kind"] for page in found for read in page["reads"]} == {"partial"}
    record = env.audit("reads.partial")[-len(found)]
    assert record.terms["pattern"] == pattern and record.terms["total"] == len(expected)
    oregon = {"pattern": pattern, "state": "OR", "start": iso(START), "end": iso(END)}
    [page] = pages(env, "/v1/search/partial", "otto", params={**oregon, "page_size": 100})
    assert {read["state"] for read in page["reads"]} <= {"OR"}


def test_canvass_by_radius_and_polygon_groups_plates_like_the_oracle(shared_env: Env) -> None:
    env = shared_env
    rows = [
        r
        for r in stored(env.data_dir)
        if in_window(r, SCENE_START, SCENE_END) and haversine_m(r["lat"], r["lon"], *SCENE) <= 500
    ]
    expected: dict[str, list[int]] = {}
    for r in rows:
        expected.setdefault(r["plate"], []).append(r["ts"])
    body = {
        "start": iso(SCENE_START),
        "end": iso(SCENE_END),
        "center": {"lat": SCENE[0], "lon": SCENE[1]},
        "radius_m": 500,
        "page_size": 2,
    }
    found = pages(env, "/v1/search/canvass", "ivy", body=body)
    plates = [plate for page in found for plate in page["plates"]]
    assert {p["plate"]: p["reads"] for p in plates} == {k: len(v) for k, v in expected.items()}
    assert found[0]["total"] == len(expected) and len(found) == -(-len(expected) // 2)
    for plate in plates:
        first = datetime.fromtimestamp(min(expected[plate["plate"]]) / 1000, tz=timezone.utc)
        assert plate["first_seen"].startswith(first.strftime("%Y-%m-%dT%H:%M:%S"))
        assert plate["nearest_m"] <= 500
    assert [p["first_seen"] for p in plates] == sorted(p["first_seen"] for p in plates)
    record = env.audit("reads.canvass")[-len(found)]
    assert record.terms["center"] == list(SCENE) and record.terms["radius_m"] == 500
    assert record.terms["total"] == len(expected)
    lat, lon, d = SCENE[0], SCENE[1], 0.0009  # reads sit every 0.0002 degrees
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d]]
    polygon = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    inside = {
        r["read_id"]
        for r in stored(env.data_dir)
        if in_window(r, SCENE_START, SCENE_END)
        and abs(r["lat"] - lat) < d
        and abs(r["lon"] - lon) < d
    }
    body = {"start": iso(SCENE_START), "end": iso(SCENE_END), "polygon": polygon}
    [page] = pages(env, "/v1/search/canvass", "ivy", body={**body, "page_size": 100})
    assert {i for p in page["plates"] for i in p["read_ids"]} == inside
    assert "POLYGON" in env.audit("reads.canvass")[-1].terms["polygon"]


def test_covert_alerts_are_shown_only_to_roles_allowed(shared_env: Env) -> None:
    params = {"plate": TARGET, "start": iso(START), "end": iso(END), "page_size": 100}

    def hotlists(user: str) -> set[str]:
        [page] = pages(shared_env, "/v1/search/plate", user, params=params)
        return {alert["hotlist"] for read in page["reads"] for alert in read["alerts"]}

    assert hotlists("otto") == {"stolen"}  # an officer: no hotlists:view_covert
    assert hotlists("ivy") == {"stolen", "covert-ops"}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/search/plate", {"plate": "#"}, "plate"),
        ("/v1/search/plate", {"plate": TARGET, "start": "2026-01-01T00:00:00"}, "start"),
        (
            "/v1/search/plate",
            {"plate": TARGET, "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            "start",
        ),
        ("/v1/search/partial", {"pattern": "*"}, "pattern"),
        ("/v1/search/partial", {"pattern": "7A[B"}, "pattern"),
    ],
)
def test_bad_values_are_422_naming_the_field_and_audited(
    shared_env: Env, path: str, params: dict[str, str], field: str
) -> None:
    resp = shared_env.client.get(path, params={**CASE, **params}, headers=shared_env.auth("otto"))
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field
    record = shared_env.audit()[-1]
    assert (record.username, record.outcome) == ("otto", "denied")
    assert record.reason is not None and record.reason.startswith("invalid")


def test_bad_polygon_and_foreign_cursor_are_refused(shared_env: Env) -> None:
    env = shared_env
    body = {**CASE, "start": iso(START), "end": iso(END), "polygon": {"type": "Point"}}
    resp = env.client.post("/v1/search/canvass", json=body, headers=env.auth("ivy"))
    assert resp.status_code == 422 and resp.json()["field"] == "polygon"
    first = env.client.get(
        "/v1/search/plate",
        params={**CASE, "plate": TARGET, "page_size": 1},
        headers=env.auth("otto"),
    ).json()
    other = {**CASE, "plate": "7A8C123", "cursor": first["next_cursor"]}
    resp = env.client.get("/v1/search/plate", params=other, headers=env.auth("otto"))
    assert resp.status_code == 422 and resp.json()["field"] == "cursor"
    assert env.audit("reads.plate")[-1].outcome == "failed"


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_plate_search_writes_csv_and_parquet_matching_the_oracle(
    shared_env: Env, tmp_path: Path
) -> None:
    env = shared_env
    expected = expected_ids(env, lambda plate: ocr_equal(plate, TARGET))
    window = ["--start", iso(START), "--end", iso(END), "--page-size", "3"]
    for name in ("hits.csv", "hits.parquet"):
        out = tmp_path / name
        code, text = env.cli(
            "search",
            "plate",
            "7ABC123",
            "--match",
            "ocr",
            *window,
            "--out",
            str(out),
            "--case-number",
            "26-1",
            as_user="ivy",
        )
        assert code == 0 and f"wrote {len(expected)} rows" in text
        table = pacsv.read_csv(out) if name.endswith(".csv") else pq.read_table(out)
        assert set(table.column("read_id").to_pylist()) == expected
        assert table.num_rows == len(expected)
        record = env.audit("reads.plate")[-1]
        assert (record.username, record.case_number) == ("ivy", "26-1")
        assert record.client == cli_client() == f"cli:{getpass.getuser()}@{socket.gethostname()}"
        assert record.result_count == len(expected) and record.terms["output"] == str(out)
    alerts = pacsv.read_csv(tmp_path / "hits.csv").column("alerts").to_pylist()
    assert any("covert-ops" in text for text in alerts)  # ivy may see covert alerts


def test_cli_canvass_and_partial_stream_pages_to_the_terminal(shared_env: Env) -> None:
    env = shared_env
    code, text = env.cli(
        "search",
        "canvass",
        "--lat",
        str(SCENE[0]),
        "--lon",
        str(SCENE[1]),
        "--radius-m",
        "500",
        "--start",
        iso(SCENE_START),
        "--end",
        iso(SCENE_END),
        "--page-size",
        "2",
        "--event-number",
        "E26-7",
        as_user="ivy",
    )
    assert code == 0 and "page 1" in text and "page 3" in text and "SCN0001" in text
    record = env.audit("reads.canvass")[-1]
    assert record.event_number == "E26-7" and record.result_count == 5
    code, text = env.cli(
        "search",
        "partial",
        "[8B]AD*",
        "--days",
        "30",
        "--case-number",
        "26-2",
        as_user="otto",
    )
    expected = expected_ids(env, glob("[8B]AD*"), NOW - timedelta(days=30))
    assert code == 0 and f"{len(expected)} rows" in text
    assert env.audit("reads.partial")[-1].result_count == len(expected)


@pytest.mark.parametrize(
    ("user", "argv", "reason", "message"),
    [
        ("u_otto", ["--case-number", "1"], "untrained", "no current ALPR training"),
        ("dora", ["--case-number", "1"], "forbidden", "may not 'reads:search'"),
        ("otto", [], "no_justification", "case_number"),
        ("otto", ["--description", "looking"], "no_justification", "at least"),
        (None, ["--case-number", "1"], "no_login", "log in first: `plateflow login`"),
    ],
)
def test_cli_refusals_raise_and_are_audited(
    shared_env: Env, user: str | None, argv: list[str], reason: str, message: str
) -> None:
    with pytest.raises(service.ServiceError, match=message) as refused:
        shared_env.cli("search", "plate", TARGET, *argv, as_user=user)
    assert refused.value.reason == reason
    record = shared_env.audit()[-1]
    username = user or service.ANONYMOUS
    assert (record.action, record.outcome, record.username) == ("reads.plate", "denied", username)
    assert record.reason is not None and record.reason.startswith(reason)
    assert record.client == cli_client()


def test_a_search_over_its_bound_is_a_422_until_a_supervisor_overrides(shared_env: Env) -> None:
    env = shared_env
    params = {**CASE, "plate": TARGET, "start": iso(NOW - timedelta(days=400)), "end": iso(NOW)}
    resp = env.client.get("/v1/search/plate", params=params, headers=env.auth("ivy"))
    assert resp.status_code == 422 and resp.json()["field"] == "start"
    assert "366 days" in resp.text and "override_reason" in resp.text
    why = {**params, "override_reason": "court order 26-17: the vehicle's two years"}
    resp = env.client.get("/v1/search/plate", params=why, headers=env.auth("ivy"))
    assert resp.status_code == 403 and "search:override" in resp.text
    resp = env.client.get("/v1/search/plate", params=why, headers=env.auth("rex"))
    assert resp.status_code == 200, resp.text
    record = env.audit("reads.plate")[-1]
    assert record.username == "rex" and record.terms["override"]["reason"].startswith("court")
    county = [[[-118.5, 34.0], [-118.06, 34.0], [-118.06, 34.36], [-118.5, 34.36], [-118.5, 34.0]]]
    body = {**CASE, "start": iso(SCENE_START), "end": iso(SCENE_END)}
    body["polygon"] = {"type": "Polygon", "coordinates": county}
    resp = env.client.post("/v1/search/canvass", json=body, headers=env.auth("ivy"))
    assert resp.status_code == 422 and resp.json()["field"] == "polygon" and "km²" in resp.text


def test_cli_override_reason_passes_a_bound_for_a_supervisor(shared_env: Env) -> None:
    env = shared_env
    argv = ["search", "partial", "7*", "--days", "7", "--case-number", "26-1"]
    with pytest.raises(service.Invalid, match="--override-reason") as refused:
        env.cli(*argv, as_user="rex")
    assert refused.value.field == "pattern"
    code, text = env.cli(*argv, "--override-reason", "witness saw a 7 only", as_user="rex")
    assert code == 0, text
    record = env.audit("reads.partial")[-1]
    assert record.terms["override"]["reason"] == "witness saw a 7 only"
