"""The HTML report of ``plateflow bench target`` (charts inline, no network needed to view)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plateflow._bench_target import TargetReport
from plateflow._report_html import Section, cdf_chart, line_chart, page, table

__all__ = ["write_target_html"]


def _per_second(timeline: list[dict[str, float]], key: str) -> list[tuple[float, float]]:
    out = []
    prev_t, prev_v = 0.0, 0.0
    for point in timeline:
        dt = point["t"] - prev_t
        if dt > 0:
            out.append((point["t"], (point[key] - prev_v) / dt))
        prev_t, prev_v = point["t"], point[key]
    return out


def write_target_html(summary: dict[str, Any], report: TargetReport, path: Path) -> None:
    """Write the report of one ``bench target`` run to ``path``."""
    ingest = summary["ingest"]
    lat = ingest["latency_ms"]
    rows = [
        ["target rate (requests/s)", ingest["target_rate"]],
        ["requests answered per second", ingest["requests_per_s"]],
        ["reads accepted per second", ingest["reads_accepted_per_s"]],
        ["requests scheduled / answered", f"{ingest['scheduled']:,} / {ingest['completed']:,}"],
        [
            "reads accepted / rejected",
            f"{ingest['accepted_reads']:,} / {ingest['rejected_reads']:,}",
        ],
        ["HTTP statuses", str(ingest["statuses"])],
        ["errors", str(ingest["errors"] or "none")],
        *([f"ingest latency {k} ms", v] for k, v in lat.items()),
    ]
    client = Section(
        "What the cameras saw",
        [
            f"{ingest['reads_per_request']} read(s) per request over {ingest['connections']} "
            "connections; latency is timed from each request's scheduled moment (open loop)."
        ],
        [table(["figure", "value"], rows)],
    )
    client.blocks.append(
        line_chart(
            {
                "answered requests/s": _per_second(ingest["timeline"], "completed"),
                "errors/s": _per_second(ingest["timeline"], "errors"),
            },
            title="throughput over the run",
            xlabel="seconds",
            ylabel="per second",
        )
    )
    client.blocks.append(
        cdf_chart({"ingest": report.load.latencies_ms}, title="ingest latency distribution")
    )
    sections = [client]
    inside = summary["inside"]
    if inside is None:
        sections.append(Section("Inside the deployment", ["not measured: no Redis URL given"]))
    else:
        assert report.watcher is not None
        alert_rows = [
            ["alerts of this run", inside["alerts_of_this_run"]],
            ["dead letters added", inside["deadletters_added"]],
            ["consumer lag, worst (s)", inside["consumer_lag_s_max"]],
            ["consumer lag, at the end (s)", inside["consumer_lag_s_last"]],
            *([f"alert latency {k} ms", v] for k, v in inside["alert_latency_ms"].items()),
            ["watcher errors", "; ".join(inside["errors"]) or "none"],
        ]
        section = Section(
            "Inside the deployment",
            ["Alert latency: from sending the read to its entry in plateflow:alerts:log."],
            [table(["figure", "value"], alert_rows)],
        )
        section.blocks.append(
            cdf_chart(
                {"alert": report.watcher.alert_latencies_ms}, title="alert latency distribution"
            )
        )
        lags = [(p["t"], p["lag_s"]) for p in inside["consumer_lag_timeline"]]
        section.blocks.append(
            line_chart(
                {"lag": [(t, v) for t, v in lags if v != float("inf")]},
                title="consumer lag (newest stream entry minus committed offset)",
                xlabel="seconds",
                ylabel="seconds behind",
            )
        )
        sections.append(section)
    intro = [f"plateflow bench target against {summary['ingest_url']}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page("plateflow load test", intro, sections))
