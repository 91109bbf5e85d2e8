"""Rendering of the quarterly audit report as one self-contained HTML page (its CSV:
:mod:`records._report_csv`).

The page has inline CSS and inline SVG charts and loads nothing (the agency network is closed,
and a report must look the same when opened years later from an archive). Every value from the
database is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from html import escape

from records._hits import HitSummary
from records._report import Report

_GREEN, _RED, _BLUE, _GREY, _AMBER = "#2e7d32", "#c62828", "#1f5fa8", "#8a8f98", "#b26a00"
_HIT_STATES = ("confirmed", "rejected", "dismissed", "verifying", "claimed")

#: What a bar chart draws: one bar a label, stacked from one value a series.
Bars = Sequence[tuple[str, Sequence[int]]]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;color:#1d232b;
background:#f4f6f9}
header{background:#14304f;color:#fff;padding:22px 36px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;opacity:.85}main{padding:18px 36px 48px;max-width:1180px}
section{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:16px 20px;margin:16px 0}
h2{font-size:18px;margin:0 0 10px;color:#14304f}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{flex:1;min-width:150px;background:#fff;border:1px solid #dde2ea;border-radius:8px;
padding:12px 16px}
.card b{display:block;font-size:26px}.card span{color:#59616c;font-size:13px}
.ok{color:#2e7d32}.bad{color:#c62828}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e9ef;vertical-align:top}
th{background:#f0f3f7;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7380;font-size:13px}code{font-size:12px;word-break:break-all}
svg text{font-family:inherit;font-size:12px;fill:#1d232b}
.legend span{margin-right:14px;font-size:12px}
summary{cursor:pointer;margin:8px 0;color:#1f5fa8}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
"""


def _ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    numeric: set[int] | None = None,
    empty: str = "None in this period.",
) -> str:
    rows = list(rows)
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    num = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{escape(str(c))}</td>' if i in num else f"<td>{escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _svg_open(title: str, width: float, height: float) -> list[str]:
    """The opening of a chart: an accessible ``svg`` element and its title line."""
    return [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<text x="0" y="14" font-weight="600">{escape(title)}</text>',
    ]


def _with_legend(parts: list[str], colours: Sequence[str], series: Sequence[str]) -> str:
    """The chart ``parts`` closed, after a legend naming each series' colour."""
    legend = "".join(
        f'<span><i class="sw" style="background:{c}"></i>{escape(s)}</span>'
        for s, c in zip(series, colours, strict=True)
    )
    return f'<div class="legend">{legend}</div>' + "".join(parts) + "</svg>"


def hbar_chart(title: str, rows: Bars, colours: Sequence[str], series: Sequence[str]) -> str:
    """Horizontal stacked bars, one row per label; inline SVG with a legend."""
    if not rows:
        return ""
    rows = list(rows)[:25]
    label_w, bar_w, row_h = 220, 560, 24
    total_max = max(sum(v) for _, v in rows) or 1
    height = 30 + row_h * len(rows)
    parts = _svg_open(title, label_w + bar_w + 80, height)
    for i, (label, values) in enumerate(rows):
        y = 26 + i * row_h
        shown = label if len(label) <= 32 else label[:31] + "…"
        parts.append(f'<text x="0" y="{y + 14}">{escape(shown)}</text>')
        x = float(label_w)
        for value, colour in zip(values, colours, strict=False):
            w = bar_w * value / total_max
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                    f'fill="{colour}" rx="2"><title>{escape(label)}: {value}</title></rect>'
                )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 14}">{sum(values)}</text>')
    return _with_legend(parts, colours, series)


def vbar_chart(title: str, rows: Bars, colours: Sequence[str], series: Sequence[str]) -> str:
    """Vertical stacked bars over time (one bar per label); inline SVG."""
    if not rows:
        return ""
    width, height, left, bottom = 900, 240, 40, 40
    plot_h = height - bottom - 24
    top = max(sum(v) for _, v in rows) or 1
    step = (width - left - 10) / len(rows)
    bar = max(4.0, step * 0.7)
    parts = [
        *_svg_open(title, width, height),
        f'<line x1="{left}" y1="{24 + plot_h}" x2="{width - 10}" y2="{24 + plot_h}" '
        'stroke="#8a8f98"/>',
        f'<text x="{left - 6}" y="30" text-anchor="end">{top}</text>',
        f'<text x="{left - 6}" y="{24 + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (label, values) in enumerate(rows):
        x = left + i * step + (step - bar) / 2
        y = 24.0 + plot_h
        for value, colour in zip(values, colours, strict=False):
            h = plot_h * value / top
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{colour}"><title>{escape(label)}: {value}</title></rect>'
                )
        if len(rows) <= 16 or i % 2 == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 20}" text-anchor="middle" '
                f'font-size="10">{escape(label[5:])}</text>'
            )
    return _with_legend(parts, colours, series)


