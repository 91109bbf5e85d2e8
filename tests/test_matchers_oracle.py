"""HotlistIndex against a brute-force oracle written from ARCHITECTURE "Matching semantics".

The oracle shares no code with ``matchers`` beyond the public data classes it feeds in:

* plates: every string reachable from the read with at most two *difference* operations
  (insert, delete, substitute by any character, swap two adjacent characters) is enumerated
  breadth first; an entry E matches with (k, s) when one such string S, reached in k
  operations, equals E up to s positions that hold OCR-equivalent characters. Running the
  operations from the read is the same as running their inverses from the entry, and OCR
  substitutions commute with the other operations (an OCR substitution on a character that is
  later deleted or replaced is never part of a best script), so this is exactly the definition.
  Inserted or substituted characters are drawn from the test alphabet, which holds every
  character of every entry;
* patterns: every way of giving each ``*`` a length is tried, the expanded glob compared
  position by position;
* then windows, state, candidates, one match per entry (its best), ranking and the cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchers import Entry, Hotlist, HotlistIndex, Match, OcrClasses, Policy, compare

ALPHABET = "AB08OD1IC"
GROUPS = [set("0ODQ"), set("1I"), set("2Z"), set("5S"), set("8B"), set("6G")]
KINDS = ["exact", "ocr", "fuzzy", "partial"]


def equivalent(a: str, b: str) -> bool:
    return a == b or any(a in g and b in g for g in GROUPS)


def neighbourhood(read: str, max_ops: int) -> dict[str, int]:
    """Every string within ``max_ops`` difference operations of ``read``, with the fewest."""
    best = {read: 0}
    frontier = [read]
    for ops in range(1, max_ops + 1):
        nxt = []
        for s in frontier:
            variants = set()
            for i in range(len(s) + 1):
                for c in ALPHABET:
                    variants.add(s[:i] + c + s[i:])
            for i in range(len(s)):
                variants.add(s[:i] + s[i + 1 :])
                for c in ALPHABET:
                    if c != s[i]:
                        variants.add(s[:i] + c + s[i + 1 :])
                if i + 1 < len(s) and s[i] != s[i + 1]:
                    variants.add(s[:i] + s[i + 1] + s[i] + s[i + 2 :])
            for v in variants:
                if v not in best:
                    best[v] = ops
                    nxt.append(v)
        frontier = nxt
    return best


def canonical(text: str) -> str:
    return "".join(min(next((g for g in GROUPS if c in g), {c})) for c in text)


_NEIGHBOURS: dict[tuple[str, int], dict[str, list[tuple[str, int]]]] = {}


def plate_cost(read: str, entry: str, policy: Policy) -> tuple[int, int] | None:
    """(differences, substitutions) of the best script, or None."""
    if len(entry) < policy.min_fuzzy_length:
        return (0, 0) if read == entry else None
    key = (read, policy.differences)
    if key not in _NEIGHBOURS:
        by_canonical: dict[str, list[tuple[str, int]]] = {}
        for s, k in neighbourhood(read, policy.differences).items():
            by_canonical.setdefault(canonical(s), []).append((s, k))
        _NEIGHBOURS[key] = by_canonical
    best = None
    for s, k in _NEIGHBOURS[key].get(canonical(entry), []):
        assert len(s) == len(entry) and all(map(equivalent, s, entry))
        subs = sum(x != y for x, y in zip(s, entry, strict=True))
        if subs <= policy.ocr_equivalents and (best is None or (k, subs) < best):
            best = (k, subs)
    return best


def parse(pattern: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = pattern.index("]", i)
            out.append(("set", pattern[i + 1 : j]))
            i = j + 1
        else:
            kind = pattern[i] if pattern[i] in "*?" else "lit"
            out.append((kind, pattern[i]))
            i += 1
    return out


def pattern_subs(read: str, pattern: str, max_subs: int) -> int | None:
    tokens = parse(pattern)
    stars = [i for i, t in enumerate(tokens) if t[0] == "*"]
    room = len(read) - (len(tokens) - len(stars))
    if room < 0 or (room > 0 and not stars):
        return None
    best = None
    for lengths in itertools.product(range(room + 1), repeat=len(stars)):
        if sum(lengths) != room:
            continue
        expanded: list[tuple[str, str]] = []
        star_len = dict(zip(stars, lengths, strict=True))
        for i, t in enumerate(tokens):
            expanded.extend([("?", "?")] * star_len[i] if t[0] == "*" else [t])
        subs = 0
        for (kind, val), c in zip(expanded, read, strict=True):
            if kind == "lit" and c != val:
                if not equivalent(c, val):
                    break
                subs += 1
            elif kind == "set" and c not in val:
                break
        else:
            if best is None or subs < best:
                best = subs
    return best if best is not None and best <= max_subs else None


@dataclass(frozen=True)
class Expected:
    hotlist: str
    entry_id: str
    kind: str
    differences: int
    subs: int
    state_mismatch: bool
    via_candidate: bool
    priority: int


def oracle(
    hotlists: Sequence[Hotlist],
    plate: str,
    state: str | None,
    ts: int,
    alts: Sequence[str],
    top: int,
) -> list[Expected]:
    found: list[Expected] = []
    for h in hotlists:
        p = h.policy
        for e in h.entries:
            if e.effective_from_ms is not None and ts < e.effective_from_ms:
                continue
            if e.expires_at_ms is not None and ts >= e.expires_at_ms:
                continue
            mismatch = state is not None and e.state is not None and state != e.state
            if mismatch and p.state == "require":
                continue
            flagged = mismatch and p.state == "prefer"
            options = []
            if "?" in e.plate or "*" in e.plate or "[" in e.plate:
                subs = pattern_subs(plate, e.plate, p.ocr_equivalents)
                if subs is not None:
                    options.append(("partial", 0, subs, False))
            else:
                cost = plate_cost(plate, e.plate, p)
                if cost is not None:
                    kind = "fuzzy" if cost[0] else "ocr" if cost[1] else "exact"
                    options.append((kind, cost[0], cost[1], False))
                if p.candidates:
                    exact_only = Policy(
                        ocr_equivalents=p.ocr_equivalents, min_fuzzy_length=p.min_fuzzy_length
                    )
                    for alt in alts:
                        cost = plate_cost(alt, e.plate, exact_only)
                        if cost is not None:
                            options.append(("ocr" if cost[1] else "exact", 0, cost[1], True))
            if options:
                kind, diffs, subs, via = min(
                    options, key=lambda o: (KINDS.index(o[0]), o[1], o[2], o[3])
                )
                found.append(
                    Expected(h.name, e.entry_id, kind, diffs, subs, flagged, via, p.priority)
                )
    found.sort(
        key=lambda x: (
            KINDS.index(x.kind),
            x.differences,
            x.subs,
            x.state_mismatch,
            x.priority,
            x.via_candidate,
            x.hotlist,
            x.entry_id,
        )
    )
    return found[:top]


def observed(m: Match) -> Expected:
    return Expected(
        m.hotlist.name,
        m.entry.entry_id,
        m.kind,
        m.differences,
        len(m.substitutions),
        m.state_mismatch,
        m.via_candidate,
        m.hotlist.policy.priority,
    )


def check_details(m: Match, ocr: OcrClasses) -> None:
    """Reported details are consistent with the matched text and the entry."""
    for pos, read_char, entry_char in m.substitutions:
        assert m.matched_text[pos] == read_char
        assert read_char != entry_char and ocr.equivalent(read_char, entry_char)
    assert len(m.edits) == m.differences
    if m.kind in ("exact", "ocr"):
        assert m.differences == 0 and (m.kind == "ocr") == bool(m.substitutions)
    again = compare(
        m.matched_text,
        m.entry.plate,
        m.hotlist.policy
        if not m.via_candidate
        else Policy(
            ocr_equivalents=m.hotlist.policy.ocr_equivalents,
            min_fuzzy_length=m.hotlist.policy.min_fuzzy_length,
        ),
        ocr,
    )
    assert again is not None and (again.kind, again.differences) == (m.kind, m.differences)
    assert len(again.substitutions) == len(m.substitutions)


# --- strategies ---------------------------------------------------------------------------

plates = st.text(alphabet=ALPHABET, min_size=1, max_size=6)
set_token = st.sets(st.sampled_from(ALPHABET), min_size=1, max_size=3).map(
    lambda s: "[" + "".join(sorted(s)) + "]"
)
pattern_token = st.one_of(
    st.sampled_from(ALPHABET), st.sampled_from(ALPHABET), st.just("?"), st.just("*"), set_token
)
patterns = (
    st.lists(pattern_token, min_size=1, max_size=6)
    .map("".join)
    .filter(lambda p: any(c in p for c in "?*["))
)
states = st.sampled_from([None, "CA", "NV"])
times = st.sampled_from([None, 100, 200, 300])
policies = st.builds(
    Policy,
    differences=st.integers(0, 2),
    ocr_equivalents=st.integers(0, 3),
    state=st.sampled_from(["require", "prefer", "ignore"]),
    min_fuzzy_length=st.integers(0, 6),
    candidates=st.booleans(),
    priority=st.integers(0, 3),
)


@st.composite
def entries(draw: st.DrawFn, prefix: str) -> tuple[Entry, ...]:
    out = []
    for i in range(draw(st.integers(0, 6))):
        plate = draw(st.one_of(plates, plates, patterns))
        start = draw(times)
        end = draw(times)
        if start is not None and end is not None and end <= start:
            start, end = None, end
        state = draw(states)
        out.append(Entry(f"{prefix}{i}", plate, state, effective_from_ms=start, expires_at_ms=end))
    return tuple(out)


@st.composite
def hotlist_sets(draw: st.DrawFn) -> list[Hotlist]:
    return [
        Hotlist(f"list{k}", "stolen", draw(policies), draw(entries(f"L{k}-")))
        for k in range(draw(st.integers(1, 3)))
    ]


MUTATIONS = ["look", "look", "ins", "del", "sub", "swap", "swap_ins", "swap_del"]


@st.composite
def mutated(draw: st.DrawFn, pool: list[str], fresh: bool = True) -> str:
    """A plate near one of ``pool`` (to get many near hits), or a random one."""
    if not pool or (fresh and draw(st.booleans())):
        return draw(plates)
    plate = list(draw(st.sampled_from(pool)))
    for op in draw(st.lists(st.sampled_from(MUTATIONS), min_size=int(not fresh), max_size=3)):
        i = draw(st.integers(0, len(plate)))
        c = draw(st.sampled_from(ALPHABET))
        if op == "look":
            i = min(i, len(plate) - 1)
            group = next((g for g in GROUPS if plate[i] in g), {plate[i]})
            plate[i] = draw(st.sampled_from(sorted(group & set(ALPHABET))))
        elif op == "ins":
            plate.insert(i, c)
        elif i < len(plate) and op == "del" and len(plate) > 1:
            del plate[i]
        elif i < len(plate) and op == "sub":
            plate[i] = c
        elif op == "swap_ins" and i + 1 < len(plate):  # swap, and a character between
            plate[i : i + 2] = [plate[i + 1], c, plate[i]]
        elif op == "swap_del" and i + 2 < len(plate):  # swap around a dropped character
            plate[i : i + 3] = [plate[i + 2], plate[i]]
        elif i + 1 < len(plate):
            plate[i], plate[i + 1] = plate[i + 1], plate[i]
    return "".join(plate)[:10]


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Hotlist], list[tuple[str, str | None, int, list[str]]]]:
    hotlists = draw(hotlist_sets())
    pool = [e.plate for h in hotlists for e in h.entries if not e.is_pattern]
    batch = draw(
        st.lists(
            st.tuples(
                mutated(pool),
                states,
                st.sampled_from([50, 100, 150, 200, 250, 300, 400]),
                st.lists(mutated(pool), max_size=2),
            ),
            min_size=1,
            max_size=6,
        )
    )
    return hotlists, batch


Read = tuple[str, str | None, int, list[str]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(1, 4))
def test_index_agrees_with_oracle(case: tuple[list[Hotlist], list[Read]], top: int) -> None:
    hotlists, batch = case
    ocr = OcrClasses()
    index = HotlistIndex.build(hotlists, ocr)
    got = index.match_batch(
        [r[0] for r in batch],
        [r[1] for r in batch],
        [r[2] for r in batch],
        [r[3] for r in batch],
        max_per_read=top,
    )
    assert len(got) == len(batch)
    for (plate, state, ts, alts), matches in zip(batch, got, strict=True):
        want = oracle(hotlists, plate, state, ts, alts, top)
        assert [observed(m) for m in matches] == want, (plate, state, ts, alts)
        for m in matches:
            check_details(m, ocr)
            if not m.via_candidate:
                assert m.matched_text == plate
            else:
                assert m.matched_text in alts


@st.composite
def near_pairs(draw: st.DrawFn) -> tuple[str, str]:
    read = draw(plates)
    return read, draw(mutated([read], fresh=False))


@settings(max_examples=600, deadline=None)
@given(near_pairs(), policies)
def test_compare_agrees_with_oracle(pair: tuple[str, str], policy: Policy) -> None:
    read, entry = pair
    got = compare(read, entry, policy, OcrClasses())
    want = plate_cost(read, entry, policy)
    if want is None:
        assert got is None
    else:
        assert got is not None and (got.differences, len(got.substitutions)) == want


@settings(max_examples=300, deadline=None)
@given(plates, patterns, st.integers(0, 3))
def test_compare_patterns_agree_with_oracle(read: str, pattern: str, o: int) -> None:
    got = compare(read, pattern, Policy(ocr_equivalents=o), OcrClasses())
    want = pattern_subs(read, pattern, o)
    if want is None:
        assert got is None
    else:
        assert got is not None and got.kind == "partial" and len(got.substitutions) == want


def test_larger_lists_agree_with_oracle() -> None:
    """Hundreds of entries per list: full buckets, shared templates, grams and scans."""
    import random

    rnd = random.Random(7)

    def plate() -> str:
        return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(3, 7)))

    def pattern() -> str:
        chars = list(plate())
        for _ in range(rnd.randint(1, 2)):
            i = rnd.randrange(len(chars))
            chars[i] = rnd.choice(["?", "*", "[" + "".join(rnd.sample(ALPHABET, 2)) + "]"])
        return "".join(chars)

    policies_used = [
        Policy(ocr_equivalents=1, min_fuzzy_length=3),
        Policy(differences=1, ocr_equivalents=1, state="prefer", candidates=True, priority=2),
        Policy(differences=2, ocr_equivalents=2, state="require", min_fuzzy_length=5),
        Policy(ocr_equivalents=2, priority=1),
    ]
    hotlists = []
    for k, policy in enumerate(policies_used):
        entries = []
        for i in range(250):
            text = pattern() if k == 3 or rnd.random() < 0.1 else plate()
            start = rnd.choice([None, None, 100, 200])
            entries.append(
                Entry(
                    f"L{k}-{i}",
                    text,
                    rnd.choice([None, "CA", "NV"]),
                    effective_from_ms=start,
                    expires_at_ms=rnd.choice([None, None, 300, 400]),
                )
            )
        hotlists.append(Hotlist(f"list{k}", "stolen", policy, tuple(entries)))
    pool = [e.plate for h in hotlists for e in h.entries if not e.is_pattern]
    batch = []
    for _ in range(120):
        base = list(rnd.choice(pool)) if rnd.random() < 0.7 else list(plate())
        for _ in range(rnd.randint(0, 2)):
            i = rnd.randrange(len(base))
            op = rnd.random()
            if op < 0.4:
                group = next((g for g in GROUPS if base[i] in g), {base[i]})
                base[i] = rnd.choice(sorted(group & set(ALPHABET)))
            elif op < 0.6:
                base.insert(i, rnd.choice(ALPHABET))
            elif op < 0.8 and len(base) > 2:
                del base[i]
            elif i + 1 < len(base):
                base[i], base[i + 1] = base[i + 1], base[i]
        batch.append(
            (
                "".join(base)[:10],
                rnd.choice([None, "CA", "NV"]),
                rnd.choice([50, 150, 250, 350, 450]),
                [rnd.choice(pool)] if rnd.random() < 0.3 else [],
            )
        )
    index = HotlistIndex.build(hotlists)
    got = index.match_batch(
        [r[0] for r in batch],
        [r[1] for r in batch],
        [r[2] for r in batch],
        [r[3] for r in batch],
        max_per_read=6,
    )
    hits = 0
    for (plate_, state, ts, alts), matches in zip(batch, got, strict=True):
        want = oracle(hotlists, plate_, state, ts, alts, 6)
        assert [observed(m) for m in matches] == want, plate_
        hits += bool(want)
    assert hits > 40  # the test is not vacuous
