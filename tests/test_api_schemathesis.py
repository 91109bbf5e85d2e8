"""Schemathesis against the OpenAPI document: no generated request may get a 5xx answer.

The API runs in-process on a prepared database with a logged-in user holding every role, so
generated requests reach the endpoints' logic (and not only the 401 of the guard). Logout,
password and disable are left out: they would end that session half-way through the run; the
alert stream too, an answer that never ends.
Needs the ``schemathesis`` package (a dev dependency).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import records
from api import create_app
from plateflow.settings import Settings
from tests.records_support import release_request
from tests.test_api_support import PARTITIONS, PASSWORD, TOKEN

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

_STATE: dict[str, Any] = {}
_EXCLUDED = (
    "/v1/auth/logout",
    "/v1/users/{username}/password",
    "/v1/users/{username}/disable",
    "/v1/alerts/stream",  # never ends; its refusals are tested in tests/test_api_stream.py
)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Any:
    data_dir: Path = tmp_path_factory.mktemp("st")
    settings_ = Settings.load(
        environ={},
        data_dir=str(data_dir),
        ingest_tokens=TOKEN,
        partitions=str(PARTITIONS),
        database_url=f"sqlite:///{data_dir / 'st.db'}",
    )
    engine = records.connect(settings_.effective_database_url)
    records.add_user(
        engine,
        username="root",
        name="Rae Root",
        agency="Test PD",
        job_title="all roles",
        roles=list(records.ROLES),
        password=PASSWORD,
        by="setup",
    )
    records.record_training(
        engine,
        "root",
        course="ALPR policy 427",
        by="setup",
        completed_on=datetime.now(timezone.utc).date(),
        expires_on=None,
    )
    records.create_hotlist(engine, "stolen", category="stolen_vehicle", user="setup")
    release_request(engine, "setup")
    _STATE["token"] = records.login(engine, "root", PASSWORD).token
    app = create_app(settings_, redis_url, engine=engine)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=list(_EXCLUDED))


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    headers = {"Authorization": f"Bearer {_STATE['token']}", "X-Plateflow-Token": TOKEN}
    case.call_and_validate(headers=headers, checks=[not_a_server_error])


def test_no_server_errors_in_sequences_of_calls(api_schema: Any) -> None:
    """Stateful: Schemathesis chains operations by the links it infers from the schema (a
    release request created, then read and decided; a hotlist made, then its entries...), so
    the later calls reach objects that exist; no step may get a 5xx."""
    base = api_schema.exclude(path=list(_EXCLUDED)).as_state_machine()
    headers = {"Authorization": f"Bearer {_STATE['token']}", "X-Plateflow-Token": TOKEN}
    called: list[str] = []

    class Sequences(base):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            called.append(f"{case.method} {case.path}")
            return {"headers": headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=[not_a_server_error])

    Sequences.run(
        settings=settings(
            max_examples=10,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # not vacuous: sequences ran, and some step reached an object an earlier step made
    assert len(called) > 10 and any("{" in step for step in called), called
