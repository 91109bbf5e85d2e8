"""Matching baseline: symspellpy (symmetric delete spelling correction) against the hotlist index.

    python benchmarks/matching_symspell.py --json OUT [--quick]

SymSpell is the usual answer to "find every dictionary word within one edit": it stores every
deletion variant of every word and looks a query's deletion variants up. Here its dictionary is
a 100,000-entry wanted list (``--quick``: 10,000) with ``differences=1, ocr_equivalents=1``.
SymSpell knows nothing of OCR look-alikes, so plates go in and queries go out in their OCR
*canonical* form (every look-alike class collapsed to one character, as the index does), and
each suggestion is then confirmed with :func:`matchers.compare` (the definition); the hits must
agree with the index's. Reported: build time, RSS growth, reads/s of each, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import write_json
from benchmarks.matching import hits_of, one_edit, random_plates, rss_mb, run_index, unique_plates
from matchers import Entry, Hotlist, HotlistIndex, OcrClasses, Policy, compare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=20250427)
    args = parser.parse_args(argv)
    try:
        from symspellpy import SymSpell, Verbosity
    except ImportError:
        args.json.write_text(json.dumps({"skipped": "symspellpy is not installed"}))
        return 0
    n_list = 10_000 if args.quick else 100_000
    n_reads = 5_000 if args.quick else 50_000
    rng = np.random.default_rng(args.seed)
    ocr = OcrClasses()
    plates = unique_plates(rng, n_list)
    hotlist = Hotlist(
        "wanted", "wanted", Policy(differences=1, ocr_equivalents=1),
        tuple(Entry(f"f{i}", p) for i, p in enumerate(plates)),
    )  # fmt: skip
    reads = random_plates(rng, n_reads)
    for i in rng.integers(0, n_reads, n_reads // 50):
        reads[int(i)] = one_edit(rng, plates[int(rng.integers(n_list))])

    before = rss_mb()
    started = time.perf_counter()
    index = HotlistIndex.build([hotlist], ocr)
    index_build = time.perf_counter() - started
    index_mb = rss_mb() - before
    index_rate, _, kept = run_index(index, reads, keep=range(n_reads))
    ours = [hits_of(kept.get(i, []), "wanted") for i in range(n_reads)]

    before = rss_mb()
    started = time.perf_counter()
    sym = SymSpell(max_dictionary_edit_distance=1, prefix_length=10)
    by_canon: dict[str, list[int]] = {}
    for i, entry in enumerate(hotlist.entries):
        canon = ocr.canonical(entry.plate)
        by_canon.setdefault(canon, []).append(i)
        sym.create_dictionary_entry(canon, 1)
    sym_build = time.perf_counter() - started
    sym_mb = rss_mb() - before
    theirs: list[frozenset[str]] = []
    started = time.perf_counter()
    for plate in reads:
        found = sym.lookup(ocr.canonical(plate), Verbosity.ALL, max_edit_distance=1)
        theirs.append(
            frozenset(
                hotlist.entries[j].entry_id
                for s in found
                for j in by_canon.get(s.term, ())
                if compare(plate, hotlist.entries[j].plate, hotlist.policy, ocr) is not None
            )
        )
    sym_rate = n_reads / (time.perf_counter() - started)
    result: dict[str, Any] = {
        "list_entries": n_list,
        "reads": n_reads,
        "index_build_s": index_build,
        "index_mb": index_mb,
        "index_reads_per_s": index_rate,
        "symspell_build_s": sym_build,
        "symspell_mb": sym_mb,
        "symspell_reads_per_s": sym_rate,
        "index_vs_symspell": index_rate / sym_rate,
        "agree": theirs == ours,
        "reads_hit": sum(1 for h in ours if h),
    }
    write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
