"""The HTML report of ``python -m benchmarks``: one section per benchmark, beside its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plateflow._report_html import Section, bar_chart, cdf_chart, line_chart, page, table

__all__ = ["write_report"]


def _scalars(result: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every number or short text of a (nested) result, as ``a.b.c`` rows."""
    rows: list[tuple[str, Any]] = []
    for key, value in result.items():
        if key.startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _scalars(value, name + ".")
        elif isinstance(value, (int, float, str, bool)) and len(str(value)) < 80:
            rows.append((name, value))
    return rows


def _status(name: str, result: dict[str, Any]) -> Section | None:
    if "skipped" in result:
        return Section(name, [f"skipped: {result['skipped']}"])
    if "failed" in result:
        return Section(name, [f"failed: {result['failed']}"])
    return None


def _command(result: dict[str, Any]) -> list[str]:
    return [f"command: {result['_command']}"] if "_command" in result else []


def _ingest(result: dict[str, Any]) -> Section:
    section = Section("HTTP ingest: plateflow beside the bare endpoint", _command(result))
    section.notes.append(
        "The bare endpoint is Starlette + orjson + one XADD with redis.asyncio: no token, no "
        "validation, no dead letters. Each row is one run of both, alternating; ratio = "
        "plateflow / bare. Load from wrk (" + str(result.get("wrk", "")) + ")."
    )
    batch = result["batch"]
    sizes = sorted(int(k) for k in batch)
    section.blocks.append(
        line_chart(
            {
                name: [(k, batch[str(k)][name]["reads_per_s"]) for k in sizes]
                for name in ("plateflow", "bare")
            },
            title="reads/s against reads per request",
            xlabel="reads per request",
            ylabel="reads/s",
            logx=True,
            logy=True,
        )
    )
    rows: list[list[object]] = []
    for label, pairs in [
        ("no AOF", batch),
        *[(f"AOF {m}", p) for m, p in result["durability"].items()],
    ]:
        for k, pair in sorted(pairs.items(), key=lambda kv: int(kv[0])):
            pf, bare = pair["plateflow"], pair["bare"]
            rows.append(
                [
                    label,
                    int(k),
                    pf["requests_per_s"],
                    bare["requests_per_s"],
                    pair["ratio"],
                    pf["requests_per_s"] * int(k),
                    pf["latency_ms"].get("p99", 0.0),
                ]
            )
    for n, pairs in result.get("workers", {}).items():
        for k, pair in pairs.items():
            rows.append(
                [
                    f"{n} workers",
                    int(k),
                    pair["plateflow"]["requests_per_s"],
                    pair["bare"]["requests_per_s"],
                    pair["ratio"],
                    pair["plateflow"]["requests_per_s"] * int(k),
                    "",
                ]
            )
    header = [
        "Redis",
        "reads/request",
        "plateflow req/s",
        "bare req/s",
        "ratio",
        "plateflow reads/s",
        "plateflow p99 ms (wrk)",
    ]
    section.blocks.append(table(header, rows))
    fixed = result.get("fixed_rate")
    if fixed:
        section.blocks.append(
            cdf_chart(
                {name: fixed[name]["latency_cdf_ms"] for name in ("plateflow", "bare")},
                title=f"latency distribution at {fixed['rate']:g} single-read requests/s",
                unit="ms (from the scheduled send)",
            )
        )
        rows = [
            [
                name,
                fixed[name]["requests_per_s"],
                *(fixed[name]["latency_ms"][p] for p in ("p50", "p90", "p99", "p99.9", "max")),
                str(fixed[name]["errors"] or "none"),
            ]
            for name in ("plateflow", "bare")
        ]
        section.blocks.append(
            table(["server", "req/s", "p50", "p90", "p99", "p99.9", "max", "errors"], rows)
        )
    return section


