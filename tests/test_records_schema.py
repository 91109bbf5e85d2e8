"""Processes that start together on one records database create its tables in turn."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

import records
from tests.records_support import start_together


def test_processes_starting_together_create_the_tables_in_turn(tmp_path: Path) -> None:
    # A cluster's flow processes open a new records database at the same moment; a table check
    # that then upgrades to a write used to fail at once with "database is locked".
    for trial in range(3):
        url = f"sqlite:///{tmp_path / f'records-{trial}.db'}"
        start_together(f"import records; records.connect({url!r}).dispose()", 4)
    engine = records.connect(url)
    assert set(records.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
