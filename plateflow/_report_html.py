"""Self-contained HTML reports with inline SVG charts (no plotting library, no CDN).

Used by ``python -m benchmarks`` and ``plateflow bench target``. A report is a list of sections,
each a title, optional notes, tables and charts; :func:`page` renders them into one HTML file
that opens anywhere, offline. Charts are deliberately plain: lines or bars, linear or log axes,
a legend; every number a chart shows is also in a table or the JSON beside it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Section", "bar_chart", "cdf_chart", "cdf_points", "line_chart", "page", "table"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
_W, _H = 640, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 150, 30, 45


@dataclass
class Section:
    """One part of a report: a heading, paragraphs of notes, then HTML blocks (tables, SVG)."""

    title: str
    notes: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.3g}k"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / 5
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 2)]


class _Axes:
    def __init__(self, xs: Sequence[float], ys: Sequence[float], logx: bool, logy: bool) -> None:
        self.logx, self.logy = logx, logy
        xs = [x for x in xs if x > 0] if logx else list(xs)
        ys = [y for y in ys if y > 0] if logy else [*ys, 0.0]
        self.xt = _ticks(min(xs), max(xs), logx)
        self.yt = _ticks(min(ys), max(ys), logy)
        self.x0, self.x1 = (min(xs), max(xs)) if logx else (self.xt[0], max(xs))
        if self.x0 == self.x1:
            self.x1 = self.x0 + 1
        self.y0, self.y1 = self.yt[0], self.yt[-1]

    def _t(self, v: float, lo: float, hi: float, log: bool) -> float:
        if log:
            v, lo, hi = math.log10(max(v, 1e-12)), math.log10(lo), math.log10(hi)
        return (v - lo) / (hi - lo) if hi != lo else 0.0

    def px(self, x: float) -> float:
        return _LEFT + self._t(x, self.x0, self.x1, self.logx) * (_W - _LEFT - _RIGHT)

    def py(self, y: float) -> float:
        return _H - _BOTTOM - self._t(y, self.y0, self.y1, self.logy) * (_H - _TOP - _BOTTOM)

    def frame(self, title: str, xlabel: str, ylabel: str, xticks: bool = True) -> list[str]:
        out = [
            f'<text x="{_W / 2 - _RIGHT / 2}" y="18" text-anchor="middle" '
            f'font-weight="bold">{html.escape(title)}</text>',
            f'<line x1="{_LEFT}" y1="{_H - _BOTTOM}" x2="{_W - _RIGHT}" y2="{_H - _BOTTOM}" '
            'stroke="#333"/>',
            f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_H - _BOTTOM}" stroke="#333"/>',
            f'<text x="{(_LEFT + _W - _RIGHT) / 2}" y="{_H - 8}" text-anchor="middle">'
            f"{html.escape(xlabel)}</text>",
            f'<text x="14" y="{(_TOP + _H - _BOTTOM) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 14 {(_TOP + _H - _BOTTOM) / 2})">{html.escape(ylabel)}</text>',
        ]
        for y in self.yt:
            if self.y0 <= y <= self.y1:
                py = self.py(y)
                out.append(
                    f'<line x1="{_LEFT}" y1="{py:.1f}" x2="{_W - _RIGHT}" y2="{py:.1f}" '
                    'stroke="#ddd"/>'
                    f'<text x="{_LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt(y)}</text>'
                )
        for x in self.xt if xticks else ():
            if self.x0 <= x <= self.x1:
                px = self.px(x)
                out.append(
                    f'<text x="{px:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">'
                    f"{_fmt(x)}</text>"
                )
        return out


def _svg(parts: list[str]) -> str:
    body = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="11">{body}</svg>'
    )


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = _TOP + 14 * i
        colour = _COLOURS[i % len(_COLOURS)]
        out.append(
            f'<rect x="{_W - _RIGHT + 10}" y="{y}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{_W - _RIGHT + 24}" y="{y + 9}">{html.escape(name)}</text>'
        )
    return out


def line_chart(
    series: dict[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
) -> str:
    """An SVG line chart of ``{name: [(x, y), ...]}`` (points marked; empty series skipped)."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return "<p><em>no data</em></p>"
    axes = _Axes(
        [x for pts in series.values() for x, _ in pts],
        [y for pts in series.values() for _, y in pts],
        logx,
        logy,
    )
    parts = axes.frame(title, xlabel, ylabel)
    for i, pts in enumerate(series.values()):
        colour = _COLOURS[i % len(_COLOURS)]
        coords = " ".join(f"{axes.px(x):.1f},{axes.py(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        if len(pts) <= 40:
            parts += [
                f'<circle cx="{axes.px(x):.1f}" cy="{axes.py(y):.1f}" r="3" fill="{colour}"/>'
                for x, y in pts
            ]
    return _svg(parts + _legend(list(series)))


def cdf_points(values: list[float], points: int = 200) -> list[tuple[float, float]]:
    """(percentile, value) pairs of ``values``, thinned to about ``points`` points."""
    ordered = sorted(values)
    if not ordered:
        return []
    step = max(1, len(ordered) // points)
    picked = list(range(0, len(ordered), step))
    if picked[-1] != len(ordered) - 1:
        picked.append(len(ordered) - 1)
    last = max(1, len(ordered) - 1)
    return [(100.0 * i / last, ordered[i]) for i in picked]


def cdf_chart(samples: dict[str, Sequence[float]], *, title: str, unit: str = "ms") -> str:
    """A latency distribution: for each series, value against percentile."""
    return line_chart(
        {name: cdf_points(list(values)) for name, values in samples.items()},
        title=title,
        xlabel="percentile",
        ylabel=unit,
    )


def bar_chart(
    bars: Sequence[tuple[str, float]], *, title: str, ylabel: str, logy: bool = False
) -> str:
    """An SVG bar chart of ``[(label, value), ...]``, labels under the bars."""
    if not bars:
        return "<p><em>no data</em></p>"
    axes = _Axes([0.0, float(len(bars))], [v for _, v in bars], False, logy)
    parts = axes.frame(title, "", ylabel, xticks=False)
    slot = (_W - _LEFT - _RIGHT) / len(bars)
    base = _H - _BOTTOM
    for i, (_, value) in enumerate(bars):
        colour = _COLOURS[i % len(_COLOURS)]
        top = axes.py(value) if value > 0 else base
        x = _LEFT + slot * i + slot * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{max(0.0, base - top):.1f}" fill="{colour}"/>'
            f'<text x="{x + slot * 0.35:.1f}" y="{top - 4:.1f}" text-anchor="middle">'
            f"{_fmt(value)}</text>"
        )
    return _svg(parts + _legend([label for label, _ in bars]))


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; floats are shown with thousands separators and at most 3 decimals."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
        else:
            text = str(value)
        return html.escape(text)

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.note { color: #555; } svg { margin: 0.5em 0; }
"""


def page(title: str, intro: Sequence[str], sections: Sequence[Section]) -> str:
    """The whole HTML document."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *(f"<p class='note'>{html.escape(p)}</p>" for p in intro),
    ]
    for section in sections:
        out.append(f"<h2>{html.escape(section.title)}</h2>")
        out += [f"<p class='note'>{html.escape(n)}</p>" for n in section.notes]
        out += section.blocks
    out.append("</body></html>")
    return "\n".join(out)
