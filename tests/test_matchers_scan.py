"""The scan forms of matching (what stored-read search runs) against independent oracles.

:func:`matchers.compile_glob` gives search its regex, its row-group pruning ranges and its
substitution count; :func:`matchers.plate_variants` enumerates a plate's neighbourhood. Each is
held here against a brute force that shares no code with it: ``fnmatch`` for globs, a breadth
first search over edit scripts for neighbourhoods, and :func:`matchers.compare` for both.
"""

from __future__ import annotations

import fnmatch
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matchers

OCR = matchers.OcrClasses()
#: Characters of generated plates: OCR look-alikes (0 O D, 8 B, 1 I) and plain ones.
PLATE_CHARS = "AB8CDO01IMNZ9"


@st.composite
def set_tokens(draw: st.DrawFn) -> str:
    """``[...]``: members, ranges, sometimes negated."""
    negate = "!" if draw(st.booleans()) else ""
    members = draw(
        st.lists(
            st.one_of(
                st.sampled_from(PLATE_CHARS),
                st.sampled_from(["A-C", "A-F", "M-Z", "0-4", "5-9", "B-D", "N-Z"]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    return f"[{negate}{''.join(members)}]"


@st.composite
def patterns(draw: st.DrawFn) -> str:
    """A valid pattern: literals, ``?``, ``*``, sets with ranges and negation, at least one
    literal or set (stored-read search refuses a pattern without one)."""
    tokens = draw(
        st.lists(
            st.one_of(
                st.sampled_from(PLATE_CHARS),
                st.just("?"),
                st.just("*"),
                set_tokens(),
            ),
            min_size=1,
            max_size=7,
        )
    )
    if not any(t not in "?*" for t in tokens):
        tokens.append(draw(st.sampled_from(PLATE_CHARS)))
    text = "".join(tokens)
    try:
        matchers.compile_glob(text)
    except matchers.PatternError:  # e.g. [!A-Z0-9]-like sets that admit nothing
        text = text.replace("[!", "[")
    return text


def plates(max_size: int = 8) -> st.SearchStrategy[str]:
    return st.text(alphabet=PLATE_CHARS, min_size=1, max_size=max_size)


@settings(max_examples=300, deadline=None)
@given(patterns(), st.lists(plates(), min_size=1, max_size=30))
def test_the_glob_regex_is_fnmatch_without_an_ocr_budget(pattern: str, texts: list[str]) -> None:
    glob = matchers.compile_glob(pattern)
    assert glob.exact
    for text in texts:
        expected = fnmatch.fnmatchcase(text, pattern)
        assert (re.fullmatch(glob.regex, text) is not None) == expected, (pattern, text)
        assert (re.search(glob.search_regex, text) is not None) == expected, (pattern, text)
        assert (glob.substitutions(text) == 0) == expected
        if expected:
            assert any(low <= text < high for low, high in glob.prefix_ranges()) or not (
                glob.prefix_ranges()
            )


@settings(max_examples=300, deadline=None)
@given(patterns(), st.lists(plates(), min_size=1, max_size=30), st.integers(0, 3))
def test_the_glob_decides_like_compare(pattern: str, texts: list[str], budget: int) -> None:
    """With an OCR budget: the regex is a superset (exact when it says so), the substitution
    count is compare's, and the pruning ranges hold every match."""
    glob = matchers.compile_glob(pattern, budget, OCR)
    policy = matchers.Policy(ocr_equivalents=budget, min_fuzzy_length=0)
    ranges = glob.prefix_ranges()
    for text in texts:
        theirs = matchers.compare(text, pattern, policy, OCR)
        mine = glob.substitutions(text)
        assert (theirs is None) == (mine is None), (pattern, text, budget)
        if theirs is None:
            if glob.exact:
                assert re.fullmatch(glob.regex, text) is None
            continue
        assert mine == len(theirs.substitutions)
        assert re.fullmatch(glob.regex, text) and re.search(glob.search_regex, text)
        assert not ranges or any(low <= text < high for low, high in ranges)


def test_compiled_forms_of_ranges_and_negated_sets() -> None:
    glob = matchers.compile_glob("[!A-M]*99")
    assert glob.regex == "^[N-Z0-9].*99$"
    assert glob.prefix_ranges() == [("0", ":"), ("N", "[")]
    assert glob.known_characters == 3
    ranged = matchers.compile_glob("M?M29[0-4]6")
    assert ranged.regex == "^M.M29[0-4]6$" and ranged.prefix_ranges() == [("M", "N")]
    assert matchers.compile_glob("[A-C]?[A-F]1*").search_regex == "^[A-C].[A-F]1"
    look_alike = matchers.compile_glob("0B*", 1, OCR)
    assert look_alike.regex == "^[DOQ0][B8].*$" and not look_alike.exact
    assert look_alike.substitutions("O8X") is None and look_alike.substitutions("OBX") == 1
    with pytest.raises(matchers.PatternError, match="use 0 or more"):
        matchers.compile_glob("AB*", -1)
    with pytest.raises(matchers.PatternError, match="never closed"):
        matchers.compile_glob("[AB*")


def osa_oracle(entry: str, read: str, classes: dict[str, str], d: int, o: int) -> bool:
    """Brute force over sequential edit scripts (unrestricted Damerau) of at most d+o steps."""
    frontier = {(entry, 0, 0)}
    seen = set(frontier)
    while frontier:
        nxt = set()
        for text, dd, oo in frontier:
            if text == read:
                return True
            moves: list[tuple[str, int, int]] = []
            for i, ch in enumerate(text):
                for other in classes.get(ch, ""):
                    if other != ch and oo < o:
                        moves.append((text[:i] + other + text[i + 1 :], dd, oo + 1))
            if dd < d:
                for variant in one_difference(text):
                    moves.append((variant, dd + 1, oo))
            for m in moves:
                if m not in seen:
                    seen.add(m)
                    nxt.add(m)
        frontier = nxt
    return False


def one_difference(text: str) -> set[str]:
    alphabet = "AB80OD1IZ2"
    out = set()
    for i in range(len(text)):
        out.add(text[:i] + text[i + 1 :])
        for c in alphabet:
            out.add(text[:i] + c + text[i + 1 :])
        if i + 1 < len(text):
            out.add(text[:i] + text[i + 1] + text[i] + text[i + 2 :])
    for i in range(len(text) + 1):
        for c in alphabet:
            out.add(text[:i] + c + text[i:])
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet="AB80OD1I", min_size=2, max_size=5),
    st.text(alphabet="AB80OD1IZ2", min_size=1, max_size=6),
    st.integers(0, 1),
    st.integers(0, 2),
)
def test_plate_variants_agree_with_a_brute_force_oracle(
    entry: str, read: str, d: int, o: int
) -> None:
    classes = {c: m for m in matchers.DEFAULT_OCR_CLASSES for c in m}
    variants = matchers.plate_variants(entry, d, o)
    assert (read in variants) == osa_oracle(entry, read, classes, d, o)
    if read in variants:
        dd, oo = variants[read]
        assert dd <= d and oo <= o
        assert osa_oracle(entry, read, classes, dd, oo)
        if dd > 0:
            assert not osa_oracle(entry, read, classes, dd - 1, o)


@settings(max_examples=40, deadline=None)
@given(
    st.text(alphabet="AB80OD1IZ2C", min_size=2, max_size=6),
    st.integers(0, 2),
    st.integers(0, 3),
    st.integers(0, 2**32),
)
def test_plate_variants_agree_with_compare(entry: str, d: int, o: int, seed: int) -> None:
    """The enumeration (search) and the pairwise decision (the flow) agree on the whole
    neighbourhood and on random reads near and far."""
    if d == 2:
        o = 0  # two differences with OCR tolerance may exceed the neighbourhood cap
    policy = matchers.Policy(differences=d, ocr_equivalents=o, min_fuzzy_length=0)
    ours = matchers.plate_variants(entry, d, o, OCR)
    rng = random.Random(seed)
    sample = rng.sample(sorted(ours), min(300, len(ours)))
    for _ in range(300):  # near misses: random edits of the entry
        text = list(entry)
        for _ in range(rng.randint(1, 4)):
            text.insert(rng.randrange(len(text) + 1), rng.choice("AB80OD1IZ2CX"))
            if len(text) > 1 and rng.random() < 0.5:
                del text[rng.randrange(len(text))]
        sample.append("".join(text)[:10])
    for read in sample:
        theirs = matchers.compare(read, entry, policy, OCR)
        mine = ours.get(read)
        assert (theirs is None) == (mine is None), (entry, read, d, o, theirs, mine)
        if theirs is not None and mine is not None:
            assert (theirs.differences, len(theirs.substitutions)) == mine, (entry, read)


def test_plate_variants_refusals() -> None:
    with pytest.raises(matchers.EntryError, match="not a normalised plate"):
        matchers.plate_variants("7ab")
    with pytest.raises(matchers.PolicyError, match="use differences 0-2"):
        matchers.plate_variants("7AB", differences=3)
    with pytest.raises(matchers.PolicyError, match="lower the tolerance"):
        matchers.plate_variants("0000000000", 2, 3)
