"""Hotlists as records: CSV layouts, atomic versioned imports, entries, policies, notices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

import matchers
import records
import sinks
from records._schema import hotlist_versions

GOOD = """plate,state,reason,case_number,expires_at,category
ABC123,CA,stolen 2026-10-01,,,stolen_vehicle
7XYZ999,NV,stolen,,2030-01-01,stolen_vehicle
8BCD321,,,,,stolen_vehicle
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_plateflow_layout_without_database() -> None:
    category, entries = records.read_hotlist_csv(GOOD, "stolen")
    assert category == "stolen_vehicle"
    assert [e.plate for e in entries] == ["ABC123", "7XYZ999", "8BCD321"]
    assert entries[0].entry_id == "stolen:ABC123/CA"
    assert entries[1].expires_at_ms == 1893542400000  # the day after 2030-01-01, UTC
    assert entries[2].state is None
    assert all(isinstance(e, matchers.Entry) for e in entries)


def test_single_bad_row_message_names_line_and_reason() -> None:
    text = "plate,state\n" + "".join(f"AB{i:04d},CA\n" for i in range(7)) + "A,CA\n"
    with pytest.raises(
        records.HotlistImportError,
        match=r"^hotlist 'ncic' line 9: plate 'A' is shorter than 2 characters$",
    ) as info:
        records.read_hotlist_csv(text, "ncic")
    assert info.value.lines == [9]


def test_all_bad_rows_are_collected() -> None:
    text = (
        "plate,state,expires_at\n"
        "ABC123,CA,\n"
        ",CA,\n"  # line 3: no plate
        "ABCDEFGHIJKL,CA,\n"  # line 4: too long
        "XYZ789,CAL,\n"  # line 5: bad state
        "QRS456,CA,2026-13-45\n"  # line 6: bad date
        "ABC-123,CA,\n"  # line 7: repeats line 2 after normalisation
        "7AB*,CA,2030-01-01\n"  # line 8: pattern without a case number
    )
    with pytest.raises(records.HotlistImportError) as info:
        records.read_hotlist_csv(text, "mixed")
    assert info.value.lines == [3, 4, 5, 6, 7, 8]
    message = str(info.value)
    assert "has 6 bad rows (lines 3, 4, 5, 6, 7, 8)" in message
    assert "line 7: plate 'ABC123' state CA repeats line 2" in message
    assert "needs a case number" in message


def test_ncic_layout(tmp_path: Path) -> None:
    text = (
        "LIC,LIS,LIT,LIY,NIC,OCA\n"
        "ABC1234,TX,PC,2025,V123456789,SO-2026-0042\n"
        "ZZZ999,OK,TK,2024,V987654321,PD-77\n"
    )
    category, entries = records.read_hotlist_csv(text, "ncic", category="stolen vehicle")
    assert category == "stolen_vehicle"
    first = entries[0]
    assert (first.plate, first.state, first.case_number) == ("ABC1234", "TX", "SO-2026-0042")
    assert "NCIC V123456789" in first.reason and "plate type PC" in first.reason


def test_semicolon_layout_and_explicit_mapping() -> None:
    text = "PlateNumber;PlateState;Category\nAB 123;us-ma;Stolen Vehicle\nXY-987;NH;stolen\n"
    category, entries = records.read_hotlist_csv(text, "vendor")
    assert category == "stolen_vehicle"
    assert [(e.plate, e.state) for e in entries] == [("AB123", "MA"), ("XY987", "NH")]
    custom = "Tag,Region,Why\nQWE321,RI,warrant 55\n"
    _, mapped = records.read_hotlist_csv(
        custom, "custom", {"plate": "Tag", "state": "Region", "reason": "Why"}
    )
    assert (mapped[0].plate, mapped[0].state, mapped[0].reason) == ("QWE321", "RI", "warrant 55")
    with pytest.raises(records.HotlistImportError, match="matches no known layout"):
        records.read_hotlist_csv(custom, "custom")


def test_mixed_categories_need_an_explicit_one() -> None:
    text = "PlateNumber;PlateState;Category\nAB123;MA;stolen\nXY987;NH;amber\n"
    with pytest.raises(records.HotlistImportError, match="different categories"):
        records.read_hotlist_csv(text, "vendor")
    category, _ = records.read_hotlist_csv(text, "vendor", category="stolen_vehicle")
    assert category == "stolen_vehicle"
    with pytest.raises(records.HotlistImportError, match="not an official purpose"):
        records.read_hotlist_csv("plate,category\nAB123,parking\n", "x")


