"""The quarterly audit report as one CSV of ``section,key,value,detail`` rows (the page is
:mod:`records._report_html`). Every text cell is escaped against formula injection."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from plateflow.csvcells import safe_row
from records._audit import iso_utc
from records._report import Report


class _SafeWriter:
    """A csv writer whose text cells cannot run as spreadsheet formulas (usernames, reasons
    and hotlist names come from people: :func:`plateflow.csvcells.safe_row`)."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow(safe_row(row))


def render_csv(report: Report) -> str:
    """The report as one long CSV: ``section,key,value,detail`` rows."""
    out = io.StringIO()
    w = _SafeWriter(csv.writer(out, lineterminator="\n"))
    w.writerow(("section", "key", "value", "detail"))
    r = report
    w.writerow(("period", r.label, f"{iso_utc(r.start_ms)}/{iso_utc(r.end_ms)}", "end exclusive"))
    for u in r.inquiries_by_user:
        w.writerow(
            (
                "inquiries_per_user",
                u.username,
                u.allowed + u.denied + u.failed,
                f"allowed={u.allowed} denied={u.denied} failed={u.failed} results={u.results} "
                f"agency={u.agency}",
            )
        )
    for p in r.inquiries_by_purpose:
        w.writerow(("inquiries_per_purpose", p.purpose, p.inquiries, " ".join(p.users)))
    for week, a, d in r.inquiries_by_week:
        w.writerow(("inquiries_per_week", week, a + d, f"allowed={a} denied={d}"))
    for key, n in r.denied_by_reason:
        w.writerow(("denied_by_reason", key, n, ""))
    for rec in r.denied:
        w.writerow(("denied", rec.seq, rec.username, f"{rec.ts} {rec.action}: {rec.reason or ''}"))
    for un in r.untrained:
        w.writerow(
            ("untrained", un.username, un.last_course or "", f"expired={un.expired_on or ''}")
        )
    for c in r.hotlist_changes:
        w.writerow(
            (
                "hotlist_change",
                f"{c.name} v{c.version}",
                c.change,
                f"{iso_utc(c.at_ms)} by {c.by} from {c.source}",
            )
        )
    for q in r.releases:
        w.writerow(
            (
                "release",
                q.id,
                q.status,
                f"{q.requesting_agency}; {q.requester}; {q.purpose}; "
                f"decided by {q.decided_by or '-'}; export {q.export_id or '-'}",
            )
        )
    for pu in r.purges:
        w.writerow(("purge", pu.partition, pu.rows, f"{iso_utc(pu.at_ms)} by {pu.by}"))
    h = r.hits
    for hc in h.counts:
        key = f"{hc.hotlist}; {hc.match_kind}; {hc.state}"
        w.writerow(("hits", key, hc.alerts, f"reason={hc.reason or ''}"))
    for name, t in (("claim", h.claim_to_decision), ("verify", h.verify_to_decision)):
        w.writerow(
            (f"time_{name}_to_decision", "seconds", t.count, f"median={t.median_s} p90={t.p90_s}")
        )
    w.writerow(("hits_overdue", "decided after the deadline", h.overdue, ""))
    w.writerow(
        (
            "chain",
            "ok" if r.chain.ok else "broken",
            r.chain.records,
            f"head={r.chain.head_seq}:{r.chain.head_hash}",
        )
    )
    for prob in r.chain.problems:
        w.writerow(("chain_problem", prob.seq, prob.kind, prob.detail))
    return out.getvalue()
