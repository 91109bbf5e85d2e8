"""Prometheus metrics of the sinks (module level, registered once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

READS_APPENDED = Counter(
    "plateflow_sinks_reads_appended_total", "Reads added to the read streams by append_reads"
)
DEAD_LETTERS = Counter(
    "plateflow_sinks_deadletters_total", "Payloads routed to the dead-letter stream", ["source"]
)
ALERTS_PUBLISHED = Counter(
    "plateflow_sinks_alerts_published_total",
    "Alerts published on the bus",
    ["channel", "outcome"],  # outcome: alert | sighting | replay
)
READS_WRITTEN = Counter("plateflow_sinks_reads_written_total", "Reads written to Parquet")
ALERTS_WRITTEN = Counter("plateflow_sinks_alerts_written_total", "Alerts written to Parquet")
WRITE_SECONDS = Histogram(
    "plateflow_sinks_parquet_write_seconds",
    "Time to write one batch to Parquet",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
