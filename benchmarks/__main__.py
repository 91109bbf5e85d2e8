"""Run every benchmark, each beside its baselines, into one JSON file and one HTML report.

    python -m benchmarks [--quick] [--out bench-results] [--only ingest,matching]

Each benchmark runs in its own process (its own memory and GIL), writes its JSON, and its output
goes to ``OUT/logs/NAME.log``; a progress line shows which one is running. Then ``OUT/
benchmarks.json`` holds every result (or why it was skipped or failed) and ``OUT/report.html``
the tables and charts (throughput against batch size and process count, latency
distributions). ``--quick`` is a smoke run of every benchmark in seconds each, for CI: its
figures say that the code runs, not how fast (nothing is asserted either way).

Every benchmark starts the Redis it needs itself (a private server on a free port); a configured
``PLATEFLOW_REDIS_URL`` is removed from their environment, since some of them flush their Redis.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._suite_report import write_report  # noqa: E402

console = Console(stderr=True)
_RUNS = itertools.count(1)


@dataclass(frozen=True)
class Bench:
    """One benchmark script: its arguments for a full and a quick run (``{json}`` = output)."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    what: str


BENCHES = (
    Bench("matching", "matching.py", (), ("--quick",), "hotlist index vs cdist, dict index"),
    Bench("matching_symspell", "matching_symspell.py", (), ("--quick",), "index vs symspellpy"),
    Bench("pipeline", "pipeline.py", ("--reads", "1000000"),
          ("--reads", "20000", "--latency-seconds", "2", "--latency-rate", "2000"),
          "the flow end to end, 1..N processes"),
    Bench("pipeline_baseline", "pipeline_baseline.py", ("--reads", "200000"),
          ("--reads", "5000"), "per-read XADD + a plain consumer loop"),
    Bench("ingest", "ingest.py", (), ("--quick",), "HTTP ingest vs the bare endpoint"),
    Bench("storage", "storage.py", ("--reads", "50000000"),
          ("--reads", "30000", "--days", "5", "--cameras", "20"), "a year of reads in Parquet"),
    Bench("console", "console.py", (), ("--quick",), "alert delivery to dispatch consoles"),
)  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PLATEFLOW_")}


def _accepts(script: Path, flag: str) -> bool:
    """Whether ``script --help`` mentions ``flag`` (benchmarks grow options over time)."""
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, env=_env()
    )
    return flag in done.stdout


def _run_one(bench: Bench, args: tuple[str, ...], out: Path, logs: Path) -> dict[str, Any]:
    script = ROOT / "benchmarks" / bench.script
    target = out / "parts" / f"{bench.name}-{next(_RUNS)}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(script), *args, "--json", str(target)]
    started = time.perf_counter()
    with (logs / f"{bench.name}.log").open("ab") as log:
        log.write(("$ " + " ".join(command) + "\n").encode())
        log.flush()
        done = subprocess.run(command, cwd=ROOT, env=_env(), stdout=log, stderr=log)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not target.is_file():
        return {
            "failed": f"exit code {done.returncode}; see logs/{bench.name}.log",
            "seconds": seconds,
        }
    result: dict[str, Any] = json.loads(target.read_text())
    result["_seconds"] = seconds
    result["_command"] = " ".join(["python", f"benchmarks/{bench.script}", *args])
    return result


def run_suite(quick: bool, out: Path, only: set[str] | None, processes: int) -> dict[str, Any]:
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in BENCHES if only is None or b.name in only]
    results: dict[str, Any] = {}
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task("benchmarks", total=len(chosen))
        for bench in chosen:
            script = ROOT / "benchmarks" / bench.script
            progress.update(overall, description=f"{bench.name}: {bench.what}")
            args = bench.quick if quick else bench.full
            if not script.is_file():
                results[bench.name] = {"skipped": f"benchmarks/{bench.script} does not exist yet"}
            elif bench.name == "pipeline":
                results[bench.name] = _pipeline(script, args, out, logs, processes, quick)
            else:
                results[bench.name] = _run_one(bench, args, out, logs)
            progress.advance(overall)
    return results


def _pipeline(
    script: Path, args: tuple[str, ...], out: Path, logs: Path, processes: int, quick: bool
) -> dict[str, Any]:
    """The flow at 1..N processes when ``pipeline.py`` takes ``--processes``, else at one."""
    bench = next(b for b in BENCHES if b.name == "pipeline")
    if not _accepts(script, "--processes"):
        result = _run_one(bench, args, out, logs)
        result["_note"] = "pipeline.py has no --processes option yet: one process measured"
        return {"by_processes": {"1": result}}
    counts = [1, processes] if quick else list(range(1, processes + 1))
    runs = {}
    for n in dict.fromkeys(counts):
        result = _run_one(bench, (*args, "--processes", str(n)), out, logs)
        # a cluster run reports its one size as a row of "cluster": lift it to the top
        rows = result.pop("cluster", None) or [{}]
        runs[str(n)] = {**result, **rows[0]}
    return {"by_processes": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: seconds per benchmark")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder")
    parser.add_argument("--only", default=None, help="comma-separated benchmark names")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="most flow processes"
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    unknown = (only or set()) - {b.name for b in BENCHES}
    if unknown:
        names = ", ".join(b.name for b in BENCHES)
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: {names}")
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    results = run_suite(args.quick, args.out, only, max(1, args.processes))
    combined = {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "quick": args.quick,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_end": os.getloadavg(),
        },
        "benchmarks": results,
    }
    (args.out / "benchmarks.json").write_text(json.dumps(combined, indent=2, default=float))
    write_report(combined, args.out / "report.html")
    failed = [name for name, r in results.items() if "failed" in r]
    console.print(f"wrote {args.out / 'benchmarks.json'} and {args.out / 'report.html'}")
    if failed:
        console.print(f"[bold red]failed:[/] {', '.join(failed)} (see {args.out / 'logs'})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
