"""Release requests (427.7) and purge records (427.4)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.engine import Engine

import records
from tests.records_support import assert_append_only, release_request

PASSWORD = "Correct-Horse-42"


@pytest.fixture()
def engine(engine: Engine) -> Engine:
    """The shared ``engine`` (tests/conftest.py) with a records supervisor and an investigator."""
    for username, role in (("sup.ng", "records_supervisor"), ("inv.lee", "investigator")):
        records.add_user(
            engine,
            username=username,
            name=username,
            agency="Example PD",
            job_title="x",
            roles=[role],
            password=PASSWORD,
            by="admin",
        )
    return engine


def test_law_enforcement_request_is_approved_then_fulfilled(engine: Engine) -> None:
    request = release_request(engine, "inv.lee", case_number="26-H-4", terms={"plate": "ABC123"})
    assert request.status == "pending"
    with pytest.raises(records.ReleaseError, match="only an approved request"):
        records.fulfil_release(engine, request.id, export_id="exp-1", by="sup.ng")
    with pytest.raises(records.AccessDenied, match="Records Supervisor"):
        records.decide_release(engine, request.id, approve=True, reason="ok", by="inv.lee")
    with pytest.raises(records.ReleaseError, match="needs a reason"):
        records.decide_release(engine, request.id, approve=True, reason=" ", by="sup.ng")
    approved = records.decide_release(
        engine, request.id, approve=True, reason="law enforcement, right to know", by="sup.ng"
    )
    assert (approved.status, approved.decided_by) == ("approved", "sup.ng")
    with pytest.raises(records.ConflictError, match="already approved"):
        records.decide_release(engine, request.id, approve=False, reason="no", by="sup.ng")
    # Separation of duties (427.7, on by default): the approver does not also export it.
    with pytest.raises(records.ConflictError, match="cannot also export"):
        records.fulfil_release(engine, request.id, export_id="exp-0", by="sup.ng")
    done = records.fulfil_release(engine, request.id, export_id="exp-2026-0001", by="sup.kim")
    assert (done.status, done.export_id, done.fulfilled_by) == (
        "fulfilled",
        "exp-2026-0001",
        "sup.kim",
    )
    with pytest.raises(records.ConflictError, match="was fulfilled"):
        records.fulfil_release(engine, request.id, export_id="exp-2", by="sup.kim")
    actions = [(r.action, r.outcome) for r in records.read_audit(engine, kind="release")]
    assert actions == [
        ("release.request", "allowed"),
        ("release.approve", "denied"),
        ("release.approve", "allowed"),
        ("release.fulfil", "allowed"),
    ]


def test_non_law_enforcement_request_goes_to_public_records(engine: Engine) -> None:
    request = release_request(
        engine, "sup.ng", requesting_agency="Daily Gazette", law_enforcement=False
    )
    assert request.status == "public_records"
    with pytest.raises(records.ReleaseError, match="public-records process"):
        records.decide_release(engine, request.id, approve=True, reason="fine", by="sup.ng")
    denied = records.decide_release(
        engine,
        request.id,
        approve=False,
        reason="referred to the public-records process",
        by="sup.ng",
    )
    assert denied.status == "denied"
    with pytest.raises(records.RecordsError, match="needs requester"):
        records.create_release_request(
            engine,
            requesting_agency="X",
            law_enforcement=True,
            requester="",
            purpose="p",
            by="sup.ng",
        )


def test_release_records_are_never_deleted_or_changed(engine: Engine) -> None:
    request = release_request(engine, "sup.ng")
    records.decide_release(engine, request.id, approve=False, reason="no case", by="sup.ng")
    assert_append_only(
        engine,
        (
            "DELETE FROM release_requests",
            "UPDATE release_decisions SET approved = true",
            "DELETE FROM release_decisions",
        ),
    )
    assert not hasattr(records, "delete_release")
    assert records.get_release(engine, request.id).status == "denied"
    assert [r.id for r in records.list_releases(engine)] == [request.id]


def test_purges(engine: Engine) -> None:
    at = datetime(2026, 11, 2, 3, 0, tzinfo=timezone.utc)
    purge = records.record_purge(engine, "reads/date=2025-11-01", 123_456, "retention-job", at)
    assert purge.at_ms == int(at.timestamp() * 1000)
    with pytest.raises(records.RecordsError, match="aware datetime"):
        records.record_purge(engine, "p", 1, "x", datetime(2026, 1, 1))
    assert [p.rows for p in records.list_purges(engine)] == [123_456]
    actions = [r.action for r in records.read_audit(engine) if r.kind == "retention"]
    assert actions == ["retention.purge"]


def test_the_requester_cannot_approve_their_own_release(engine: Engine) -> None:
    """Separation of duties (427.7): the person who records a request cannot approve it."""
    import pytest as _pytest

    from records import ConflictError, add_user, create_release_request, decide_release

    add_user(
        engine,
        username="both",
        name="Both Hats",
        agency="PD",
        job_title="Supervisor",
        roles=["administrator", "records_supervisor"],
        password="correct horse battery staple 9",
        by="test",
    )
    request = create_release_request(
        engine,
        requesting_agency="County Sheriff",
        law_enforcement=True,
        requester="Det. Roe",
        purpose="investigation of case 24-1",
        case_number="24-1",
        terms={},
        by="both",
    )
    with _pytest.raises(ConflictError, match="separation of duties"):
        decide_release(engine, request.id, approve=True, reason="ok", by="both")
