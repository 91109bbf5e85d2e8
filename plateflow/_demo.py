"""``plateflow demo``: the whole pipeline on embedded defaults, in about 30 seconds.

Embedded Redis, the shipped sample hotlists (stolen vehicles, partial plates from a "major
incident", a covert list) plus a generated 100,000-entry list, the sample tribal-land geofence,
the Bytewax flow, simulated cameras, a live alert feed and a summary at the end. On a records
database with no policy posted yet it also posts the sample policy and sample designees, so the
public transparency page (``plateflow serve``, then ``/transparency``) has them.
"""

from __future__ import annotations

import csv
import random
import threading
import time
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import redis
from rich.console import Console
from rich.table import Table

import records
from matchers import Hotlist
from plateflow._console import AlertFeed
from plateflow.settings import Settings
from plateflow.simulator import STATE_FORMATS, Simulator, random_plates
from sinks import ALERTS_LOG, COVERT_LOG, DEADLETTER_STREAM, ReadStore, append_reads

GENERATED_LIST = "ncic_stolen_plates"
SAMPLE_POLICY = "alpr_policy.md"
#: Placeholders an agency replaces with ``plateflow transparency designate``.
SAMPLE_DESIGNEES = {
    "administrator": ("ALPR administrator (sample)", "Alex Sample"),
    "custodian": ("Records supervisor (sample)", "Robin Sample"),
}


def samples_dir() -> Path:
    return Path(str(resources.files("plateflow") / "samples"))


def sample_hotlist_files() -> list[Path]:
    return sorted(samples_dir().glob("*.csv"))


def generate_large_list(path: Path, n: int, seed: int, sim: Simulator) -> Path:
    """A CSV of ``n`` stolen plates: mostly random, 2% from the simulated population so some
    pass the cameras. Written once; reruns reuse it."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    plates: list[tuple[str, str]] = []
    states = list(STATE_FORMATS)
    shares = np.array([STATE_FORMATS[s][0] for s in states])
    per_state = rng.multinomial(n - n // 50, shares / shares.sum())
    for state, k in zip(states, per_state, strict=True):
        plates.extend((p, state) for p in random_plates(rng, int(k), STATE_FORMATS[state][1]))
    picks = rng.choice(len(sim.plates) // 10, n // 50, replace=False)
    plates.extend((sim.plates[i], sim.states[i]) for i in picks)
    seen: set[tuple[str, str]] = set()
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["plate", "state", "reason", "case_number", "expires_at"])
        for i, (plate, state) in enumerate(plates):
            if (plate, state) in seen:
                continue
            seen.add((plate, state))
            writer.writerow([plate, state, "Stolen plate (NCIC)", f"NIC/V{i:09d}", "2027-12-31"])
    tmp.replace(path)
    policy = {"category": "stolen_plate", "ocr_equivalents": 1, "state": "prefer", "priority": 3}
    path.with_name(f"{path.stem}.policy.json").write_bytes(orjson.dumps(policy))
    return path


def plates_for(hotlists: list[Hotlist], rng: random.Random) -> list[tuple[str, str | None]]:
    """Plates the simulator sends past cameras: every listed plate, and for each pattern a
    plate it matches."""
    out: list[tuple[str, str | None]] = []
    for hotlist in hotlists:
        entries = hotlist.entries if len(hotlist.entries) < 1000 else hotlist.entries[:200]
        for entry in entries:
            if not entry.is_pattern:
                out.append((entry.plate, entry.state))
                continue
            out.append((_instance(entry.plate, rng), entry.state))
    return out


def _instance(pattern: str, rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "?":
            out.append(rng.choice(letters))
        elif ch == "*":
            out.append("".join(rng.choice(letters) for _ in range(rng.randint(0, 2))))
        elif ch == "[":
            end = pattern.index("]", i)
            out.append(rng.choice(pattern[i + 1 : end]))
            i = end
        else:
            out.append(ch)
        i += 1
    return "".join(out)[:10]


class Feeder:
    """Sends simulated reads into the streams at ``rate`` reads/s for ``duration`` seconds."""

    def __init__(
        self, redis_url: str, settings: Settings, sim: Simulator, rate: float, duration: float
    ) -> None:
        self.sent = 0
        self._args = (redis_url, settings.partitions, sim, rate, duration)
        self.thread = threading.Thread(target=self._run, name="simulator", daemon=True)

    def start(self) -> Feeder:
        self.thread.start()
        return self

    def _run(self) -> None:
        redis_url, partitions, sim, rate, duration = self._args
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + duration
        for chunk in sim.stream(rate, chunk=max(10, int(rate // 20))):
            append_reads(client, chunk, partitions)
            self.sent += len(chunk)
            if time.monotonic() >= deadline:
                break
        client.close()


def summary(
    console: Console,
    settings: Settings,
    redis_url: str,
    started: float,
    feed: AlertFeed,
    sent: int,
) -> dict[str, Any]:
    elapsed = time.monotonic() - started
    client = redis.Redis.from_url(redis_url)
    dead = int(client.xlen(DEADLETTER_STREAM))
    logged = int(client.xlen(ALERTS_LOG)) + int(client.xlen(COVERT_LOG))
    client.close()
    store = ReadStore(settings.data_dir, settings.retention_days)
    stored = store.scan_reads().select(pl.len()).collect().item()
    table = Table(title="plateflow demo summary", show_header=False)
    table.add_row("reads stored (Parquet, all runs)", f"{stored:,}")
    table.add_row("reads sent by the simulator (this run)", f"{sent:,}")
    table.add_row("elapsed", f"{elapsed:.1f} s")
    table.add_row("reads/s (this run, paced by the simulator)", f"{sent / elapsed:,.0f}")
    for kind in ("exact", "ocr", "fuzzy", "partial", "sighting"):
        table.add_row(f"alerts: {kind}", str(feed.counts.get(kind, 0)))
    table.add_row("alerts in the replay logs", f"{logged:,}")
    table.add_row("dead letters", f"{dead:,}")
    table.add_row("Parquet", str((settings.data_dir / "reads").resolve()))
    console.print(table)
    return {"stored": stored, "sent": sent, "dead": dead, "alerts": dict(feed.counts)}


def seed_transparency(settings: Settings, by: str) -> bool:
    """Post the sample policy and designees when the records database has no policy yet (a
    demo's records, recorded and audited as ``by``); False when there was one already."""
    engine = records.connect(settings.effective_database_url)
    try:
        if records.list_policies(engine):
            return False
        today = datetime.now(timezone.utc).date()
        records.publish_policy(
            engine,
            (samples_dir() / SAMPLE_POLICY).read_bytes(),
            media_type="text/markdown",
            effective_on=today,
            by=by,
        )
        for role, (title, name) in SAMPLE_DESIGNEES.items():
            records.designate(engine, role=role, title=title, name=name, since=today, by=by)
        return True
    finally:
        engine.dispose()
