"""Processes that start together on one records database create its tables in turn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

import records


def test_processes_starting_together_create_the_tables_in_turn(tmp_path: Path) -> None:
    # A cluster's flow processes open a new records database at the same moment; a table check
    # that then upgrades to a write used to fail at once with "database is locked".
    for trial in range(3):
        url = f"sqlite:///{tmp_path / f'records-{trial}.db'}"
        code = f"import records; records.connect({url!r}).dispose()"
        starts = [
            subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)
        ]
        errors = [p.communicate(timeout=120)[1].decode()[-500:] for p in starts]
        assert [p.returncode for p in starts] == [0] * 4, errors
    engine = records.connect(url)
    assert set(records.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
