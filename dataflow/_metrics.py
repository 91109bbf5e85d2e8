"""Prometheus metrics of the flow, served by Bytewax's API server (port 3030, enabled with
``BYTEWAX_DATAFLOW_API_ENABLED=true``) from prometheus-client's default registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

READS = Counter("plateflow_flow_reads_total", "Valid reads processed by the flow")
READS_REJECTED = Counter(
    "plateflow_flow_reads_rejected_total",
    "Reads sent to the dead-letter stream, by the field that failed (or 'payload')",
    ["reason"],
)
ALERTS = Counter(
    "plateflow_flow_alerts_total",
    "Alerts published, by hotlist and match kind (sightings counted apart)",
    ["hotlist", "kind"],
)
SIGHTINGS = Counter(
    "plateflow_flow_sightings_total", "Repeat hits inside the cooldown, published as sightings"
)
MATCH_SECONDS = Histogram(
    "plateflow_flow_match_seconds",
    "Time to match one batch against the hotlist index",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
ALERT_LATENCY_SECONDS = Histogram(
    "plateflow_flow_alert_latency_seconds",
    "From the read's camera timestamp to the alert's publication",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BATCH_READS = Histogram(
    "plateflow_flow_batch_reads",
    "Reads per batch travelling through the flow",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10_000, 50_000),
)
STAGE_SECONDS = Counter(
    "plateflow_flow_stage_seconds_total",
    "Time spent per stage of the flow: decode (with validation), match, alerts, parquet",
    ["stage"],
)
PARQUET_ROWS = Counter("plateflow_flow_parquet_rows_total", "Read rows written to Parquet")
RETRIES = Counter(
    "plateflow_flow_retries_total",
    "Failed attempts of a flow step retried in place (Redis away, data volume full)",
    ["stage"],
)
STALLED = Gauge(
    "plateflow_flow_stalled",
    "1 while a flow step is failing and being retried, by stage",
    ["stage"],
)
PARTITION_LAG_SECONDS = Gauge(
    "plateflow_flow_partition_lag_seconds",
    "Age of the oldest read-stream entry of a partition not yet stored (0 when caught up), "
    "reported by the process that owns the partition",
    ["partition"],
)
PARTITIONS_OWNED = Gauge(
    "plateflow_flow_partitions_owned", "Stream partitions this flow process reads"
)
HOTLIST_RELOADS = Counter(
    "plateflow_flow_hotlist_reloads_total",
    "Hotlist reloads of this process, by outcome (ok, failed: retried until it works)",
    ["outcome"],
)
