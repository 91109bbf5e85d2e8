"""``plateflow dispositions ...`` and the measured share in ``plateflow hotlist check``, run
through argparse on the real database and Redis, as the logged-in user."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import redis
from sqlalchemy.engine import Engine

import records
import service
import sinks
from plateflow import _cli_dispositions
from tests import test_records_cli as base
from tests.dispositions_support import alert, dispose, publish
from tests.test_api_support import add_member

WHY = base.WHY


@pytest.fixture()
def cli(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The suite's CLI runner (tests/test_records_cli.py) with the dispositions commands too."""
    monkeypatch.setattr(base, "_MODULES", (*base._MODULES, _cli_dispositions))
    return request.getfixturevalue("run")


run = base.run  # the fixture `cli` builds on


def test_administrators_manage_the_lists_from_the_command_line(cli: Any, engine: Engine) -> None:
    add_member(engine, "ada", "administrator")
    add_member(engine, "dora", "dispatcher")
    base.login(cli, "dora")
    code, out = cli("dispositions", "lists")
    assert code == 0 and "misread" in out and "officer_dispatched" in out
    with pytest.raises(Exception, match="may not 'users:manage'"):
        cli("dispositions", "add-reason", "plate_cover", "Plate covered")
    base.login(cli, "ada")
    code, out = cli("dispositions", "add-reason", "plate_cover", "Plate covered", "--needs-text")
    assert code == 0 and "added reason 'plate_cover'" in out and "Plate covered" in out
    code, out = cli("dispositions", "retire-action", "bolo_broadcast")
    assert code == 0 and "bolo_broadcast" not in out.split("past dispositions keep it")[1]
    code, out = cli("dispositions", "lists", "--retired")
    assert "bolo_broadcast" in out
    assert records.disposition_lists(engine).find("action", "bolo_broadcast").retired  # type: ignore[union-attr]
    edits = [r for r in records.read_audit(engine) if r.action == "dispositions.lists.edit"]
    assert [(r.username, r.outcome) for r in edits] == [
        ("dora", "denied"), ("ada", "allowed"), ("ada", "allowed"),
    ]  # fmt: skip
    assert all(r.client and r.client.startswith("cli:") for r in edits)


def test_hotlist_check_prints_the_measured_share_confirmed(cli: Any, engine: Engine) -> None:
    add_member(engine, "ada", "administrator")
    add_member(engine, "dora", "dispatcher")
    records.create_hotlist(engine, "ncic", category="stolen_vehicle", user="setup")
    records.add_entry(engine, "ncic", "ABC123", user="setup", reason="stolen")
    base.login(cli, "ada")
    code, out = cli("hotlist", "check", "ncic", "--sample", "300", *WHY)
    assert code == 0 and "no hit of 'ncic' has been dispositioned yet" in out
    now = int(datetime.now(timezone.utc).timestamp() * 1000) - 60_000
    for i, outcome in enumerate(["confirmed", "confirmed", "confirmed", "rejected"]):
        extra = {"action": "stop_made"} if outcome == "confirmed" else {"reason": "misread"}
        dispose(engine, "dora", f"a-{i}", [("claimed", {}), (outcome, extra)], start_ms=now)
    dispose(engine, "dora", "a-9", [("claimed", {}), ("dismissed", {})], start_ms=now, kind="ocr")
    code, out = cli("hotlist", "check", "ncic", "--sample", "300", *WHY)
    assert code == 0 and "would alert on" in out
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()]
    rows = {row[0]: row for row in cells if row and row[0] in ("exact", "ocr")}
    assert rows["exact"][1:] == ["4", "3", "1", "0", "75.0%"]
    assert rows["ocr"][1:] == ["1", "0", "0", "1", "0.0%"]


def test_a_hit_is_moved_and_shown_from_the_command_line(
    cli: Any, engine: Engine, redis_client: redis.Redis
) -> None:
    add_member(engine, "dora", "dispatcher")
    ids = publish(redis_client, alert("a-c1", hotlist="ncic", kind="ocr"))
    base.login(cli, "dora")
    code, out = cli("dispositions", "move", "a-c1", "--log-id", ids["a-c1"], "--to", "claimed")
    assert code == 0 and "claimed" in out and "dora" in out
    with pytest.raises(service.Invalid, match="needs the action taken"):
        cli("dispositions", "move", "a-c1", "--log-id", ids["a-c1"], "--to", "confirmed")
    code, out = cli(
        "dispositions", "move", "a-c1", "--log-id", ids["a-c1"], "--to", "confirmed",
        "--action", "no_action",
    )  # fmt: skip
    assert code == 0 and "confirmed" in out and "no_action" in out
    code, out = cli("dispositions", "current")
    assert code == 0 and "a-c1" in out and "confirmed" in out and "ocr" in out
    with pytest.raises(service.Invalid, match="--since 'today' is not a time"):
        cli("dispositions", "current", "--since", "today")
    assert redis_client.xlen(sinks.DISPOSITION_EVENTS) == 2
    moves = [r for r in records.read_audit(engine) if r.action == "alerts.disposition"]
    assert [r.outcome for r in moves] == ["allowed", "failed", "allowed"]
