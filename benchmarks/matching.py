"""Matching benchmark (issue 3): the hotlist index at national scale, against two baselines.

    python benchmarks/matching.py --json OUT [--quick]

Builds, in one run and with a fixed seed, a 1,000,000-entry list with ``ocr_equivalents=1``, a
100,000-entry list with ``differences=1, ocr_equivalents=1`` and a list of 10,000 wildcard
patterns (``--quick``: a tenth of each), from realistic US plate formats (7ABC123, ABC1234,
123ABC, ...). It reports:

* ``build_s_1m``, ``index_mb_1m``: time and RSS growth (psutil) of building the 1M list's
  index (the Entry objects exist before; their own RSS is ``entries_mb_1m``);
* ``reads_per_s_1m_ocr``: reads per second against the 1M list alone, batches of 1,000;
* ``reads_per_s_mixed``: the same reads against all three lists at once;
* the same queries on a sample through ``rapidfuzz.process.cdist`` brute force and through a
  pure-Python dict deletion index, with their reads/s and the index's speed-up as ratios; both
  baselines' hits are checked against the index's (``agree``).

Traffic is mostly innocent plates with a few percent of hits of every kind. One process, one
thread (numpy does not thread these operations), so reads/s is per core. Prints a table (rich)
and writes the JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from rapidfuzz.distance import DamerauLevenshtein, Levenshtein
from rapidfuzz.process import cdist
from rich.console import Console
from rich.table import Table

from matchers import Entry, Hotlist, HotlistIndex, OcrClasses, Policy, compare, simulate_plates

LETTERS = np.frombuffer(b"ABCDEFGHJKLMNPRSTUVWXYZ", dtype=np.uint8)  # no I, O, Q on US plates
DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
LOOKALIKE = {
    "0": "O",
    "O": "0",
    "D": "0",
    "1": "I",
    "I": "1",
    "2": "Z",
    "Z": "2",
    "5": "S",
    "S": "5",
    "8": "B",
    "B": "8",
    "6": "G",
    "G": "6",
}
TARGETS = {
    "reads_per_s_1m_ocr": 300_000,
    "reads_per_s_mixed": 100_000,
    "build_s_1m": 10.0,
    "index_mb_1m": 300.0,
}
BATCH = 1000


def random_plates(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` plates in common US formats (duplicates possible), from ``rng``'s stream."""
    return simulate_plates(count, seed=int(rng.integers(2**31)))


