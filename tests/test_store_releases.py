"""Release fulfilment (427.7), API and CLI: an approved request is fulfilled through the
evidence export, exactly its own case, never by the person who approved it; others are refused.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

import records
import service
from tests.test_api_support import PASSWORD, add_member
from tests.test_store_support import (
    START,
    TARGET,
    WHY,
    Env,
    env_fixture,  # noqa: F401  (registers the `env` fixture)
    iso,
)

# -- releases (427.7) ---------------------------------------------------------------------------


def _request(env: Env, *, law_enforcement: bool = True, approve: bool | None = True) -> int:
    made = records.create_release_request(
        env.engine,
        requesting_agency="State Police" if law_enforcement else "Daily Courier",
        law_enforcement=law_enforcement,
        requester="Lt. Ng",
        purpose="fugitive search",
        by="ivy",
        case_number="26-300",
    )
    if approve is not None:
        records.decide_release(env.engine, made.id, approve=approve, reason="ok", by=_approver(env))
    return made.id


def _approver(env: Env) -> str:
    """A second records supervisor: the one who approves does not also export (427.7)."""
    try:
        records.get_user(env.engine, "sam")
    except records.NotFoundError:
        add_member(env.engine, "sam", "records_supervisor")
    return "sam"


def test_release_fulfilment_through_the_api(env: Env) -> None:
    case = {"case_number": "26-300"}
    body = {"reason": "release", "plate": {"plate": "7ABC124", "start": iso(START)}}
    assert env.client.post("/v1/holds", json=body, params=case, headers=env.auth("rex")).is_success
    approved = _request(env)
    path = f"/v1/releases/{approved}/export"
    resp = env.client.post(path, json={"note": "on USB"}, params=case, headers=env.auth("ivy"))
    assert resp.status_code == 403  # an investigator does not decide releases
    resp = env.client.post(path, json={"note": "on USB"}, params=case, headers=env.auth("rex"))
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert done["release"]["status"] == "fulfilled"
    assert done["release"]["export_id"] == done["export"]["export_id"]
    assert done["export"]["manifest"]["release"]["requesting_agency"] == "State Police"
    chain = env.data_dir / "evidence" / done["export"]["export_id"] / "chain_of_custody.jsonl"
    assert '"action":"released"' in chain.read_text()
    assert records.get_release(env.engine, approved).fulfilled_by == "rex"
    resp = env.client.post(path, json={}, params=case, headers=env.auth("rex"))
    assert resp.status_code == 409  # fulfilled once
    for request_id, words in (
        (_request(env, approve=None), "only a request approved"),
        (_request(env, approve=False), "only a request approved"),
        (_request(env, law_enforcement=False, approve=None), "public-records process"),
    ):
        resp = env.client.post(
            f"/v1/releases/{request_id}/export", json={}, params=case, headers=env.auth("rex")
        )
        assert resp.status_code == 409 and words in resp.json()["detail"]
        assert records.get_release(env.engine, request_id).export_id is None


def test_release_fulfilment_through_the_cli(env: Env, tmp_path: Path) -> None:
    env.cli(
        "hold",
        "place",
        "--case",
        "26-300",
        "--reason",
        "release",
        "--pattern",
        "*XYZ*",
        "--days",
        "30",
        as_user="rex",
    )
    approved = _request(env)
    out = tmp_path / "release"
    with pytest.raises(service.Forbidden, match="may not 'releases:decide'"):
        env.cli("evidence", "export", "--release", str(approved), "--out", str(out), as_user="ivy")
    assert env.audit()[-1].outcome == "denied" and env.audit()[-1].action == "releases.export"
    code, text = env.cli(
        "evidence",
        "export",
        "--release",
        str(approved),
        "--out",
        str(out),
        as_user="rex",
    )
    assert code == 0 and f"release request {approved} fulfilled" in text
    found = records.get_release(env.engine, approved)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert found.status == "fulfilled" and manifest["release"]["request_id"] == approved
    assert (
        found.export_id is not None
        and found.export_id in (out / "chain_of_custody.jsonl").read_text()
    )
    assert env.cli("evidence", "verify", str(out), *WHY, as_user="ivy")[0] == 0
    pending = _request(env, approve=None)
    with pytest.raises(service.Conflict, match="only a request approved"):
        env.cli(
            "evidence",
            "export",
            "--release",
            str(pending),
            "--out",
            str(tmp_path / "p"),
            as_user="rex",
        )
    assert env.audit("releases.export")[-1].outcome == "failed"


def _hold(env: Env, case: str, plate: str) -> None:
    body = {"reason": "release", "plate": {"plate": plate, "start": iso(START)}}
    resp = env.client.post(
        "/v1/holds", json=body, params={"case_number": case}, headers=env.auth("rex")
    )
    assert resp.status_code == 201, resp.text


def _exports(env: Env) -> list[Path]:
    root = env.data_dir / "evidence"
    return sorted(root.iterdir()) if root.exists() else []


def test_a_release_exports_exactly_its_case_through_the_api(env: Env) -> None:
    _hold(env, "26-300", "7ABC124")
    _hold(env, "26-999", TARGET)  # another case's reads, which this request must never hand over
    approved = _request(env)
    path = f"/v1/releases/{approved}/export"
    for body, params in (
        ({"case_number": "26-999"}, {"case_number": "26-300"}),
        ({}, {"case_number": "26-999"}),  # the justification's case counts as asked for
    ):
        resp = env.client.post(path, json=body, params=params, headers=env.auth("rex"))
        assert resp.status_code == 409, resp.text
        detail = resp.json()["detail"]
        assert "case 26-300" in detail and "case 26-999" in detail
        assert resp.json()["field"] == "case_number"
        assert records.get_release(env.engine, approved).export_id is None
        assert _exports(env) == []
        record = env.audit("releases.export")[-1]
        assert (record.outcome, record.username) == ("failed", "rex")
    resp = env.client.post(
        path, json={"case_number": "26-300"}, params={"case_number": "26-300"},
        headers=env.auth("rex"),
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    exported = resp.json()["export"]
    assert exported["case_number"] == "26-300" and exported["manifest"]["case_number"] == "26-300"
    reads = pq.read_table(_exports(env)[0] / "reads.parquet").column("plate").to_pylist()
    assert reads and set(reads) == {"7ABC124"}


def test_a_release_is_checked_against_the_hold(env: Env) -> None:
    _hold(env, "26-300", "7ABC124")
    case = {"case_number": "26-300"}
    for terms, words in (
        ({"plate": "7ABC124"}, None),
        ({"plates": ["7abc124", "NOT999"]}, "NOT999"),
    ):
        made = records.create_release_request(
            env.engine, requesting_agency="State Police", law_enforcement=True, requester="Lt. Ng",
            purpose="fugitive search", by="ivy", case_number="26-300", terms=terms,
        )  # fmt: skip
        records.decide_release(env.engine, made.id, approve=True, reason="ok", by=_approver(env))
        resp = env.client.post(
            f"/v1/releases/{made.id}/export", json={}, params=case, headers=env.auth("rex")
        )
        if words is None:
            assert resp.status_code == 200, resp.text
            continue
        assert resp.status_code == 409 and words in resp.json()["detail"]
        assert resp.json()["field"] == "terms"
        assert records.get_release(env.engine, made.id).export_id is None
    assert len(_exports(env)) == 1  # the refused export left nothing behind
    caseless = records.create_release_request(
        env.engine, requesting_agency="State Police", law_enforcement=True, requester="Lt. Ng",
        purpose="fugitive search", by="ivy",
    )  # fmt: skip
    records.decide_release(env.engine, caseless.id, approve=True, reason="ok", by=_approver(env))
    resp = env.client.post(
        f"/v1/releases/{caseless.id}/export", json={}, params=case, headers=env.auth("rex")
    )
    assert resp.status_code == 409 and "names no case" in resp.json()["detail"]


def test_a_release_exports_exactly_its_case_through_the_cli(env: Env, tmp_path: Path) -> None:
    _hold(env, "26-300", "7ABC124")
    _hold(env, "26-999", TARGET)
    approved = _request(env)
    out = tmp_path / "release"
    argv = ("evidence", "export", "--release", str(approved), "--out", str(out))
    with pytest.raises(service.Conflict, match="case 26-300, not case 26-999") as refused:
        env.cli(*argv, "--case", "26-999", as_user="rex")
    assert refused.value.field == "case_number"
    assert not out.exists() and records.get_release(env.engine, approved).export_id is None
    assert env.audit("releases.export")[-1].outcome == "failed"
    code, text = env.cli(*argv, "--case", "26-300", as_user="rex")
    assert code == 0 and "exported case 26-300" in text
    assert set(pq.read_table(out / "reads.parquet").column("plate").to_pylist()) == {"7ABC124"}


def test_the_approver_of_a_release_cannot_also_export_it(env: Env) -> None:
    case = {"case_number": "26-300"}
    body = {"reason": "release", "plate": {"plate": "7ABC124", "start": iso(START)}}
    assert env.client.post("/v1/holds", json=body, params=case, headers=env.auth("rex")).is_success
    made = records.create_release_request(
        env.engine, requesting_agency="State Police", law_enforcement=True, requester="Lt. Ng",
        purpose="fugitive search", by="ivy", case_number="26-300",
    )  # fmt: skip
    records.decide_release(env.engine, made.id, approve=True, reason="ok", by="rex")
    path = f"/v1/releases/{made.id}/export"
    resp = env.client.post(path, json={}, params=case, headers=env.auth("rex"))
    assert resp.status_code == 409 and "cannot also export" in resp.json()["detail"]
    assert env.audit("releases.export")[-1].outcome in ("failed", "denied")
    assert _exports(env) == [] and records.get_release(env.engine, made.id).export_id is None
    _approver(env)
    token = records.login(env.engine, "sam", PASSWORD).token
    resp = env.client.post(path, json={}, params=case, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    assert records.get_release(env.engine, made.id).fulfilled_by == "sam"
