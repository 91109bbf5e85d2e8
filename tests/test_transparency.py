"""The public transparency page (427.2.1(e)(g), 427.6): records, figures, privacy, the page.

One world for the module: a store written through the real :class:`sinks.ReadStore` (known
reads and alerts, two old days purged by the real purge), searches run through the service's
acts, covert lists, releases, a legal hold, dispositions, the audits, a designee and a policy
published by an administrator. The figures are checked against independent counts (pyarrow
over the Parquet files, the audit log read back record by record), then the privacy rule: no
plate, read id, camera, username, user name, case or event number, description or covert
list name stored anywhere appears in either response.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

import records
import service
from api import create_app
from plateflow._cli_cases import record_purges
from plateflow.cli import main
from plateflow.settings import Settings
from records._schema import audit_log, hotlist_entries, release_requests, users
from service import Acts, Justification, SearchSpec
from service._transparency import cells
from sinks import ReadStore
from tests import records_support
from tests.cluster_support import free_port
from tests.dispositions_support import dispose
from tests.test_api_support import add_member, database_url_in, login_all
from tests.test_store_support import NOW, TARGET, alert, make_reads, stored, write_store

ADMIN, INVESTIGATOR, SUPERVISOR, AUDITOR = "adm.okafor2", "inv.quill7", "sup.vance9", "aud.tern5"
CASE, EVENT = "CASE-77-31337", "EV-55-8080"
DESCRIPTION = "canvass near the Quimby warehouse fire, unit 14"
COVERT = "op-nightjar-covert"
POLICY_TITLE = "Sample County Sheriff ALPR Policy 427"
POLICY_MD = f"""# {POLICY_TITLE}

## 427.1 Purpose
This policy governs the use of Automated License Plate Readers.