def unique_plates(rng: np.random.Generator, count: int, avoid: set[str] | None = None) -> list[str]:
    seen: set[str] = set(avoid or ())
    out: list[str] = []
    while len(out) < count:
        for p in random_plates(rng, (count - len(out)) * 11 // 10 + 16):
            if p not in seen:
                seen.add(p)
                out.append(p)
                if len(out) == count:
                    break
    return out


def lookalike(rng: np.random.Generator, plate: str) -> str:
    spots = [i for i, c in enumerate(plate) if c in LOOKALIKE]
    if not spots:
        return plate
    i = spots[int(rng.integers(len(spots)))]
    return plate[:i] + LOOKALIKE[plate[i]] + plate[i + 1 :]


def one_edit(rng: np.random.Generator, plate: str) -> str:
    i = int(rng.integers(len(plate)))
    c = chr(int(LETTERS[rng.integers(23)])) if rng.random() < 0.5 else str(rng.integers(10))
    op = int(rng.integers(4))
    if op == 0:
        return plate[:i] + c + plate[i:]
    if op == 1:
        return plate[:i] + plate[i + 1 :]
    if op == 2 or i + 1 >= len(plate):
        return plate[:i] + c + plate[i + 1 :]
    return plate[:i] + plate[i + 1] + plate[i] + plate[i + 2 :]


def make_pattern(rng: np.random.Generator, plate: str) -> str:
    """A partial plate a witness might give, from ``plate``."""
    kind = rng.random()
    chars = list(plate)
    n = len(chars)
    if kind < 0.55:  # one or two unknown characters
        for i in rng.choice(n, size=int(rng.integers(1, 3)), replace=False):
            chars[i] = "?"
        return "".join(chars)
    if kind < 0.70:  # "it was a B or an 8"
        i = int(rng.integers(n))
        other = LOOKALIKE.get(chars[i], chr(int(LETTERS[rng.integers(23)])))
        chars[i] = "[" + "".join(sorted({chars[i], other})) + "]"
        if rng.random() < 0.5:
            chars[(i + 3) % n] = "?"
        return "".join(chars)
    if kind < 0.85:  # unsure how many characters in the middle
        i = int(rng.integers(2, n - 2))
        return plate[:i] + "*" + plate[i + int(rng.integers(1, 3)) :]
    if kind < 0.95:  # the start or the end only
        return plate[:5] + "*" if rng.random() < 0.5 else "*" + plate[-5:]
    return "*" + plate[1:5] + "*"  # a run seen in the middle


def fill(rng: np.random.Generator, pattern: str) -> str:
    """A plate that matches ``pattern``."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            j = pattern.index("]", i)
            out.append(pattern[i + 1 + int(rng.integers(j - i - 1))])
            i = j + 1
            continue
        if c == "?":
            out.append(str(rng.integers(10)))
        elif c == "*":
            out.append("".join(str(rng.integers(10)) for _ in range(int(rng.integers(0, 3)))))
        else:
            out.append(c)
        i += 1
    return "".join(out)[:10]


def rss_mb() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def run_index(
    index: HotlistIndex, reads: list[str], keep: Sequence[int] = ()
) -> tuple[float, dict[str, int], dict[int, list[Any]]]:
    """Reads/s over batches of BATCH, hit counts, and the matches of the reads in ``keep``.

    Results are dropped batch by batch, as the dataflow does (holding every match of a large
    run would only measure the garbage collector).
    """
    states: list[str | None] = [None] * BATCH
    ts = [1_700_000_000_000] * BATCH
    wanted = set(keep)
    kept: dict[int, list[Any]] = {}
    stats = {"reads_hit": 0, "exact": 0, "ocr": 0, "fuzzy": 0, "partial": 0}
    started = time.perf_counter()
    for lo in range(0, len(reads), BATCH):
        part = reads[lo : lo + BATCH]
        found = index.match_batch(part, states[: len(part)], ts[: len(part)], max_per_read=3)
        for i, matches in enumerate(found):
            if matches:
                stats["reads_hit"] += 1
                for m in matches:
                    stats[m.kind] += 1
                if lo + i in wanted:
                    kept[lo + i] = matches
    rate = len(reads) / (time.perf_counter() - started)
    return rate, stats, kept


def hits_of(matches: list[Any], name: str) -> frozenset[str]:
    return frozenset(m.entry.entry_id for m in matches if m.hotlist.name == name)


def brute_force(
    hotlist: Hotlist, sample: list[str], ocr: OcrClasses
) -> tuple[float, list[frozenset[str]]]:
    """cdist over canonical plates (C++, one worker), then the exact decision on the survivors."""
    policy = hotlist.policy
    canon_entries = [ocr.canonical(e.plate) for e in hotlist.entries]
    scorer = DamerauLevenshtein.distance if policy.differences else Levenshtein.distance
    out: list[frozenset[str]] = []
    started = time.perf_counter()
    for lo in range(0, len(sample), 50):
        part = sample[lo : lo + 50]
        dist = cdist(
            [ocr.canonical(p) for p in part],
            canon_entries,
            scorer=scorer,
            score_cutoff=policy.differences,
            dtype=np.int8,
            workers=1,
        )
        for row, plate in zip(dist, part, strict=True):
            hit = frozenset(
                hotlist.entries[j].entry_id
                for j in np.flatnonzero(row <= policy.differences)
                if compare(plate, hotlist.entries[j].plate, policy, ocr) is not None
            )
            out.append(hit)
    return len(sample) / (time.perf_counter() - started), out


def scan_patterns(
    hotlist: Hotlist, sample: list[str], ocr: OcrClasses
) -> tuple[float, list[frozenset[str]]]:
    """Patterns without an index: the definition (compare) against every pattern."""
    out: list[frozenset[str]] = []
    started = time.perf_counter()
    for plate in sample:
        out.append(
            frozenset(
                e.entry_id
                for e in hotlist.entries
                if compare(plate, e.plate, hotlist.policy, ocr) is not None
            )
        )
    return len(sample) / (time.perf_counter() - started), out


def deletion_variants(text: str, k: int) -> set[str]:
    out = {text}
    frontier = {text}
    for _ in range(k):
        frontier = {s[:i] + s[i + 1 :] for s in frontier for i in range(len(s))}
        out |= frontier
    return out


def dict_index(hotlist: Hotlist, sample: list[str], ocr: OcrClasses) -> dict[str, Any]:
    """The same queries through a pure-Python dict of canonical deletion variants."""
    d = hotlist.policy.differences
    before = rss_mb()
    started = time.perf_counter()
    table: dict[str, list[int]] = {}
    for i, e in enumerate(hotlist.entries):
        for v in deletion_variants(ocr.canonical(e.plate), d):
            table.setdefault(v, []).append(i)
    build = time.perf_counter() - started
    mb = rss_mb() - before
    out: list[frozenset[str]] = []
    started = time.perf_counter()
    for plate in sample:
        cands: set[int] = set()
        for v in deletion_variants(ocr.canonical(plate), d):
            cands.update(table.get(v, ()))
        out.append(
            frozenset(
                hotlist.entries[j].entry_id
                for j in cands
                if compare(plate, hotlist.entries[j].plate, hotlist.policy, ocr) is not None
            )
        )
    rate = len(sample) / (time.perf_counter() - started)
    del table
    return {"reads_per_s": rate, "build_s": build, "mb": mb, "hits": out}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes (for CI)")
    parser.add_argument("--seed", type=int, default=20250427)
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    n_ocr, n_fuzzy, n_patterns = 1_000_000 // scale, 100_000 // scale, 10_000 // scale
    n_reads = 200_000 // scale
    rng = np.random.default_rng(args.seed)
    ocr = OcrClasses()
    console = Console()
    res: dict[str, Any] = {
        "quick": args.quick,
        "seed": args.seed,
        "sizes": {
            "ocr_list": n_ocr,
            "fuzzy_list": n_fuzzy,
            "patterns": n_patterns,
            "reads": n_reads,
            "batch": BATCH,
        },
        "machine": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
        },
    }

    console.print(f"generating lists and {n_reads:,} reads (seed {args.seed})...")
    plates_ocr = unique_plates(rng, n_ocr)
    plates_fuzzy = unique_plates(rng, n_fuzzy, set(plates_ocr))
    pattern_src = random_plates(rng, n_patterns)
    before = rss_mb()
    (big, seconds) = timed(
        lambda: Hotlist(
            "ncic-1m",
            "stolen",
            Policy(ocr_equivalents=1),
            tuple(Entry(f"o{i}", p, reason="stolen vehicle") for i, p in enumerate(plates_ocr)),
        )
    )
    res["entries_s_1m"], res["entries_mb_1m"] = seconds, rss_mb() - before
    fuzzy = Hotlist(
        "wanted-100k",
        "wanted",
        Policy(differences=1, ocr_equivalents=1),
        tuple(Entry(f"f{i}", p) for i, p in enumerate(plates_fuzzy)),
    )
    patterns = [make_pattern(rng, p) for p in pattern_src]
    partial = Hotlist(
        "partials-10k",
        "major crime",
        Policy(ocr_equivalents=1),
        tuple(Entry(f"p{i}", p) for i, p in enumerate(patterns)),
    )

    reads = random_plates(rng, n_reads)
    picks = rng.integers(0, n_reads, size=(4, n_reads // 100))
    for i in picks[0]:
        reads[i] = plates_ocr[int(rng.integers(n_ocr))]
    for i in picks[1]:
        reads[i] = lookalike(rng, plates_ocr[int(rng.integers(n_ocr))])
    for i in picks[2][: len(picks[2]) // 2]:
        reads[i] = one_edit(rng, plates_fuzzy[int(rng.integers(n_fuzzy))])
    for i in picks[3][: len(picks[3]) // 2]:
        reads[i] = fill(rng, patterns[int(rng.integers(n_patterns))])

    console.print("building the 1M OCR list...")
    before = rss_mb()
    index_1m, res["build_s_1m"] = timed(lambda: HotlistIndex.build([big], ocr))
    res["index_mb_1m"] = rss_mb() - before
    res["index_array_mb_1m"] = index_1m.nbytes / 2**20
    mixed, res["build_s_fuzzy_100k"] = timed(lambda: index_1m.with_hotlist(fuzzy))
    mixed, res["build_s_patterns_10k"] = timed(lambda: mixed.with_hotlist(partial))
    res["index_array_mb_mixed"] = mixed.nbytes / 2**20

    console.print("matching...")
    run_index(index_1m, reads[: BATCH * 5])  # warm-up
    res["reads_per_s_1m_ocr"], stats_1m, _ = run_index(index_1m, reads)
    res["reads_per_s_mixed"], stats_mixed, _ = run_index(mixed, reads)
    res["hit_rate_1m_ocr"] = stats_1m["reads_hit"] / n_reads
    res["hit_rate_mixed"] = stats_mixed["reads_hit"] / n_reads
    res["hits_by_kind_mixed"] = {k: stats_mixed[k] for k in ("exact", "ocr", "fuzzy", "partial")}

    console.print("baselines on a sample...")
    baselines: dict[str, Any] = {}
    sample_n = 200 if not args.quick else 100
    dict_n = 20_000 // scale
    for hotlist in (big, fuzzy, partial):
        alone = index_1m if hotlist is big else HotlistIndex.build([hotlist], ocr)
        rate, stats, _ = run_index(alone, reads)
        # the sample: evenly spread reads plus some that hit, so agreement is not vacuous
        _, _, hitting = run_index(alone, reads[:dict_n], keep=range(dict_n))
        idx = list(range(0, dict_n, max(1, dict_n // sample_n)))[:sample_n]
        idx += [i for i in sorted(hitting) if hitting[i]][:25]
        sample = [reads[i] for i in idx]
        ours = [hits_of(hitting.get(i, []), hotlist.name) for i in idx]
        row: dict[str, Any] = {
            "index_reads_per_s": rate,
            "index_hit_rate": stats["reads_hit"] / n_reads,
            "sample_reads": len(sample),
        }
        if hotlist is partial:
            scan_rate, scan_hits = scan_patterns(hotlist, sample, ocr)
            row |= {
                "scan_reads_per_s": scan_rate,
                "scan_agree": scan_hits == ours,
                "index_vs_scan": rate / scan_rate,
            }
        else:
            bf_rate, bf_hits = brute_force(hotlist, sample, ocr)
            dict_res = dict_index(hotlist, reads[:dict_n], ocr)
            ours_dict = [hits_of(hitting.get(i, []), hotlist.name) for i in range(dict_n)]
            row |= {
                "cdist_reads_per_s": bf_rate,
                "cdist_agree": bf_hits == ours,
                "index_vs_cdist": rate / bf_rate,
                "dict_reads_per_s": dict_res["reads_per_s"],
                "dict_build_s": dict_res["build_s"],
                "dict_mb": dict_res["mb"],
                "dict_agree": dict_res["hits"] == ours_dict,
                "index_vs_dict": rate / dict_res["reads_per_s"],
            }
        baselines[hotlist.name] = row
    res["baselines"] = baselines
    res["targets"] = {
        k: {"target": v, "met": bool(res[k] >= v if k.startswith("reads") else res[k] <= v)}
        for k, v in TARGETS.items()
    }

    table = Table(title="plateflow matching benchmark" + (" (quick)" if args.quick else ""))
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for key in ("build_s_1m", "index_mb_1m", "reads_per_s_1m_ocr", "reads_per_s_mixed"):
        t = res["targets"][key]
        table.add_row(
            key,
            f"{res[key]:,.2f}",
            f"{'>=' if key.startswith('reads') else '<'} "
            f"{t['target']:,} {'ok' if t['met'] else 'MISSED'}",
        )
    for key in (
        "entries_s_1m",
        "entries_mb_1m",
        "index_array_mb_1m",
        "build_s_fuzzy_100k",
        "build_s_patterns_10k",
        "index_array_mb_mixed",
        "hit_rate_1m_ocr",
        "hit_rate_mixed",
    ):
        table.add_row(key, f"{res[key]:,.4f}" if "rate" in key else f"{res[key]:,.2f}", "")
    for name, b in baselines.items():
        table.add_row(
            f"{name}: index alone, reads/s",
            f"{b['index_reads_per_s']:,.0f}",
            f"hit rate {b['index_hit_rate']:.4f}",
        )
        if "scan_reads_per_s" in b:
            table.add_row(
                f"{name}: compare() over every pattern",
                f"{b['scan_reads_per_s']:,.0f}",
                f"index x{b['index_vs_scan']:,.0f}, agree={b['scan_agree']}",
            )
            continue
        table.add_row(
            f"{name}: rapidfuzz cdist brute force",
            f"{b['cdist_reads_per_s']:,.0f}",
            f"index x{b['index_vs_cdist']:,.0f}, agree={b['cdist_agree']}",
        )
        table.add_row(
            f"{name}: Python dict deletion index",
            f"{b['dict_reads_per_s']:,.0f}",
            f"index x{b['index_vs_dict']:,.1f}, agree={b['dict_agree']}",
        )
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2, default=float))
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