def _collapsed(summary: str, body: str, *, open_: bool) -> str:
    """A long table folded under a summary line (HTML ``details``: no script needed)."""
    return (
        f"<details{' open' if open_ else ''}><summary>{escape(summary)}</summary>{body}</details>"
    )


def _card(value: object, label: str, cls: str = "") -> str:
    return (
        f'<div class="card"><b class="{cls}">{escape(str(value))}</b>'
        f"<span>{escape(label)}</span></div>"
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _outcome_rows(h: HitSummary, key: str) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for value, n in h.outcomes(key):
        decided = n["confirmed"] + n["rejected"] + n["dismissed"]
        share = f"{n['confirmed'] / decided:.0%}" if decided else "-"
        still = n["claimed"] + n["verifying"]
        rows.append((value, n["confirmed"], n["rejected"], n["dismissed"], still, share))
    return rows


def _hits_section(h: HitSummary) -> str:
    """Outcomes by list and by match kind, reasons, every combination (folded) and the time
    to verification."""
    chart = hbar_chart(
        "Hits per list by final state",
        [(n, tuple(c[s] for s in _HIT_STATES)) for n, c in h.outcomes("hotlist")],
        (_GREEN, _RED, _GREY, _BLUE, _AMBER),
        _HIT_STATES,
    )
    heads = ("confirmed", "rejected", "dismissed", "still open", "share confirmed")
    times = _table(
        ("from", "to", "decisions", "median", "90th percentile"),
        (
            (start, "confirmed or rejected", t.count, _duration(t.median_s), _duration(t.p90_s))
            for start, t in (
                ("claim", h.claim_to_decision),
                ("verification request", h.verify_to_decision),
            )
        ),
        {2},
    )
    late = "bad" if h.overdue else "muted"
    detail = _table(
        ("list", "match kind", "final state", "reason", "alerts"),
        ((c.hotlist, c.match_kind, c.state, c.reason or "", c.alerts) for c in h.counts),
        {4},
    )
    return (
        chart
        + f'<p class="{late}">{h.alerts} alerts dispositioned; {h.overdue} decided after '
        "their verification deadline.</p>"
        + _table(("list", *heads), _outcome_rows(h, "hotlist"), {1, 2, 3, 4, 5},
                 empty="No alert was dispositioned in this period.")
        + _table(("match kind", *heads), _outcome_rows(h, "match_kind"), {1, 2, 3, 4, 5}, empty="")
        + _table(("rejection reason", "alerts"), h.by("reason"), {1}, empty="No rejections.")
        + _collapsed("Every list, match kind, state and reason", detail, open_=False)
        + "<h3>Time to verification</h3>"
        + times
    )  # fmt: skip


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    r = report
    allowed = sum(u.allowed for u in r.inquiries_by_user)
    denied_inq = sum(u.denied for u in r.inquiries_by_user)
    chain_cls = "ok" if r.chain.ok else "bad"
    chain_word = "intact" if r.chain.ok else f"BROKEN ({len(r.chain.problems)})"
    cards = "".join(
        [
            _card(allowed, "inquiries allowed"),
            _card(denied_inq, "inquiries denied", "bad" if denied_inq else ""),
            _card(len(r.denied), "denied attempts (all kinds)", "bad" if r.denied else ""),
            _card(
                len(r.untrained),
                "active users without current training",
                "bad" if r.untrained else "ok",
            ),
            _card(len(r.hotlist_changes), "hotlist changes"),
            _card(len(r.releases), "release requests"),
            _card(chain_word, "audit chain", chain_cls),
        ]
    )
    user_chart = hbar_chart(
        "Inquiries per user",
        [
            (
                f"{u.username} ({u.agency})" if u.agency else u.username,
                (u.allowed, u.denied, u.failed),
            )
            for u in r.inquiries_by_user
        ],
        (_GREEN, _RED, _AMBER),
        ("allowed", "denied", "failed"),
    )
    week_chart = vbar_chart(
        "Inquiries per week",
        [(w, (a, d)) for w, a, d in r.inquiries_by_week],
        (_BLUE, _RED),
        ("allowed", "denied"),
    )
    denied_chart = hbar_chart(
        "Denied attempts by reason",
        [(k, (v,)) for k, v in r.denied_by_reason],
        (_RED,),
        ("denied",),
    )
    problems = _table(
        ("record", "finding", "detail"),
        ((p.seq, p.kind, p.detail) for p in r.chain.problems[:500]),
        {0},
        empty="No problems: every record matches its hash and links to the one before.",
    )
    sections = [
        (
            "Inquiries per user",
            user_chart
            + _table(
                ("username", "name", "agency", "allowed", "denied", "failed", "results returned"),
                (
                    (u.username, u.name, u.agency, u.allowed, u.denied, u.failed, u.results)
                    for u in r.inquiries_by_user
                ),
                {3, 4, 5, 6},
            ),
        ),
        (
            "Inquiries over time",
            week_chart + _table(("action", "inquiries"), r.inquiries_by_action, {1}),
        ),
        (
            "Inquiries per purpose (case number, event number or description)",
            _table(
                ("purpose", "inquiries", "users"),
                (
                    (p.purpose, p.inquiries, ", ".join(p.users))
                    for p in r.inquiries_by_purpose[:200]
                ),
                {1},
            ),
        ),
        (
            "Denied attempts",
            denied_chart
            + _collapsed(
                f"Every denied attempt ({len(r.denied)}; the CSV has them all)",
                _table(
                    ("time", "user", "action", "reason", "client"),
                    (
                        (
                            d.ts[:19].replace("T", " "),
                            d.username,
                            d.action,
                            d.reason or "",
                            d.client or "",
                        )
                        for d in r.denied[:2000]
                    ),
                ),
                open_=len(r.denied) <= 20,
            ),
        ),
        ("Logins", _table(("outcome", "count"), r.logins, {1})),
        (
            "Active users without current training",
            _table(
                ("username", "name", "agency", "roles", "last course", "expired on"),
                (
                    (
                        u.username,
                        u.name,
                        u.agency,
                        ", ".join(u.roles),
                        u.last_course or "(none recorded)",
                        u.expired_on or "",
                    )
                    for u in r.untrained
                ),
                empty="Every active user has current training.",
            ),
        ),
        (
            "Hotlist changes",
            _table(
                ("time", "hotlist", "version", "change", "by", "source", "entries"),
                (
                    (_ts(c.at_ms), c.name, c.version, c.change, c.by, c.source, c.entry_count)
                    for c in r.hotlist_changes
                ),
                {2, 6},
            ),
        ),
        (
            "Release requests (427.7)",
            _table(
                (
                    "id",
                    "received",
                    "agency",
                    "law enforcement",
                    "requester",
                    "purpose",
                    "status",
                    "decided by",
                    "reason",
                    "export",
                ),
                (
                    (
                        q.id,
                        _ts(q.created_at_ms),
                        q.requesting_agency,
                        "yes" if q.law_enforcement else "no",
                        q.requester,
                        q.purpose,
                        q.status,
                        q.decided_by or "",
                        q.decision_reason or "",
                        q.export_id or "",
                    )
                    for q in r.releases
                ),
                {0},
            ),
        ),
        (
            "Purges (427.4)",
            _table(
                ("time", "partition", "rows", "by", "note"),
                ((_ts(p.at_ms), p.partition, p.rows, p.by, p.note) for p in r.purges),
                {2},
            ),
        ),
        ("Hits and their dispositions (427.3(g))", _hits_section(r.hits)),
        (
            "Audit chain verification",
            (
                f'<p class="{chain_cls}"><b>{escape(r.chain.describe().splitlines()[0])}</b></p>'
                f'<p class="muted">Anchor for the next audit: record {r.chain.head_seq}, hash '
                f"<code>{escape(r.chain.head_hash)}</code>. Keep it outside this system; "
                "<code>plateflow audit verify --anchor SEQ:HASH</code> checks that the log "
                "still agrees.</p>" + problems
            ),
        ),
    ]
    body = "".join(f"<section><h2>{escape(t)}</h2>{c}</section>" for t, c in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>plateflow audit {escape(r.label)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>ALPR system audit — {escape(r.label)}</h1>"
        f"<p>{escape(_ts(r.start_ms))} to {escape(_ts(r.end_ms))} (end exclusive) · generated "
        f"{escape(_ts(r.generated_at_ms))} · policy 427.5(c)</p></header>"
        f'<main><div class="cards">{cards}</div>{body}</main></body></html>'
    )
