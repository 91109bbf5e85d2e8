"""``verify_chain`` stays bounded whatever the head says: a forged head numbered far beyond
the records is one finding, not a finding per number it claims."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import records
from records._schema import audit_head


def test_a_head_claiming_a_huge_sequence_is_one_bounded_finding(engine: Engine) -> None:
    for n in range(3):
        records.record_denied(engine, "reads.plate", reason=f"no_login: {n}")
    with engine.begin() as conn:
        conn.execute(sa.update(audit_head).values(seq=200_000))
    started = time.perf_counter()
    result = records.verify_chain(engine)
    assert time.perf_counter() - started < 5
    assert not result.ok and result.head_seq == 200_000 and result.records == 3
    [problem] = result.problems
    assert (problem.seq, problem.kind) == (4, "deleted")
    assert "records 4 to 200000" in problem.detail
    assert "BROKEN" in result.describe()
    # A short gap still names every missing record.
    with engine.begin() as conn:
        conn.execute(sa.update(audit_head).values(seq=6))
    assert records.verify_chain(engine).deleted == [4, 5, 6]