## 427.4 Retention
Reads are kept for one year, then purged unless they are evidence.
"""
DESIGNEES = {
    "administrator": ("Captain, Support Services", "Morgan Castellano"),
    "custodian": ("Records Supervisor", "Priya Ramanathan"),
}
MONTH = datetime.now(timezone.utc).strftime("%Y-%m")


@dataclass
class World:
    client: TestClient
    engine: Engine
    settings: Settings
    data_dir: Path
    door: service.Door


def _actor(door: service.Door, act: service.Act, token: str, **why: str) -> service.Actor:
    return door.enter(act, token, why=Justification(**why), client="test")


def _search(door: service.Door, token: str, kind: str, **why: str) -> service.SearchPage:
    start, end = NOW - timedelta(days=25), NOW + timedelta(minutes=1)
    specs = {
        "plate": lambda: SearchSpec.plate_history(TARGET, start, end),
        "partial": lambda: SearchSpec.partial("7AB?123", start, end),
        "canvass": lambda: SearchSpec.canvass(  # a canvass may reach back 3 days at most
            end - timedelta(days=2), end, center=(38.5816, -121.4944), radius_m=500
        ),
    }
    act = service.search_act(kind)
    return service.search_page(door, _actor(door, act, token, **why), act, specs[kind])


def _extra_alerts(store: ReadStore, reads: list[dict[str, Any]]) -> None:
    """Seven more alerts of a general list, one repeat sighting and three covert alerts."""
    recent = [r for r in reads if r["ts"] > int((NOW - timedelta(days=3)).timestamp() * 1000)]
    general = [alert(r, "stolen-autos", covert=False, entry_id=f"e-g{i}") for i, r in
               enumerate(recent[:7])]  # fmt: skip
    sighting = {**alert(recent[7], "stolen-autos", covert=False, entry_id="e-g0"),
                "sighting_of": general[0]["alert_id"]}  # fmt: skip
    covert = [alert(r, COVERT, covert=True, entry_id=f"e-c{i}") for i, r in
              enumerate(recent[8:11])]  # fmt: skip
    store.write_alerts(1, "2-0", [*general, sighting, *covert])


def _seed_records(engine: Engine) -> None:
    records.create_hotlist(engine, "stolen-autos", category="stolen_vehicle", user="setup")
    for i in range(6):
        records.add_entry(
            engine,
            "stolen-autos",
            f"STL{i}42",
            user="setup",
            reason="stolen",
            case_number=f"SA-{i}",
        )
    records.create_hotlist(engine, "amber", category="missing_person", user="setup")
    records.add_entry(engine, "amber", "AMB7731", user="setup", reason="amber alert")
    records.create_hotlist(
        engine, COVERT, category="wanted_vehicle", user="setup", policy={"covert": True}
    )
    records.add_entry(engine, COVERT, "NJT4411", user="setup", reason="watch", case_number="CV-9")
    decided = int(NOW.timestamp() * 1000)
    confirm = [("claimed", {}), ("confirmed", {"action": "stop_made"})]
    reject = [("claimed", {}), ("rejected", {"reason": "misread"})]
    for i in range(5):
        dispose(engine, SUPERVISOR, f"a-x{i}", confirm, start_ms=decided, hotlist="stolen-autos")
    for i in range(2):
        dispose(engine, SUPERVISOR, f"a-y{i}", reject, start_ms=decided, hotlist="amber")
    for i in range(3):
        dispose(engine, SUPERVISOR, f"a-z{i}", confirm, start_ms=decided, hotlist=COVERT)
    dispose(engine, SUPERVISOR, "a-w0", [("claimed", {})], start_ms=decided)  # not decided
    for i in range(6):
        request = records.create_release_request(
            engine,
            requesting_agency="Neighbouring County Sheriff",
            law_enforcement=True,
            requester=f"Det. Halvorsen-{i}",
            purpose=f"robbery investigation RB-{i}",
            case_number=f"REL-CASE-{i}",
            by=INVESTIGATOR,
        )
        records.decide_release(
            engine, request.id, approve=i < 5, reason="meets 427.7", by=SUPERVISOR
        )


@pytest.fixture(name="world", scope="module")
def world_fixture(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("transparency")
    url = database_url_in(tmp)
    engine = records_support.fresh(url)
    for username, role in (
        (ADMIN, "administrator"),
        (INVESTIGATOR, "investigator"),
        (SUPERVISOR, "records_supervisor"),
        (AUDITOR, "auditor"),
    ):
        add_member(engine, username, role)
    data_dir = tmp / "data"
    reads = make_reads()
    store = write_store(data_dir, reads)
    _extra_alerts(store, reads)
    _seed_records(engine)
    store.purge(datetime.now(timezone.utc), by="os:test@host")
    settings = Settings.load(environ={}, data_dir=str(data_dir), database_url=url)
    assert record_purges(engine, store, settings) == 2
    with TestClient(create_app(settings, redis_url, engine=engine)) as client:
        tokens = login_all(client, [ADMIN, INVESTIGATOR, SUPERVISOR, AUDITOR])
        door: service.Door = client.app.state.door  # type: ignore[attr-defined]
        inv = tokens[INVESTIGATOR]
        for _ in range(5):
            _search(door, inv, "plate", case_number=CASE)
        act = Acts.PLATE_HISTORY
        actor = _actor(door, act, inv, case_number=CASE)
        spec = lambda: SearchSpec.plate_history(  # noqa: E731
            TARGET, NOW - timedelta(days=25), NOW + timedelta(minutes=1)
        )
        first = service.search_page(door, actor, act, spec, page_size=3)
        assert first.next_cursor  # the second page is the same search: not counted again
        service.search_page(door, actor, act, spec, page_size=3, cursor=first.next_cursor)
        for _ in range(2):
            _search(door, inv, "partial", event_number=EVENT)
        _search(door, inv, "canvass", description=DESCRIPTION)
        with pytest.raises(service.ServiceError):
            _search(door, inv, "plate")  # no justification: refused
        sup = tokens[SUPERVISOR]
        held = next(r["read_id"] for r in reads if r["plate"] == TARGET)
        service.place_hold(
            door,
            _actor(door, Acts.HOLD_PLACE, sup, case_number="HOLD-CASE-4242"),
            reason="evidence",
            build=lambda: None,
            read_ids=[held],
        )
        aud = tokens[AUDITOR]
        quarter = f"{date.today().year}Q{(date.today().month - 1) // 3 + 1}"
        service.audit_report(
            door, _actor(door, Acts.AUDIT_REPORT, aud, description=DESCRIPTION), quarter=quarter
        )
        service.verify_audit(door, _actor(door, Acts.AUDIT_VERIFY, aud, description=DESCRIPTION))
        policy = tmp / "alpr-policy.md"
        policy.write_text(POLICY_MD, encoding="utf-8")
        admin = _actor(door, Acts.TRANSPARENCY_PUBLISH, tokens[ADMIN], description=DESCRIPTION)
        service.publish_policy(
            door, admin, b"# Old policy\n\nsuperseded", filename="old.md",
            effective_on=date(2025, 1, 1),
        )  # fmt: skip
        service.publish_policy(
            door, admin, policy.read_bytes(), filename=policy.name, effective_on=date(2026, 1, 1)
        )
        for role, (title, name) in DESIGNEES.items():
            service.designate(
                door, admin, role=role, title=title, name=name, since=date(2026, 2, 1)
            )
        yield World(client, engine, settings, data_dir, door)
    engine.dispose()


def _exact(world: World) -> dict[str, Any]:
    """The figures with no small cell hidden, to compare with the independent counts."""
    config = dataclasses.replace(world.door.config, transparency_min_cell=1)
    return service.transparency(service.Door(world.engine, config))


def test_the_figures_match_the_store_and_the_audit_log(world: World) -> None:
    page = _exact(world)
    rows = stored(world.data_dir)
    by_month = Counter(
        datetime.fromtimestamp(r["ts"] / 1000, tz=timezone.utc).strftime("%Y-%m") for r in rows
    )
    assert page["reads"]["total"] == len(rows) == len(make_reads()) - 50  # two days purged
    assert page["reads"]["by_month"] == dict(sorted(by_month.items()))
    cutoff = int((datetime.now(timezone.utc) - timedelta(days=30)).timestamp() * 1000)
    assert page["cameras_reporting_30d"] == len({r["camera_id"] for r in rows if r["ts"] >= cutoff})
    alerts = [a for a in stored(world.data_dir, "alerts") if not a["covert"]]
    months = Counter(
        datetime.fromtimestamp(a["ts"] / 1000, tz=timezone.utc).strftime("%Y-%m")
        for a in alerts
        if a["sighting_of"] is None
    )
    assert sum(months.values()) == 8  # one from write_store, seven more; sighting not counted
    assert {m: n for m, n in page["alerts"]["by_month"].items() if n} == dict(months)
    log = records.read_audit(world.engine)
    actions = {"reads.plate", "reads.partial", "reads.canvass", "reads.past"}
    searches = [
        r for r in log
        if r.action in actions and r.outcome == "allowed" and not r.terms.get("cursor")
        and r.terms.get("stage") != "result"
    ]  # fmt: skip
    assert page["searches"]["total"] == len(searches) == 9
    assert page["searches"]["by_month"][MONTH] == 9
    assert page["searches"]["by_justification"] == {"case": 6, "event": 2, "description": 1}
    assert page["searches"]["by_kind"] == {"plate": 6, "partial": 2, "canvass": 1, "past": 0}
    assert page["searches"]["refused"] == 1
    assert page["releases"] == {"requested": 6, "approved": 5, "denied": 1, "fulfilled": 0}
    assert page["dispositions"]["outcomes"] == ["confirmed", "rejected"]
    assert page["dispositions"]["by_month"][MONTH] == {"confirmed": 5, "rejected": 2}
    assert page["hotlists"]["by_category"] == [
        {"category": "missing_person", "lists": 1, "entries": 1},
        {"category": "stolen_vehicle", "lists": 1, "entries": 6},
    ]
    assert page["hotlists"]["not_shown"] == {"lists": 1}
    assert page["legal_holds_open"] == 1
    purges = records.list_purges(world.engine)
    assert page["purges"]["partitions"] == len(purges) == 2
    assert page["purges"]["reads"] == sum(p.rows for p in purges) == 50
    today = date.today().isoformat()
    assert page["audit"] == {
        "last_report_on": today,
        "last_report_chain_verified": True,
        "last_verification_on": today,
        "chain_verified": True,
    }
    assert page["retention_days"] == 365


def test_policy_and_designees_are_published_by_an_audited_act(world: World) -> None:
    page = world.client.get("/v1/transparency").json()
    current = page["policy"]["current"]
    assert current["version"] == 2 and current["title"] == POLICY_TITLE
    assert current["effective_on"] == "2026-01-01" and current["text"] == POLICY_MD
    assert [p["version"] for p in page["policy"]["history"]] == [1, 2]
    assert page["designees"]["current"]["administrator"] == {
        "role": "administrator",
        "role_title": "ALPR administrator",
        "title": "Captain, Support Services",
        "name": "Morgan Castellano",
        "since": "2026-02-01",
    }
    doc = world.client.get(current["url"])
    assert doc.status_code == 200 and doc.text == POLICY_MD
    assert doc.headers["content-type"].startswith("text/markdown")
    assert world.client.get("/transparency/policy/9").status_code == 404
    assert world.client.get("/transparency/policy/x1").status_code == 404
    assert (
        world.client.get("/transparency/policy/%C2%B2").status_code == 404
    )  # "²" is a digit to str.isdigit
    published = [r for r in records.read_audit(world.engine) if r.action == "transparency.publish"]
    assert {r.username for r in published} == {ADMIN} and len(published) == 4  # record + attempt
    assert published[-1].outcome == "allowed" and published[-1].description == DESCRIPTION
    designees = records.list_designees(world.engine)
    assert [d.recorded_by for d in designees] == [ADMIN, ADMIN]
    with world.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError):
        conn.execute(sa.text("DELETE FROM transparency_designees"))


def test_publishing_needs_the_administrator_and_a_real_document(world: World) -> None:
    door = world.door
    tokens = login_all(world.client, [INVESTIGATOR, ADMIN])
    with pytest.raises(service.Forbidden):
        _actor(door, Acts.TRANSPARENCY_DESIGNATE, tokens[INVESTIGATOR], case_number=CASE)
    admin = _actor(door, Acts.TRANSPARENCY_PUBLISH, tokens[ADMIN], description=DESCRIPTION)
    with pytest.raises(records.RecordsError, match="not Markdown or PDF"):
        service.publish_policy(door, admin, b"x", filename="p.docx", effective_on=date.today())
    with pytest.raises(records.RecordsError, match="not a PDF"):
        service.publish_policy(door, admin, b"hello", filename="p.pdf", effective_on=date.today())
    with pytest.raises(records.RecordsError, match="designee role"):
        service.designate(door, admin, role="chief", title="t", name="n", since=date.today())


def test_small_counts_are_hidden_under_the_minimum_cell(world: World) -> None:
    page = world.client.get("/v1/transparency").json()
    few = {"fewer_than": 5}
    assert page["min_cell"] == 5
    searches = page["searches"]
    assert searches["total"] == 9
    assert searches["by_justification"] == {"case": 6, "event": few, "description": few}
    assert searches["by_kind"] == {"plate": 6, "partial": few, "canvass": few, "past": 0}
    assert searches["refused"] == few and page["legal_holds_open"] == few
    assert page["releases"] == {"requested": 6, "approved": 5, "denied": few, "fulfilled": 0}
    assert page["dispositions"]["by_month"][MONTH] == {"confirmed": 5, "rejected": few}
    assert page["purges"]["partitions"] == few and page["purges"]["reads"] == 50
    assert page["hotlists"]["not_shown"] == {"lists": few}
    html = world.client.get("/transparency").text
    assert "fewer than 5" in html


def test_one_hidden_cell_never_stands_alone_beside_a_total() -> None:
    assert cells({"a": 10, "b": 3, "c": 7}, 5) == {
        "a": 10, "b": {"fewer_than": 5}, "c": {"fewer_than": 5}
    }  # fmt: skip
    assert cells({"a": 10, "b": 3, "c": 0}, 5, total_shown=False) == {
        "a": 10, "b": {"fewer_than": 5}, "c": 0
    }  # fmt: skip
    assert cells({"a": 10, "b": 3, "c": 4}, 5) == {
        "a": 10, "b": {"fewer_than": 5}, "c": {"fewer_than": 5}
    }  # fmt: skip


def _sensitive(world: World) -> set[str]:
    """Every plate, read id, camera, username, user name, case and event number, description,
    requester and covert list name held anywhere."""
    values: set[str] = {COVERT}
    for kind in ("reads", "alerts"):
        for row in stored(world.data_dir, kind):
            values |= {row["plate"], row["read_id"], row["camera_id"]}
            values.add(row.get("plate_raw") or row["plate"])
    with world.engine.connect() as conn:
        for row in conn.execute(sa.select(users.c.username, users.c.name)):
            values |= set(row)
        for row in conn.execute(sa.select(hotlist_entries.c.plate, hotlist_entries.c.case_number)):
            values |= {v for v in row if v}
        for row in conn.execute(
            sa.select(release_requests.c.case_number, release_requests.c.requester,
                      release_requests.c.purpose)
        ):  # fmt: skip
            values |= {v for v in row if v}
        for row in conn.execute(
            sa.select(audit_log.c.case_number, audit_log.c.event_number, audit_log.c.description)
        ):
            values |= {v for v in row if v}
    values |= {h.case_number for h in ReadStore(world.data_dir).holds(include_released=True)}
    return {v for v in values if v}


def test_no_plate_read_person_case_or_covert_list_is_in_either_response(world: World) -> None:
    secrets = _sensitive(world)
    assert {TARGET, CASE, EVENT, ADMIN, COVERT, "HOLD-CASE-4242", "NJT4411"} <= secrets
    assert len(secrets) > 2000
    for path in ("/transparency", "/v1/transparency"):
        resp = world.client.get(path)
        assert resp.status_code == 200
        text = resp.text if path == "/transparency" else orjson.dumps(resp.json()).decode()
        leaked = sorted(s for s in secrets if s in text)
        assert leaked == [], f"{path} shows {leaked[:10]}"


def test_the_page_is_computed_once_per_interval(world: World) -> None:
    now = [0.0]
    cache = service.TransparencyCache(world.door, 900, clock=lambda: now[0])
    first = cache.get()
    threads = [threading.Thread(target=cache.get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get() is first and cache.computations == 1
    html = cache.rendered()[1]
    assert cache.rendered()[1] is html  # rendered once per computation, not per request
    now[0] = 901.0
    assert cache.get() is not first and cache.computations == 2


def test_the_page_turned_off_is_404(world: World, redis_url: str) -> None:
    off = world.settings.replace(transparency_page=False)
    with TestClient(create_app(off, redis_url, engine=world.engine)) as client:
        for path in ("/transparency", "/v1/transparency", "/transparency/policy/1"):
            assert client.get(path).status_code == 404
    spec = world.client.get("/openapi.json").json()
    assert "one unauthenticated data route" in spec["info"]["description"]
    assert (
        "one unauthenticated data route" in spec["paths"]["/v1/transparency"]["get"]["description"]
    )


def test_the_page_opens_in_chromium_with_everything_local(world: World, redis_url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    port = free_port()
    app = create_app(world.settings, redis_url, engine=world.engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--disable-quic",
                ],
            )  # fmt: skip
            page = browser.new_page()
            requested: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            page.goto(f"{base}/transparency")
            text = page.inner_text("body")
            assert POLICY_TITLE in text and "427.4 Retention" in text
            assert "Morgan Castellano" in text and "Captain, Support Services" in text
            assert "Priya Ramanathan" in text and "Custodian of records" in text
            assert page.locator("svg").count() >= 4
            assert re.search(r"fewer than 5", text)
            assert all(u.startswith(base) for u in requested), requested
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_command_line_publishes_designates_and_shows(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = ["--database-url", str(world.engine.url.render_as_string(hide_password=False)),
             "--data-dir", str(world.data_dir)]  # fmt: skip
    assert main(["transparency", "show", *flags]) == 0  # public figures: no session needed
    shown = capsys.readouterr().out
    assert "Morgan Castellano" in shown and POLICY_TITLE in shown and "fewer than 5" in shown
    why = ["--description", DESCRIPTION]
    assert main(["transparency", "designate", "--role", "custodian", "--title", "Records "
                 "Manager", "--name", "Dana Whitfield", *why, *flags]) == 1  # fmt: skip
    assert "log in first" in capsys.readouterr().err + capsys.readouterr().out
    token = login_all(world.client, [ADMIN])[ADMIN]
    monkeypatch.setenv("PLATEFLOW_SESSION_TOKEN", token)
    pdf = tmp_path / "policy.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% a tiny stand-in for the adopted policy\n%%EOF\n")
    today = date.today().isoformat()
    assert main(["transparency", "publish", str(pdf), "--effective", today, "--title",
                 "Adopted ALPR policy", *why, *flags]) == 0  # fmt: skip
    assert main(["transparency", "designate", "--role", "custodian", "--title", "Records "
                 "Manager", "--name", "Dana Whitfield", *why, *flags]) == 0  # fmt: skip
    page = service.transparency(world.door)
    current = page["policy"]["current"]
    assert current["title"] == "Adopted ALPR policy" and current["media_type"] == "application/pdf"
    assert "text" not in current
    assert page["designees"]["current"]["custodian"]["name"] == "Dana Whitfield"
    assert service.policy_file(world.door, current["version"]).content == pdf.read_bytes()
    html = service.render_transparency_html(page)
    assert "Dana Whitfield" in html and f'href="/transparency/policy/{current["version"]}"' in html