def test_load_hotlist_file_with_sibling_policy(tmp_path: Path) -> None:
    path = write(tmp_path, "amber.csv", "plate,state\nKID123,CA\n")
    (tmp_path / "amber.policy.json").write_text(
        json.dumps({"category": "amber_alert", "ocr_equivalents": 1, "priority": 0})
    )
    hotlist = records.load_hotlist_file(path)
    assert (hotlist.name, hotlist.category) == ("amber", "amber_alert")
    assert hotlist.policy.ocr_equivalents == 1 and hotlist.policy.priority == 0
    assert [e.plate for e in hotlist.entries] == ["KID123"]


def test_import_creates_versions_and_keeps_provenance(engine: Engine, tmp_path: Path) -> None:
    notices: list[str] = []
    first = records.import_hotlist(
        engine, "stolen", write(tmp_path, "stolen.csv", GOOD), user="alice", notify=notices.append
    )
    assert (first.version, first.created, first.added) == (1, True, 3)
    second_file = write(
        tmp_path,
        "stolen2.csv",
        "plate,state,reason,category\nABC123,CA,stolen 2026-10-01,stolen_vehicle\n"
        "8BCD321,,recovered?,stolen_vehicle\nNEW777,WA,,stolen_vehicle\n",
    )
    second = records.import_hotlist(
        engine, "stolen", second_file, user="bob", notify=notices.append
    )
    assert (second.version, second.previous_version) == (2, 1)
    assert (second.added, second.changed, second.removed, second.unchanged) == (1, 1, 1, 1)
    assert notices == ["stolen", "stolen"]

    live = records.get_hotlist(engine, "stolen")
    by_plate = {e.plate: e for e in live.entries}
    assert set(by_plate) == {"ABC123", "8BCD321", "NEW777"}
    assert by_plate["ABC123"].entered_by == "alice"  # unchanged rows keep their provenance
    assert by_plate["NEW777"].source == "stolen2.csv" and by_plate["NEW777"].source_line == 4
    old = records.get_hotlist(engine, "stolen", version=1)
    assert {e.plate for e in old.entries} == {"ABC123", "7XYZ999", "8BCD321"}
    assert [(c.version, c.change, c.by) for c in live.history] == [
        (1, "import", "alice"),
        (2, "import", "bob"),
    ]
    loaded = records.load_hotlists(engine)
    assert [(h.name, h.version, len(h.entries)) for h in loaded] == [("stolen", 2, 3)]


def test_bad_import_keeps_previous_version_live(engine: Engine, tmp_path: Path) -> None:
    records.import_hotlist(engine, "ncic", write(tmp_path, "ncic.csv", GOOD), user="alice")
    bad = write(tmp_path, "bad.csv", "plate,state\nGOOD11,CA\nA,CA\nGOOD22,CA\n,NV\n")
    notices: list[str] = []
    with pytest.raises(records.HotlistImportError) as info:
        records.import_hotlist(engine, "ncic", bad, user="mallory", notify=notices.append)
    assert info.value.lines == [3, 5]
    assert "previous version stays live" in str(info.value)
    assert notices == []
    (hotlist,) = records.load_hotlists(engine)
    assert hotlist.version == 1 and len(hotlist.entries) == 3
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(hotlist_versions)).scalar() == 1


def test_ncic_import_needs_a_category(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "ncic.csv", "LIC,LIS,NIC,OCA\nABC1234,TX,V1,OCA-1\n")
    with pytest.raises(records.HotlistImportError, match="no category"):
        records.import_hotlist(engine, "ncic", path, user="alice")
    result = records.import_hotlist(
        engine, "ncic", path, user="alice", category="stolen_plate", mapping="ncic"
    )
    assert result.category == "stolen_plate"
    (entry,) = records.load_hotlist(engine, "ncic").entries
    assert entry.case_number == "OCA-1"


