"""``python -m benchmarks --quick``: every benchmark runs, one JSON and one HTML report come out.

A smoke run so CI exercises every benchmark script; its figures are not asserted (speed is
measured in benchmarks/, never in a timed test). The ingest benchmark needs ``wrk`` (Debian
package ``wrk``) and ``redis-server``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_quick_suite_runs_every_benchmark(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: apt-get install wrk (the ingest benchmark's load)")
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--processes", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    logs = "\n".join(p.read_text()[-1500:] for p in sorted((out / "logs").glob("*.log")))
    assert done.returncode == 0, done.stderr[-3000:] + logs
    combined = json.loads((out / "benchmarks.json").read_text())
    assert combined["meta"]["quick"] is True
    results = combined["benchmarks"]
    expected = {"matching", "matching_symspell", "pipeline", "pipeline_baseline", "ingest"}
    assert expected | {"storage", "console"} == set(results)
    for name in expected:
        assert "failed" not in results[name] and "skipped" not in results[name], name
    ingest = results["ingest"]
    for pair in ingest["batch"].values():
        assert pair["plateflow"]["requests_per_s"] > 0 and pair["bare"]["requests_per_s"] > 0
        assert pair["plateflow"]["non_2xx"] == 0
    assert set(ingest["durability"]) == {"everysec", "always"}
    assert ingest["fixed_rate"]["plateflow"]["statuses"] == {
        "202": ingest["fixed_rate"]["plateflow"]["completed"]
    }
    assert results["matching_symspell"]["agree"] is True
    assert results["pipeline"]["by_processes"]["1"]["stored_reads"] > 0
    report = (out / "report.html").read_text()
    assert report.count("<svg") >= 4
    assert "HTTP ingest" in report and "Matching" in report and "Pipeline" in report
