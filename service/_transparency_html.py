"""The public transparency page as one self-contained HTML document.

Rendered on the server from :func:`service.transparency`'s data: inline CSS and inline SVG
charts (the quarterly report's, :func:`records.vbar_chart` and :func:`records.hbar_chart`), no
script, nothing fetched from anywhere. A Markdown policy is rendered with raw HTML and images
turned off, so the posted document cannot pull in an outside asset or a script.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from markdown_it import MarkdownIt

import records

__all__ = ["render_transparency_html"]

_BLUE, _GREEN, _GREY, _RED = "#1f5fa8", "#2e7d32", "#8a8f98", "#c62828"
_CSS = (
    records.REPORT_CSS
    + """
article.policy{max-height:520px;overflow:auto;border:1px solid #e6e9ef;border-radius:6px;
padding:4px 18px;background:#fbfcfd}footer{padding:0 36px 36px;color:#59616c;font-size:13px}
.people{display:flex;gap:12px;flex-wrap:wrap}.person{flex:1;min-width:260px;border:1px solid
#dde2ea;border-radius:8px;padding:12px 16px}.person b{display:block;font-size:18px}
"""
)


def _shown(value: Any) -> str:
    """A count as the page prints it."""
    if isinstance(value, Mapping):
        return f"fewer than {value['fewer_than']}"
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def _bar(value: Any) -> int:
    """A count as a bar's height: a hidden one is drawn empty (its label says why)."""
    return value if isinstance(value, int) else 0


def _note(data: Mapping[str, Any], key: str) -> str:
    return f'<p class="muted">{escape(data["notes"][key])}.</p>'


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def _markdown(text: str) -> str:
    md = MarkdownIt("commonmark", {"html": False}).disable("image")
    return str(md.render(text))


def _policy(policy: Mapping[str, Any]) -> str:
    current = policy["current"]
    if current is None:
        body = '<p class="bad">No ALPR policy has been published yet.</p>'
    else:
        link = f'<a href="{escape(current["url"])}">{escape(current["media_type"])} file</a>'
        body = (
            f"<p><b>{escape(current['title'])}</b> (version {current['version']}, in effect "
            f"since {escape(current['effective_on'])}; {link}, sha256 "
            f"<code>{escape(current['sha256'])}</code>)</p>"
        )
        if "text" in current:
            body += f'<article class="policy">{_markdown(current["text"])}</article>'
    rows = [
        (
            p["version"],
            p["title"],
            p["effective_on"],
            p["published_on"],
            p["media_type"],
            p["sha256"][:16] + "…",
        )
        for p in reversed(policy["history"])
    ]
    links = " ".join(
        f'<a href="{escape(p["url"])}">version {p["version"]}</a>'
        for p in reversed(policy["history"])
    )
    history = records.html_table(
        ("version", "title", "effective", "published", "format", "sha256"),
        rows,
        {0},
        empty="No versions published.",
    )
    upcoming = "".join(
        f'<p class="muted">Version {p["version"]} takes effect on {escape(p["effective_on"])}.</p>'
        for p in policy["upcoming"]
    )
    return body + upcoming + "<h3>History</h3>" + history + (f"<p>{links}</p>" if links else "")


def _designees(designees: Mapping[str, Any]) -> str:
    people = []
    for role, title in records.DESIGNEE_ROLES.items():
        d = designees["current"].get(role)
        if d is None:
            people.append(
                f'<div class="person"><span class="muted">{escape(title)}</span>'
                '<b class="bad">not designated</b></div>'
            )
            continue
        people.append(
            f'<div class="person"><span class="muted">{escape(title)}</span>'
            f"<b>{escape(d['name'])}</b>{escape(d['title'])}<br>"
            f'<span class="muted">since {escape(d["since"])}</span></div>'
        )
    return f'<div class="people">{"".join(people)}</div>'


def _month_chart(title: str, by_month: Mapping[str, Any], colour: str, series: str) -> str:
    rows = [(m, (_bar(v),)) for m, v in by_month.items()]
    table = records.html_table(
        ("month", series), ((m, _shown(v)) for m, v in by_month.items()), {1}
    )
    chart = records.vbar_chart(title, rows, (colour,), (series,)) if rows else ""
    return chart + f"<details><summary>{escape(title)}: the numbers</summary>{table}</details>"


def _keyed(title: str, counts: Mapping[str, Any], colour: str) -> str:
    rows = [(k.replace("_", " "), (_bar(v),)) for k, v in counts.items()]
    table = records.html_table(("", "count"), ((k, _shown(v)) for k, v in counts.items()), {1})
    return records.hbar_chart(title, rows, (colour,), ("count",)) + table


def _dispositions(data: Mapping[str, Any]) -> str:
    outcomes: Sequence[str] = data["dispositions"]["outcomes"]
    by_month = data["dispositions"]["by_month"]
    if not outcomes:
        return '<p class="muted">No dispositions in these months.</p>'
    colours = [_GREEN, _GREY, _RED, _BLUE][: len(outcomes)]
    rows = [(m, tuple(_bar(c[o]) for o in outcomes)) for m, c in by_month.items()]
    table = records.html_table(
        ("month", *outcomes),
        ((m, *(_shown(c[o]) for o in outcomes)) for m, c in by_month.items()),
        set(range(1, len(outcomes) + 1)),
    )
    chart = records.vbar_chart("Dispositions by month", rows, colours, outcomes)
    return chart + f"<details><summary>the numbers</summary>{table}</details>"


def render_transparency_html(data: Mapping[str, Any]) -> str:
    """The page for ``data`` (what :func:`service.transparency` returns)."""
    k = data["min_cell"]
    searches, audit, purges = data["searches"], data["audit"], data["purges"]
    minutes = max(1, round(data.get("recomputed_every_s", 0) / 60))
    cards = "".join(
        [
            records.html_card(f"{data['retention_days']} days", "reads kept before purge"),
            records.html_card(_shown(data["cameras_reporting_30d"]), "cameras reporting (30 days)"),
            records.html_card(_shown(data["reads"]["total"]), "reads stored"),
            records.html_card(_shown(searches["total"]), "searches (12 months)"),
            records.html_card(_shown(data["alerts"]["total"]), "alerts (12 months)"),
            records.html_card(_shown(data["legal_holds_open"]), "legal holds open"),
        ]
    )
    hotlists = data["hotlists"]
    hotlist_table = records.html_table(
        ("category", "lists", "entries"),
        [
            (h["category"].replace("_", " "), _shown(h["lists"]), _shown(h["entries"]))
            for h in hotlists["by_category"]
        ]
        + [("confidential lists (not named)", _shown(hotlists["not_shown"]["lists"]), "not shown")],
        {1, 2},
    )
    releases = records.html_table(
        ("requests", "count"), ((k_, _shown(v)) for k_, v in data["releases"].items()), {1}
    )
    verified = {True: "verified", False: "FAILED", None: "not recorded"}
    audit_rows = [
        ("last quarterly audit report", audit["last_report_on"] or "none yet"),
        ("audit chain at that report", verified[audit["last_report_chain_verified"]]),
        ("last check of the audit chain", audit["last_verification_on"] or "none yet"),
        ("result of that check", verified[audit["chain_verified"]]),
    ]
    purge_rows = [
        ("retention period", f"{data['retention_days']} days"),
        ("day partitions purged", _shown(purges["partitions"])),
        ("reads purged", _shown(purges["reads"])),
        ("last purge", purges["last_on"] or "none yet"),
    ]
    sections = [
        _section("The ALPR policy", _policy(data["policy"]), "policy"),
        _section("Who answers for the system", _designees(data["designees"]), "designees"),
        _section(
            "Reads stored",
            _month_chart("Reads stored by month", data["reads"]["by_month"], _BLUE, "reads")
            + _note(data, "reads")
            + f"<p>{_shown(data['cameras_reporting_30d'])} cameras reporting.</p>"
            + _note(data, "cameras"),
            "reads",
        ),
        _section("Hotlists", hotlist_table + _note(data, "hotlists"), "hotlists"),
        _section(
            "Alerts",
            _month_chart("Alerts by month", data["alerts"]["by_month"], _RED, "alerts")
            + _note(data, "alerts")
            + _dispositions(data)
            + _note(data, "dispositions"),
            "alerts",
        ),
        _section(
            "Searches of stored reads",
            _month_chart("Searches by month", searches["by_month"], _BLUE, "searches")
            + _keyed("Searches by justification", searches["by_justification"], _GREEN)
            + _keyed("Searches by kind", searches["by_kind"], _BLUE)
            + f"<p>Refused attempts: {_shown(searches['refused'])}.</p>"
            + _note(data, "searches"),
            "searches",
        ),
        _section("Releases to other agencies", releases + _note(data, "releases"), "releases"),
        _section(
            "Retention, legal holds and purges",
            records.html_table(("", ""), purge_rows)
            + f"<p>Legal holds open: {_shown(data['legal_holds_open'])}.</p>"
            + _note(data, "holds")
            + _note(data, "purges"),
            "retention",
        ),
        _section(
            "Audits", records.html_table(("", ""), audit_rows) + _note(data, "audit"), "audit"
        ),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ALPR transparency</title><style>{_CSS}</style></head><body>"
        "<header><h1>Automated License Plate Readers: transparency</h1>"
        "<p>The policy we operate under, who answers for it, and what the system did, in "
        "numbers that identify nobody.</p></header><main>"
        f'<div class="cards">{cards}</div>' + "".join(sections) + "</main><footer>"
        f"<p>Figures as of {escape(data['generated_at'])}, recomputed every {minutes} "
        f"minute(s). "
        + (
            f"A count from 1 to {k - 1} is shown as “fewer than {k}”; bars of such counts are "
            "drawn empty. " + escape(data["notes"]["min_cell"]) + "."
            if k > 1
            else ""
        )
        + "</p>"
        '<p>This page and its data (<a href="/v1/transparency">/v1/transparency</a>, JSON) '
        "are the only part of the system open without a login. They show counts, never a "
        "plate, a read, a person who searched or a case (policy 427.6).</p>"
        "</footer></body></html>"
    )
