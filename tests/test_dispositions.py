"""Dispositions (427.3(g)) through the service's door, on the real database and the real Redis:
the state machine, claims, undo, reasons, a race between two claims, covert alerts, the
broadcast events, the audit, the administrator-managed lists and what `hotlist check` learns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from sqlalchemy.engine import Engine

import records
import service
import sinks
from records._schema import write_tx
from service import Acts
from tests.dispositions_support import alert, dispose, publish
from tests.people import add_person
from tests.test_api_support import PASSWORD, add_member


@pytest.fixture()
def door(engine: Engine, data_dir: Path, redis_client: redis.Redis) -> Iterator[service.Door]:
    config = service.ServiceConfig(data_dir=data_dir, verify_urgent_s=600, disposition_undo_s=300)
    yield service.Door(engine, config, redis=redis_client)


def _actor(door: service.Door, username: str, *roles: str) -> service.Actor:
    if len(roles) == 1:
        add_member(door.engine, username, roles[0])
    else:
        add_person(door.engine, username, list(roles), password=PASSWORD)
    token = records.login(door.engine, username, PASSWORD).token
    return door.enter(Acts.DISPOSITION, token, client="console")


@pytest.fixture()
def logged(door: service.Door) -> dict[str, str]:
    records.create_hotlist(door.engine, "stolen", category="stolen_vehicle", user="t")
    records.create_hotlist(door.engine, "ops", category="wanted_vehicle", user="t")
    return publish(
        door.redis,
        alert("a-1"),
        alert("a-2", priority=5, kind="ocr"),
        alert("a-3", hotlist="ops", covert=True),
    )


def _go(
    door: service.Door, actor: service.Actor, logged: dict[str, str], alert_id: str, to: str,
    **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    return service.transition(door, actor, alert_id, logged[alert_id], to, **extra)


def _events(client: redis.Redis, stream: str = sinks.DISPOSITION_EVENTS) -> list[dict[str, Any]]:
    return [orjson.loads(f[b"event"]) for _, f in client.xrange(stream)]


def test_a_hit_moves_through_the_states_and_every_step_is_audited_and_broadcast(
    door: service.Door, logged: dict[str, str]
) -> None:
    dora = _actor(door, "dora", "dispatcher")
    before = datetime.now(timezone.utc)
    claimed = _go(door, dora, logged, "a-1", "claimed")
    assert (claimed["state"], claimed["claimed_by"], claimed["seq"]) == ("claimed", "dora", 1)
    assert (claimed["hotlist"], claimed["priority"], claimed["match_kind"]) == (
        "stolen",
        1,
        "exact",
    )
    assert claimed["hotlist_id"] is not None and claimed["covert"] is False
    verifying = _go(door, dora, logged, "a-1", "verifying")
    deadline = datetime.fromisoformat(verifying["deadline_at"].replace("Z", "+00:00"))
    assert 590 <= (deadline - before).total_seconds() <= 610  # priority 1 is urgent: 10 min
    done = _go(door, dora, logged, "a-1", "confirmed", action="stop_made", note="unit 12")
    assert (done["state"], done["action"], done["deadline_at"], done["claimed_by"]) == (
        "confirmed", "stop_made", None, None
    )  # fmt: skip
    # a routine list gets the hour
    _go(door, dora, logged, "a-2", "claimed")
    routine = _go(door, dora, logged, "a-2", "verifying")
    late = datetime.fromisoformat(routine["deadline_at"].replace("Z", "+00:00"))
    assert 3590 <= (late - before).total_seconds() <= 3610
    events = _events(door.redis)
    assert [(e["alert_id"], e["state"]) for e in events] == [
        ("a-1", "claimed"), ("a-1", "verifying"), ("a-1", "confirmed"),
        ("a-2", "claimed"), ("a-2", "verifying"),
    ]  # fmt: skip
    assert events[2] == done
    audit = [r for r in records.read_audit(door.engine) if r.action == "alerts.disposition"]
    assert [(r.username, r.outcome, r.terms["to"]) for r in audit] == [
        ("dora", "allowed", "claimed"), ("dora", "allowed", "verifying"),
        ("dora", "allowed", "confirmed"), ("dora", "allowed", "claimed"),
        ("dora", "allowed", "verifying"),
    ]  # fmt: skip
    states = service.current_dispositions(door, dora)
    assert [(s["alert_id"], s["state"]) for s in states] == [
        ("a-1", "confirmed"),
        ("a-2", "verifying"),
    ]


def test_refused_transitions_name_the_reason(door: service.Door, logged: dict[str, str]) -> None:
    dora = _actor(door, "dora", "dispatcher")
    otto = _actor(door, "otto", "officer")
    with pytest.raises(
        service.Conflict, match=r"is new: it cannot move to confirmed \(claim it first"
    ):
        _go(door, dora, logged, "a-1", "confirmed", action="stop_made")
    _go(door, dora, logged, "a-1", "claimed")
    with pytest.raises(service.Conflict, match=r"claimed by dora since .*only dora can act"):
        _go(door, otto, logged, "a-1", "verifying")
    with pytest.raises(service.Conflict, match="only dora"):
        _go(door, otto, logged, "a-1", "undo", note="mine")
    for to, given, words, field in (
        ("rejected", {}, "rejection needs a reason", "reason"),
        ("rejected", {"reason": "other"}, "needs reason_text", "reason_text"),
        (
            "rejected",
            {"reason": "plate_cover"},
            "'plate_cover' is not on the reason list",
            "reason",
        ),
        ("confirmed", {}, "needs the action taken", "action"),
        ("lost", {}, "to 'lost' is not one of", "to"),
    ):
        with pytest.raises(service.Invalid, match=words) as refused:
            _go(door, dora, logged, "a-1", to, **given)
        assert refused.value.field == field
    with pytest.raises(service.NotFound, match="no alert a-1 at log_id 1-0"):
        service.transition(door, dora, "a-1", "1-0", "verifying")
    with pytest.raises(service.NotFound, match="no alert a-2 at log_id"):
        service.transition(door, dora, "a-2", logged["a-1"], "claimed")  # another alert's id
    rejected = _go(door, dora, logged, "a-1", "rejected", reason="other", reason_text="trailer")
    assert (rejected["reason"], rejected["reason_text"]) == ("other", "trailer")
    with pytest.raises(
        service.Conflict, match=r"is rejected: it cannot move to claimed \(it is final"
    ):
        _go(door, otto, logged, "a-1", "claimed")
    outcomes = [
        r.outcome for r in records.read_audit(door.engine) if r.action == "alerts.disposition"
    ]
    assert outcomes.count("allowed") == 2 and len(outcomes) == 13  # every refusal audited too
    assert len(_events(door.redis)) == 2  # refusals are not broadcast


def test_undo_within_the_window_with_a_note_and_not_after(
    door: service.Door, logged: dict[str, str]
) -> None:
    dora = _actor(door, "dora", "dispatcher")
    _go(door, dora, logged, "a-1", "claimed")
    _go(door, dora, logged, "a-1", "verifying")
    with pytest.raises(service.Invalid, match="undo needs a note") as note:
        _go(door, dora, logged, "a-1", "undo")
    assert note.value.field == "note"
    back = _go(door, dora, logged, "a-1", "undo", note="pressed the wrong key")
    assert (back["state"], back["from"], back["undo_of"], back["claimed_by"]) == (
        "claimed", "verifying", 2, "dora"
    )  # fmt: skip
    assert back["deadline_at"] is None
    with pytest.raises(service.Conflict, match="last transition is an undo"):
        _go(door, dora, logged, "a-1", "undo", note="again")
    _go(door, dora, logged, "a-1", "dismissed", note="left the area")
    # after the window: the clock of the records layer moves on by six minutes
    user = records.get_user(door.engine, "dora")
    ref = records.current_state(door.engine, "a-1")
    assert ref is not None
    with door.engine.begin() as conn, pytest.raises(records.ConflictError, match="window of 300 s"):
        records.record_transition(
            conn, ref.alert, "undo", user=user, rules=records.DispositionRules(undo_s=300),
            note="late", at_ms=ref.at_ms + 301_000,
        )  # fmt: skip
    undone = _go(door, dora, logged, "a-1", "undo", note="still here")  # within: back to claimed
    assert undone["state"] == "claimed"


def test_two_claims_at_once_have_one_winner(door: service.Door, logged: dict[str, str]) -> None:
    actors = [_actor(door, "dora", "dispatcher"), _actor(door, "otto", "officer")]
    results: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def claim(actor: service.Actor) -> None:
        barrier.wait()
        try:
            results[actor.username] = _go(door, actor, logged, "a-2", "claimed")
        except service.ServiceError as exc:
            results[actor.username] = exc

    threads = [threading.Thread(target=claim, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [r for r in results.values() if isinstance(r, dict)]
    lost = [r for r in results.values() if isinstance(r, service.Conflict)]
    assert len(won) == 1 and len(lost) == 1, results
    assert won[0]["claimed_by"] in str(lost[0])
    assert [t.seq for t in records.list_transitions(door.engine)] == [1]


def test_covert_alerts_exist_only_for_users_with_the_right(
    door: service.Door, logged: dict[str, str]
) -> None:
    dora = _actor(door, "dora", "dispatcher")
    cleo = _actor(door, "cleo", "dispatcher", "investigator")  # receives and sees covert lists
    with pytest.raises(service.NotFound, match="no alert a-3"):
        _go(door, dora, logged, "a-3", "claimed")
    made = _go(door, cleo, logged, "a-3", "claimed")
    assert made["covert"] is True and made["hotlist"] == "ops"
    assert _events(door.redis) == []
    assert [e["alert_id"] for e in _events(door.redis, sinks.COVERT_DISPOSITION_EVENTS)] == ["a-3"]
    assert service.current_dispositions(door, dora) == []
    assert [s["alert_id"] for s in service.current_dispositions(door, cleo)] == ["a-3"]
    denied = [
        r
        for r in records.read_audit(door.engine)
        if r.username == "dora" and r.action == "alerts.disposition"
    ]
    assert denied[-1].outcome == "denied" and "not_found" in (denied[-1].reason or "")


def test_untrained_members_cannot_disposition(door: service.Door, logged: dict[str, str]) -> None:
    add_member(door.engine, "newbie", "dispatcher", trained=False)
    token = records.login(door.engine, "newbie", PASSWORD).token
    actor = door.enter(Acts.DISPOSITION, token, client="console")  # no justification asked
    with pytest.raises(service.Forbidden, match="no current ALPR training"):
        _go(door, actor, logged, "a-1", "claimed")
    assert records.list_transitions(door.engine) == []


def test_administrators_manage_the_lists_and_retired_codes_keep_their_label(
    door: service.Door, logged: dict[str, str]
) -> None:
    dora = _actor(door, "dora", "dispatcher")
    add_member(door.engine, "ada", "administrator")
    ada = door.enter(Acts.DISPOSITION_LISTS_EDIT, records.login(door.engine, "ada", PASSWORD).token)
    lists = service.disposition_lists(door, dora).to_json()
    assert [c["code"] for c in lists["reasons"]] == [
        "misread", "wrong_state", "entry_cleared", "vehicle_mismatch", "duplicate", "other",
    ]  # fmt: skip
    assert {"stop_made", "officer_dispatched", "bolo_broadcast", "no_action"} <= {
        c["code"] for c in lists["actions"]
    }
    with pytest.raises(service.Forbidden):
        service.add_disposition_code(door, dora, "reason", "plate_cover", "Plate covered")
    added = service.add_disposition_code(door, ada, "reason", "plate_cover", "Plate covered")
    assert added.find("reason", "plate_cover") is not None
    with pytest.raises(service.Conflict, match="already on the list"):
        service.add_disposition_code(door, ada, "reason", "plate_cover", "Again")
    _go(door, dora, logged, "a-1", "claimed")
    _go(door, dora, logged, "a-1", "rejected", reason="plate_cover")
    service.retire_disposition_code(door, ada, "reason", "plate_cover")
    after = service.disposition_lists(door, dora)
    assert "plate_cover" not in [c["code"] for c in after.to_json()["reasons"]]
    assert after.find("reason", "plate_cover").retired  # type: ignore[union-attr]
    _go(door, dora, logged, "a-2", "claimed")
    with pytest.raises(service.Invalid, match="not on the reason list"):
        _go(door, dora, logged, "a-2", "rejected", reason="plate_cover")
    assert records.current_state(door.engine, "a-1").reason == "plate_cover"  # type: ignore[union-attr]
    with pytest.raises(service.NotFound, match="no reason 'nope'"):
        service.retire_disposition_code(door, ada, "reason", "nope")
    with pytest.raises(service.Invalid, match="must be 1-32 lower-case"):
        service.add_disposition_code(door, ada, "action", "Bad Code", "x")
    edits = [r for r in records.read_audit(door.engine) if r.action == "dispositions.lists.edit"]
    assert [r.outcome for r in edits] == [
        "denied",
        "allowed",
        "failed",
        "allowed",
        "failed",
        "failed",
    ]


def test_hotlist_check_shows_the_measured_share_confirmed_by_match_kind(
    door: service.Door, logged: dict[str, str]
) -> None:
    add_member(door.engine, "dora", "dispatcher")
    records.add_entry(door.engine, "stolen", "ABC123", user="t", reason="stolen")
    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    confirm = [("claimed", {}), ("confirmed", {"action": "stop_made"})]
    reject = [("claimed", {}), ("rejected", {"reason": "misread"})]
    for i, (steps, kind) in enumerate(
        [(confirm, "exact"), (confirm, "exact"), (reject, "exact"), (reject, "ocr"),
         (confirm, "ocr"), ([("claimed", {}), ("dismissed", {})], "ocr")]
    ):  # fmt: skip
        dispose(
            door.engine, "dora", f"h-{i}", steps, start_ms=now - 60_000, hotlist="stolen", kind=kind
        )
    dispose(door.engine, "dora", "h-open", [("claimed", {})], start_ms=now, hotlist="stolen")
    add_member(door.engine, "ivy", "investigator")
    ivy = door.enter(
        Acts.HOTLIST_VIEW, records.login(door.engine, "ivy", PASSWORD).token,
        why=service.Justification(case_number="26-1"),
    )  # fmt: skip
    cost = service.check_policy(
        door, ivy, "stolen", lambda p: p, sample=records.simulated_sample(500)
    )
    measured = {m.match_kind: (m.confirmed, m.rejected, m.dismissed) for m in cost.measured}
    assert measured == {"exact": (2, 1, 0), "ocr": (1, 1, 1)}
    assert [round(m.share, 3) for m in cost.measured] == [0.667, 0.333]


def test_a_claim_that_loses_the_race_is_a_conflict_naming_the_winner(engine: Engine) -> None:
    """The loser waits for the winner's commit (PostgreSQL: on the unique (alert_id, seq)
    index, after reading the old state; SQLite: for the write lock), then gets a conflict."""
    for username in ("dora", "otto"):
        add_member(engine, username, "dispatcher")
    dora, otto = records.get_user(engine, "dora"), records.get_user(engine, "otto")
    ref = records.AlertRef(
        "a-race", "1764331200000-0", 1_764_331_200_000, "stolen", 1, "exact", False
    )
    rules = records.DispositionRules()
    outcome: list[BaseException | records.Transition] = []

    def second() -> None:
        try:
            with write_tx(engine) as conn:
                outcome.append(
                    records.record_transition(conn, ref, "claimed", user=otto, rules=rules)
                )
        except records.RecordsError as exc:
            outcome.append(exc)

    with write_tx(engine) as conn:
        records.record_transition(conn, ref, "claimed", user=dora, rules=rules)
        loser = threading.Thread(target=second)
        loser.start()
        loser.join(0.5)  # it is waiting for this transaction
        assert loser.is_alive()
    loser.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], records.ConflictError), outcome
    assert "dora" in str(outcome[0])
    assert [(t.seq, t.by) for t in records.list_transitions(engine)] == [(1, "dora")]
