"""The quarterly audit (policy 427.5(c)): what happened in a date range, gathered from the records.

:func:`audit_report` collects inquiries per user and per purpose, denied attempts, users without
current training, hotlist changes and who made them, releases, purges, the hits and how they were
dispositioned (by list, match kind, outcome and reason, with the time to verification) and the
result of verifying the audit chain. :meth:`Report.write` renders it as one self-contained HTML
file (inline CSS and SVG charts, nothing fetched) and one CSV.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import Engine

from records._audit import AuditRecord, VerifyResult, read_audit, verify_chain
from records._errors import RecordsError
from records._hits import HitSummary, hits
from records._hotlist_store import hotlist_changes
from records._hotlist_types import HotlistChange
from records._people import User, list_users, training_records
from records._releases import PurgeRecord, ReleaseRequest, list_purges, list_releases
from records._schema import now_ms


def quarter_range(quarter: str) -> tuple[int, int]:
    """``"2026Q4"`` (or ``2026-Q4``) -> epoch ms ``[2026-10-01, 2027-01-01)`` UTC."""
    match = re.fullmatch(r"(\d{4})-?[Qq]([1-4])", quarter.strip())
    if not match:
        raise RecordsError(f"quarter {quarter!r} is not like 2026Q4")
    year, q = int(match.group(1)), int(match.group(2))
    if not MINYEAR <= year <= MAXYEAR - (q == 4):
        msg = f"quarter {quarter!r} is outside the calendar (years 1-9999); give one like 2026Q4"
        raise RecordsError(msg)
    start = datetime(year, 3 * q - 2, 1, tzinfo=timezone.utc)
    end = datetime(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date()


@dataclass(frozen=True)
class UserInquiries:
    username: str
    name: str
    agency: str
    allowed: int
    denied: int
    failed: int
    results: int


@dataclass(frozen=True)
class PurposeCount:
    purpose: str  # "case 2026-0042", "event E-17", "description: ..."
    inquiries: int
    users: tuple[str, ...]


@dataclass(frozen=True)
class UntrainedUser:
    username: str
    name: str
    agency: str
    roles: tuple[str, ...]
    last_course: str | None
    expired_on: date | None


@dataclass(frozen=True)
class Report:
    """Everything the quarterly audit shows; render with :meth:`html`, :meth:`csv`,
    :meth:`write`."""

    label: str
    start_ms: int
    end_ms: int
    generated_at_ms: int
    inquiries_by_user: tuple[UserInquiries, ...]
    inquiries_by_purpose: tuple[PurposeCount, ...]
    inquiries_by_action: tuple[tuple[str, int], ...]
    inquiries_by_week: tuple[tuple[str, int, int], ...]  # (week start, allowed, denied)
    denied: tuple[AuditRecord, ...]
    denied_by_reason: tuple[tuple[str, int], ...]
    logins: tuple[tuple[str, int], ...]  # (outcome, count)
    untrained: tuple[UntrainedUser, ...]
    hotlist_changes: tuple[HotlistChange, ...]
    releases: tuple[ReleaseRequest, ...]
    purges: tuple[PurgeRecord, ...]
    hits: HitSummary  # how the alerts dispositioned in the range ended
    chain: VerifyResult

    @property
    def inquiries(self) -> int:
        return sum(u.allowed + u.denied + u.failed for u in self.inquiries_by_user)

    def html(self) -> str:
        from records._report_html import render_html

        return render_html(self)

    def csv(self) -> str:
        from records._report_csv import render_csv

        return render_csv(self)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``audit-<label>.html`` and ``audit-<label>.csv`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = "audit-" + re.sub(r"[^A-Za-z0-9_.-]", "_", self.label)
        html_path, csv_path = out / f"{stem}.html", out / f"{stem}.csv"
        html_path.write_text(self.html(), encoding="utf-8")
        csv_path.write_text(self.csv(), encoding="utf-8", newline="")
        return html_path, csv_path


def _purpose(r: AuditRecord) -> str:
    if r.case_number:
        return f"case {r.case_number}"
    if r.event_number:
        return f"event {r.event_number}"
    if r.description:
        text = " ".join(r.description.split())
        return "description: " + (text[:60] + "..." if len(text) > 60 else text)
    return "(none given)"


def _reason_class(r: AuditRecord) -> str:
    reason = (r.reason or "unspecified").split(":")[0].split("(")[0].split(";")[0].strip()
    return f"{r.kind}: {reason}"


def _week(ms: int) -> str:
    day = _day(ms)
    return (day - timedelta(days=day.weekday())).isoformat()


def _untrained(engine: Engine, users: list[User], on: date) -> list[UntrainedUser]:
    out: list[UntrainedUser] = []
    for user in users:
        if not user.active:
            continue
        records = training_records(engine, user.username)
        if any(t.current_on(on) for t in records):
            continue
        last = records[-1] if records else None
        out.append(
            UntrainedUser(
                user.username,
                user.name,
                user.agency,
                user.roles,
                last.course if last else None,
                last.expires_on if last else None,
            )
        )
    return out


def _completes_intent(record: AuditRecord) -> bool:
    """The outcome of a search whose intent was recorded first (``terms.intent`` links to it):
    the inquiry is counted once, by its intent; the outcome adds the results (a ``failed``
    outcome turns its intent's count into a failure)."""
    return "intent" in record.terms


def audit_report(
    engine: Engine,
    quarter: str | None = "2026Q4",
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Report:
    """Gather the audit of a quarter (``"2026Q4"``), or of ``[start_ms, end_ms)`` if given.

    Training is judged on the last day of the range (or today, if the range has not ended).
    The chain is verified over the whole log, not only the range.
    """
    if start_ms is not None and end_ms is not None:
        label = f"{_day(start_ms).isoformat()}_{_day(end_ms - 1).isoformat()}"
        start, end = start_ms, end_ms
    elif quarter:
        start, end = quarter_range(quarter)
        label = quarter.upper().replace("-", "")
    else:
        raise RecordsError("give a quarter like 2026Q4, or start_ms and end_ms")
    generated = now_ms()
    records = read_audit(engine, start_ms=start, end_ms=end)
    inquiries = [r for r in records if r.kind == "inquiry"]

    per_user: dict[str, dict[str, int]] = defaultdict(Counter)
    names: dict[str, tuple[str, str]] = {}
    purposes: dict[str, Counter[str]] = defaultdict(Counter)
    weeks: dict[str, Counter[str]] = defaultdict(Counter)
    intents = {r.seq: r for r in inquiries if r.terms.get("stage") == "intent"}
    for r in inquiries:
        per_user[r.username]["results"] += r.result_count or 0
        if _completes_intent(r):
            intent = intents.get(r.terms["intent"])
            if r.outcome != "allowed" and intent is not None:  # failed after its intent
                per_user[r.username]["allowed"] -= 1
                per_user[r.username]["failed"] += 1
                weeks[_week(intent.ts_ms)]["allowed"] -= 1
                weeks[_week(intent.ts_ms)]["failed"] += 1
            continue
        per_user[r.username][r.outcome] += 1
        names[r.username] = (r.user_name, r.agency)
        purposes[_purpose(r)][r.username] += 1
        weeks[_week(r.ts_ms)][r.outcome] += 1
    by_user = sorted(
        (
            UserInquiries(
                u, names[u][0], names[u][1], c["allowed"], c["denied"], c["failed"], c["results"]
            )
            for u, c in per_user.items()
        ),
        key=lambda x: (-(x.allowed + x.denied + x.failed), x.username),
    )
    by_purpose = sorted(
        (PurposeCount(p, sum(c.values()), tuple(sorted(c))) for p, c in purposes.items()),
        key=lambda x: (-x.inquiries, x.purpose),
    )
    denied = [r for r in records if r.outcome == "denied"]
    users = list_users(engine)
    last_day = min(_day(end - 1), _day(generated))
    return Report(
        label=label,
        start_ms=start,
        end_ms=end,
        generated_at_ms=generated,
        inquiries_by_user=tuple(by_user),
        inquiries_by_purpose=tuple(by_purpose),
        inquiries_by_action=tuple(
            Counter(r.action for r in inquiries if not _completes_intent(r)).most_common()
        ),
        inquiries_by_week=tuple((w, c["allowed"], c["denied"]) for w, c in sorted(weeks.items())),
        denied=tuple(denied),
        denied_by_reason=tuple(Counter(_reason_class(r) for r in denied).most_common()),
        logins=tuple(Counter(r.outcome for r in records if r.action == "login").most_common()),
        untrained=tuple(_untrained(engine, users, last_day)),
        hotlist_changes=tuple(hotlist_changes(engine, start_ms=start, end_ms=end)),
        releases=tuple(list_releases(engine, start_ms=start, end_ms=end)),
        purges=tuple(list_purges(engine, start_ms=start, end_ms=end)),
        hits=hits(engine, start_ms=start, end_ms=end),
        chain=verify_chain(engine),
    )
