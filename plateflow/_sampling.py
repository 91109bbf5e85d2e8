"""Ordinary traffic for the policy cost check (``plateflow hotlist check`` / ``policy``).

Stored reads are the best sample of what a policy will see: the plates of the last
``days`` days of Parquet, and the read rate they imply. With no stored reads (a new install),
simulated traffic from :mod:`plateflow.simulator` stands in, and no rate is known.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import records
from plateflow.settings import Settings
from plateflow.simulator import Simulator
from sinks import ReadStore


def traffic_sample(settings: Settings, n: int, days: int = 7) -> records.PlateSample:
    """Up to ``n`` plates of ordinary traffic: stored reads if any, else simulated ones."""
    store = ReadStore(settings.data_dir, settings.retention_days)
    end = datetime.now(timezone.utc)
    start = end - timedelta(days=days)
    frame = store.scan_reads(start, end).select("plate", "ts").collect()
    if frame.height:
        span_h = max(
            (frame["ts"].max() - frame["ts"].min()).total_seconds() / 3600,  # type: ignore[operator,union-attr]
            1 / 60,
        )
        plates = frame.get_column("plate").sample(min(n, frame.height), seed=1)
        return records.PlateSample(
            plates.to_list(), f"{frame.height:,} stored reads of the last {days} days",
            reads_per_hour=frame.height / span_h,
        )  # fmt: skip
    sim = Simulator(population_size=max(n, 10_000), seed=99, ocr_error_rate=0.0,
                    malformed_rate=0.0)  # fmt: skip
    return records.PlateSample([r["plate"] for r in sim.reads(n)], "simulated traffic")