def _pipeline(result: dict[str, Any], baseline: dict[str, Any] | None) -> Section:
    runs = result.get("by_processes", {})
    section = Section("Pipeline: streams -> flow -> alerts + Parquet")
    for run in runs.values():
        section.notes += _command(run) + ([run["_note"]] if "_note" in run else [])
        break
    ok = {int(n): r for n, r in runs.items() if "e2e_reads_per_s" in r}
    series: dict[str, list[tuple[float, float]]] = {
        "flow": [(n, float(ok[n]["e2e_reads_per_s"])) for n in sorted(ok)]
    }
    base_rate = (baseline or {}).get("consume_reads_per_s")
    if base_rate and ok:
        xs = sorted(ok) if len(ok) > 1 else [1, 2]
        series["per-read XADD consumer"] = [(n, float(base_rate)) for n in xs]
    section.blocks.append(
        line_chart(
            series, title="reads/s against flow processes", xlabel="processes", ylabel="reads/s"
        )
    )
    rows = [
        [
            n,
            r.get("e2e_reads_per_s"),
            r.get("alert_latency_p50_ms"),
            r.get("alert_latency_p99_ms"),
            r.get("peak_rss_mb"),
        ]
        for n, r in sorted(ok.items())
    ]
    if base_rate:
        rows.append(["baseline (one process, no Parquet)", base_rate, "", "", ""])
    section.blocks.append(
        table(["processes", "reads/s", "alert p50 ms", "alert p99 ms", "peak RSS MB"], rows)
    )
    return section


def _matching(result: dict[str, Any], symspell: dict[str, Any] | None) -> Section:
    section = Section("Matching: the hotlist index beside its baselines", _command(result))
    bars: list[tuple[str, float]] = []
    rows: list[list[object]] = []
    for name, b in result.get("baselines", {}).items():
        bars.append((f"{name} index", float(b["index_reads_per_s"])))
        for key, label in (
            ("cdist", "rapidfuzz cdist"),
            ("dict", "dict deletion index"),
            ("scan", "compare() scan"),
        ):
            if f"{key}_reads_per_s" in b:
                bars.append((f"{name} {label}", float(b[f"{key}_reads_per_s"])))
                rows.append(
                    [
                        name,
                        label,
                        b["index_reads_per_s"],
                        b[f"{key}_reads_per_s"],
                        b.get(f"index_vs_{key}"),
                        b.get(f"{key}_agree"),
                    ]
                )
    if symspell and "symspell_reads_per_s" in symspell:
        rows.append(
            [
                f"{symspell['list_entries']:,} one-difference list",
                "symspellpy",
                symspell["index_reads_per_s"],
                symspell["symspell_reads_per_s"],
                symspell["index_vs_symspell"],
                symspell["agree"],
            ]
        )
        bars.append(("symspellpy", float(symspell["symspell_reads_per_s"])))
    elif symspell:
        section.notes.append(f"symspellpy: {symspell.get('skipped') or symspell.get('failed')}")
    section.blocks.append(bar_chart(bars, title="reads/s", ylabel="reads/s", logy=True))
    header = ["list", "baseline", "index reads/s", "baseline reads/s", "index x", "agree"]
    section.blocks.append(table(header, rows))
    section.blocks.append(
        table(
            ["figure", "value"],
            _scalars(
                {
                    k: result[k]
                    for k in (
                        "build_s_1m",
                        "index_mb_1m",
                        "reads_per_s_1m_ocr",
                        "reads_per_s_mixed",
                    )
                    if k in result
                }
            ),
        )
    )
    return section


def _generic(title: str, result: dict[str, Any]) -> Section:
    section = Section(title, _command(result))
    section.blocks.append(table(["figure", "value"], _scalars(result)))
    return section


def write_report(combined: dict[str, Any], path: Path) -> None:
    """Render the suite's combined results to ``path``."""
    results: dict[str, Any] = combined["benchmarks"]
    meta = combined["meta"]
    sections: list[Section] = []
    titles = {
        "ingest": "HTTP ingest",
        "pipeline": "Pipeline",
        "matching": "Matching",
        "storage": "Storage at a year's scale",
        "console": "Console delivery",
    }
    for name in ("ingest", "pipeline", "matching", "storage", "console"):
        if name not in results:
            continue
        result = results[name]
        status = _status(titles[name], result)
        if status is not None:
            sections.append(status)
        elif name == "ingest":
            sections.append(_ingest(result))
        elif name == "pipeline":
            sections.append(_pipeline(result, results.get("pipeline_baseline")))
        elif name == "matching":
            sections.append(_matching(result, results.get("matching_symspell")))
        else:
            sections.append(_generic(titles[name], result))
    intro = [
        f"Run {meta['started']} to {meta['finished']}"
        + (" (quick: smoke figures only)" if meta["quick"] else "")
        + f" on {meta['cpus']} CPUs, Python {meta['python']}; load average at the end "
        + ", ".join(f"{x:.2f}" for x in meta["load_average_end"])
        + ".",
        "Absolute figures move with whatever else the machine runs; the ratios to the baselines"
        " measured in the same run are the figures to compare.",
    ]
    path.write_text(page("plateflow benchmarks", intro, sections))
