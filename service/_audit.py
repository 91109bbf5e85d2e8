"""The audit log as acts (427.5): read it, verify its hash chain, write the quarterly report.

Reading the audit log is itself an audited act, like every other access: the auditor is a
named, trained member with a justification.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import records
from service._acts import Acts
from service._door import Actor, Door
from service._errors import Invalid
from service._window import utc_window

__all__ = ["audit_report", "read_audit", "verify_audit"]


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def read_audit(
    door: Door,
    actor: Actor,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    username: str | None = None,
    kind: str | None = None,
    limit: int | None = 1000,
) -> list[records.AuditRecord]:
    """Audit records in sequence order, filtered by time, user and kind; with ``limit`` the
    first ``limit`` of them."""
    terms = {"username": username, "kind": kind, "limit": limit}

    def fetch() -> list[records.AuditRecord]:
        return records.read_audit(
            door.engine,
            start_ms=start_ms,
            end_ms=end_ms,
            username=username,
            kind=kind,
            limit=limit,
        )

    return door.read_all(actor, Acts.AUDIT_READ, fetch, terms)


def verify_audit(
    door: Door, actor: Actor, *, anchors: Mapping[int, str] | None = None
) -> records.VerifyResult:
    """Walk the whole chain: every edited, inserted and deleted record, and the anchors (a
    head printed by an earlier report) compared."""

    def run(access: records.AuditedAccess) -> records.VerifyResult:
        result = records.verify_chain(door.engine, anchors=dict(anchors) if anchors else None)
        access.result_count = result.records
        access.terms["ok"] = result.ok  # the public page shows whether the last check held
        return result

    return door.read(actor, Acts.AUDIT_VERIFY, run, {"anchors": len(anchors or {})})


def verify_audit_scheduled(door: Door, operator: str, client: str) -> records.VerifyResult:
    """The scheduler's chain check (a CronJob, no person's session): the same walk as
    :func:`verify_audit`, recorded under ``operator`` (the OS identity of the job). It reads no
    record's content for anyone, only whether the chain holds, so it needs no login; the
    verdict is what the job's exit code and ``/metrics`` carry."""
    act = Acts.AUDIT_VERIFY
    result = records.verify_chain(door.engine)
    with door.engine.begin() as conn:
        records.append_audit(
            conn,
            username=operator,
            action=act.action,
            kind=act.kind,
            outcome="allowed",
            terms={"scheduled": True, "ok": result.ok},
            description="scheduled verification of the audit chain (427.5(c))",
            result_count=result.records,
            client=client,
        )
    return result


def audit_report(
    door: Door,
    actor: Actor,
    *,
    quarter: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    output: str | None = None,
) -> records.Report:
    """The quarterly report (427.5(c)) for ``quarter`` (like 2026Q4), or ``[start, end)``."""
    act = Acts.AUDIT_REPORT
    if start is not None and end is not None:
        start, end = door.checked(actor, act, lambda: utc_window(start, end))
    elif quarter is None:
        error = Invalid("give quarter (like 2026Q4), or both start and end", "quarter")
        raise door.deny(actor, act, error)

    def run(access: records.AuditedAccess) -> records.Report:
        report = records.audit_report(door.engine, quarter, start_ms=_ms(start), end_ms=_ms(end))
        access.result_count = report.inquiries
        access.terms["chain_ok"] = report.chain.ok  # shown on the public transparency page
        return report

    terms = {"quarter": quarter, "output": output}
    return door.read(actor, act, run, terms)
