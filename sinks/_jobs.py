"""The outcome of the periodic jobs (compaction, retention purge, audit verification), kept
beside the data they work on so a scrape can see them.

A finished Kubernetes Job cannot be scraped, and "the purge has not run for two days" is an
absence no counter in a short-lived process can show. So each run leaves
``{data_dir}/_jobs/{name}.json`` (written whole or not at all) and whoever serves ``/metrics``
with the same data directory (the API) renders it as gauges with :func:`job_metrics`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from sinks._errors import SinksError
from sinks._files import atomic_write_bytes

__all__ = ["JOBS_DIR", "JobRun", "job_metrics", "job_runs", "record_job_run"]

JOBS_DIR = "_jobs"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class JobRun:
    """The last run of job ``name`` (epoch seconds) and the end of its last successful run."""

    name: str
    started: float
    finished: float
    exit_code: int
    last_success: float | None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _path(data_dir: Path, name: str) -> Path:
    if not _NAME.match(name):
        msg = f"job name {name!r} must be lower-case letters, digits and '-' (e.g. retention-purge)"
        raise SinksError(msg)
    return data_dir / JOBS_DIR / f"{name}.json"


def record_job_run(
    data_dir: Path, name: str, *, started: float, finished: float, exit_code: int
) -> JobRun:
    """Record a run of ``name``; a failed run keeps the previous success's time."""
    path = _path(data_dir, name)
    previous = _load(path)
    last_success = finished if exit_code == 0 else (previous.last_success if previous else None)
    run = JobRun(name, started, finished, exit_code, last_success)
    payload = {
        "name": name,
        "started": started,
        "finished": finished,
        "exit_code": exit_code,
        "last_success": last_success,
    }
    atomic_write_bytes(path, orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return run


def _load(path: Path) -> JobRun | None:
    try:
        data: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        msg = f"job status file {path} is unreadable ({exc}); delete it, the next run rewrites it"
        raise SinksError(msg) from exc
    return JobRun(
        str(data["name"]),
        float(data["started"]),
        float(data["finished"]),
        int(data["exit_code"]),
        None if data.get("last_success") is None else float(data["last_success"]),
    )


def job_runs(data_dir: Path) -> list[JobRun]:
    """Every job's last run recorded under ``data_dir``, by name."""
    directory = data_dir / JOBS_DIR
    if not directory.is_dir():
        return []
    runs = (_load(path) for path in sorted(directory.glob("*.json")))
    return [run for run in runs if run is not None]


def job_metrics(data_dir: Path) -> bytes:
    """The job gauges in the Prometheus text format (a registry of their own, built per scrape
    from the files, so several apps in one process never collide)::

        plateflow_job_last_run_timestamp_seconds{name}       end of the last run
        plateflow_job_last_run_ok{name}                      1 if it exited 0, else 0
        plateflow_job_last_run_duration_seconds{name}
        plateflow_job_last_success_timestamp_seconds{name}   only once a run succeeded
    """
    registry = CollectorRegistry()
    last_run = Gauge(
        "plateflow_job_last_run_timestamp_seconds",
        "End of the last run of a periodic job",
        ["name"],
        registry=registry,
    )
    ok = Gauge(
        "plateflow_job_last_run_ok",
        "1 if the last run of a periodic job exited 0, else 0",
        ["name"],
        registry=registry,
    )
    duration = Gauge(
        "plateflow_job_last_run_duration_seconds",
        "How long the last run of a periodic job took",
        ["name"],
        registry=registry,
    )
    success = Gauge(
        "plateflow_job_last_success_timestamp_seconds",
        "End of the last successful run of a periodic job",
        ["name"],
        registry=registry,
    )
    for run in job_runs(data_dir):
        last_run.labels(name=run.name).set(run.finished)
        ok.labels(name=run.name).set(1 if run.ok else 0)
        duration.labels(name=run.name).set(max(0.0, run.finished - run.started))
        if run.last_success is not None:
            success.labels(name=run.name).set(run.last_success)
    return generate_latest(registry)