def test_add_and_remove_entries(engine: Engine) -> None:
    notices: list[str] = []
    with pytest.raises(records.NotFoundError, match="no hotlist 'partials'"):
        records.add_entry(engine, "partials", "XYZ123", reason="x", user="ivan")
    # A partial pattern needs both a case number and an expiry (427.3(d)).
    for missing, case_number, expires_at in (
        ("a case number", None, "2030-01-01"),
        ("an expiry", "26-001", None),
    ):
        with pytest.raises(records.RecordsError, match=f"needs {missing}"):
            records.add_entry(
                engine,
                "partials",
                "7AB*",
                reason="hit and run",
                user="ivan",
                category="major_crime",
                case_number=case_number,
                expires_at=expires_at,
            )
    entry = records.add_entry(
        engine,
        "partials",
        "7ab*",
        reason="hit and run",
        user="ivan",
        category="major_crime",
        case_number="26-001",
        expires_at="2030-01-01",
        notify=notices.append,
    )
    assert entry.is_pattern and entry.plate == "7AB*" and entry.case_number == "26-001"
    records.add_entry(
        engine,
        "partials",
        "XYZ123",
        state="CA",
        reason="suspect",
        user="ivan",
        case_number="26-001",
        notify=notices.append,
    )
    records.add_entry(engine, "partials", "XYZ123", state="NV", reason="suspect", user="ivan")
    with pytest.raises(records.ConflictError, match="already on hotlist"):
        records.add_entry(engine, "partials", "XYZ 123", state="CA", reason="again", user="ivan")
    with pytest.raises(records.ConflictError, match="pass the state"):
        records.remove_entry(engine, "partials", "XYZ123", user="ivan")
    version = records.remove_entry(
        engine, "partials", "XYZ123", state="NV", user="ivan", notify=notices.append
    )
    assert version == 4
    assert notices == ["partials", "partials", "partials"]
    hotlist = records.load_hotlist(engine, "partials")
    assert sorted(e.plate for e in hotlist.entries) == ["7AB*", "XYZ123"]
    changes = records.hotlist_changes(engine)
    assert [c.change for c in changes] == ["add", "add", "add", "remove"]
    assert all(c.by == "ivan" for c in changes)
    audit = records.read_audit(engine, kind="hotlist")
    assert [r.action for r in audit] == ["hotlist.add"] * 3 + ["hotlist.remove"]


def test_notice_failure_is_reported_after_commit(engine: Engine, tmp_path: Path) -> None:
    def broken(name: str) -> None:
        raise ConnectionError("redis down")

    with pytest.raises(records.NotifyError, match="was saved, but the change notice"):
        records.import_hotlist(engine, "s", write(tmp_path, "s.csv", GOOD), user="a", notify=broken)
    assert records.load_hotlist(engine, "s").version == 1


def test_change_is_published_on_redis(
    engine: Engine, tmp_path: Path, redis_client: redis.Redis
) -> None:
    pubsub = redis_client.pubsub()
    pubsub.subscribe(sinks.HOTLISTS_CHANGED)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]

    def publish(name: str) -> None:
        redis_client.publish(sinks.HOTLISTS_CHANGED, name)

    records.import_hotlist(engine, "ncic", write(tmp_path, "n.csv", GOOD), user="a", notify=publish)
    message = pubsub.get_message(timeout=5)
    assert message is not None and message["data"] == b"ncic"
    pubsub.close()


def test_policy_cost_check_refuses_over_ceiling(engine: Engine, tmp_path: Path) -> None:
    plates = records.simulated_plates(200, seed=7)
    listed = plates[:20]
    path = write(tmp_path, "big.csv", "plate\n" + "\n".join(listed) + "\n")
    records.import_hotlist(engine, "big", path, user="admin", category="stolen_vehicle")
    sample = records.PlateSample(plates, "test traffic", reads_per_hour=3600)
    with pytest.raises(records.PolicyCostError, match=r"10\.000% of ordinary reads") as info:
        records.set_policy(
            engine, "big", {"differences": 0}, user="admin", sample=sample, ceiling=0.05
        )
    assert "360.0 alerts per hour" in str(info.value)
    assert records.load_hotlist(engine, "big").version == 1
    cost = records.set_policy(
        engine,
        "big",
        {"differences": 0, "priority": 1},
        user="admin",
        sample=sample,
        ceiling=0.05,
        force=True,
    )
    assert cost is not None and cost.over_ceiling and cost.hit_rate == pytest.approx(0.1)
    hotlist = records.load_hotlist(engine, "big")
    assert hotlist.version == 2 and hotlist.policy.priority == 1
    change = records.get_hotlist(engine, "big").history[-1]
    assert change.change == "policy" and change.detail["forced"] is True
    cheap = records.set_policy(
        engine, "big", {"covert": True}, user="admin", sample=sample, ceiling=0.5
    )
    assert cheap is not None and not cheap.over_ceiling
    (info_row,) = records.list_hotlists(engine)
    assert info_row.covert and info_row.entries == 20
    assert records.list_hotlists(engine, include_covert=False) == []


_plate = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=2, max_size=8)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            _plate,
            st.sampled_from(["", "CA", "NV", "TX"]),
            st.text(alphabet="abc xyz-", max_size=12),
        ),
        max_size=30,
        unique_by=lambda r: (r[0], r[1]),
    ),
    delimiter=st.sampled_from([",", ";"]),
)
def test_csv_round_trip(rows: list[tuple[str, str, str]], delimiter: str) -> None:
    text = (
        delimiter.join(["plate", "state", "reason"])
        + "\n"
        + "".join(delimiter.join(r) + "\n" for r in rows)
    )
    _, entries = records.read_hotlist_csv(text, "prop")
    assert [(e.plate, e.state or "", e.reason) for e in entries] == [
        (p, s, r.strip()) for p, s, r in rows
    ]
    assert len({e.entry_id for e in entries}) == len(entries)
