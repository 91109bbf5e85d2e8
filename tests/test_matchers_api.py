"""Unit tests of the matchers public API: vendor examples, validation, ranking, hot swap."""

from __future__ import annotations

import pytest

from matchers import (
    DEFAULT_OCR_CLASSES,
    Entry,
    EntryError,
    Hotlist,
    HotlistIndex,
    Match,
    MatchersError,
    OcrClassError,
    OcrClasses,
    PatternError,
    Policy,
    PolicyError,
    StateMode,
    compare,
    estimate_hit_rate,
    is_pattern,
    normalise_entry_plate,
    normalise_plate,
    simulate_plates,
)

OCR = OcrClasses()


def hotlist(name: str, policy: Policy, *plates: str, **kw: object) -> Hotlist:
    entries = tuple(Entry(f"{name}-{i}", p) for i, p in enumerate(plates))
    return Hotlist(name, str(kw.get("category", "stolen")), policy, entries)


def one(
    index: HotlistIndex,
    plate: str,
    state: str | None = None,
    ts: int = 0,
    alts: list[str] | None = None,
    top: int = 3,
) -> list[Match]:
    return index.match_batch([plate], [state], [ts], [alts or []], max_per_read=top)[0]


# --- text ---------------------------------------------------------------------------------


def test_normalise_plate() -> None:
    assert normalise_plate(" 7abc-123 ") == "7ABC123"
    assert normalise_plate("ab c.1·2") == "ABC12"
    assert normalise_plate("") == ""


def test_ocr_classes() -> None:
    assert OCR.groups == DEFAULT_OCR_CLASSES
    assert OCR.canonical("QDO8BIZ5SG") == "00088125" + "56"
    assert OCR.equivalent("O", "Q") and OCR.equivalent("B", "8") and OCR.equivalent("A", "A")
    assert not OCR.equivalent("B", "6") and not OCR.equivalent("1", "7")
    custom = OcrClasses(["uv", "M N"[:1] + "N"])
    assert custom.equivalent("U", "V") and custom.equivalent("M", "N")
    assert not custom.equivalent("0", "O")
    assert OcrClasses(["0O"]) == OcrClasses(["0O"]) != OCR


def test_ocr_classes_must_partition() -> None:
    with pytest.raises(OcrClassError, match="'O' is in two OCR classes"):
        OcrClasses(["0O", "OD"])
    with pytest.raises(OcrClassError, match="may only hold the plate characters"):
        OcrClasses(["0-O"])
    with pytest.raises(OcrClassError, match="single string"):
        OcrClasses("0O")


# --- policy and entries -------------------------------------------------------------------


def test_policy_validation_names_field_and_range() -> None:
    with pytest.raises(PolicyError, match="'differences' is 3; allowed range is 0-2"):
        Policy(differences=3)
    with pytest.raises(PolicyError, match="'ocr_equivalents' is -1; allowed range is 0-3"):
        Policy(ocr_equivalents=-1)
    with pytest.raises(PolicyError, match="'state' is 'maybe'"):
        Policy(state="maybe")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="'priority' is 10; allowed range is 0-9"):
        Policy(priority=10)
    with pytest.raises(PolicyError, match="'candidates' must be true or false"):
        Policy(candidates=1)  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="'differences' must be an integer"):
        Policy(differences=True)
    with pytest.raises(PolicyError, match="'differences' must be an integer 0-2, got '²'"):
        Policy.from_mapping({"differences": "²"})  # a digit to str.isdigit, not to int()


def test_policy_mapping_round_trip() -> None:
    policy = Policy(differences=1, ocr_equivalents=2, state="prefer", candidates=True, priority=0)
    assert Policy.from_mapping(policy.to_dict()) == policy
    assert Policy.from_mapping({"differences": "1", "covert": "yes", "state": "Require"}) == Policy(
        differences=1, covert=True, state="require"
    )
    with pytest.raises(PolicyError, match=r"unknown policy field.*'fuzz'.*known fields are"):
        Policy.from_mapping({"fuzz": 1})
    with pytest.raises(PolicyError, match="'covert' must be true or false"):
        Policy.from_mapping({"covert": "maybe"})


def test_entry_validation() -> None:
    assert Entry("1", "ABC123", state=" ca ").state == "CA"
    assert Entry("1", "ABC123", state="").state is None
    assert Entry("1", "7AB*").is_pattern and not Entry("1", "7AB1").is_pattern
    with pytest.raises(EntryError, match=r"not a normalised plate.*normalise_plate"):
        Entry("1", "abc 123")
    with pytest.raises(EntryError, match="no entry_id"):
        Entry("", "ABC123")
    with pytest.raises(EntryError, match="not after effective_from_ms"):
        Entry("1", "ABC123", effective_from_ms=10, expires_at_ms=10)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("AB[8C", "never closed"),
        ("AB]C", "closes no"),
        ("A[]C", "never closed|matches no character"),
        ("ab?", "upper-case it"),
        ("A-B?", "not a plate character"),
        ("A[B[C]]", "do not nest"),
        ("A[9-0]?", "ascending"),
        ("ABCDEFGHIJK?", "at most 10"),
    ],
)
def test_pattern_errors(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        Entry("1", pattern)


def test_normalise_entry_plate_keeps_wildcards() -> None:
    assert normalise_entry_plate(" 7ab-12? ") == "7AB12?"
    assert normalise_entry_plate("7a[b8] *") == "7A[B8]*"
    assert normalise_entry_plate("x[!a-c]?") == "X[!A-C]?"
    assert normalise_entry_plate("abc 123") == "ABC123"
    with pytest.raises(PatternError, match="never closed"):
        normalise_entry_plate("ab[c")


def test_is_pattern() -> None:
    assert is_pattern("A?C") and is_pattern("*1") and is_pattern("[AB]1")
    assert not is_pattern("ABC123")


# --- compare: vendor examples and details ---------------------------------------------------


@pytest.mark.parametrize("entry", ["A8C123", "ABC1Z3", "ABCI23"])
def test_vendor_one_ocr_equivalent_hits(entry: str) -> None:
    got = compare("ABC123", entry, Policy(ocr_equivalents=1), OCR)
    assert got is not None and got.kind == "ocr" and got.differences == 0
    assert len(got.substitutions) == 1


def test_vendor_two_equivalents_need_two() -> None:
    assert compare("ABC123", "A8CIZ3", Policy(ocr_equivalents=1), OCR) is None
    got = compare("ABC123", "A8CIZ3", Policy(ocr_equivalents=3), OCR)
    assert got is not None and got.substitutions == ((1, "B", "8"), (3, "1", "I"), (4, "2", "Z"))


def test_vendor_one_difference_insert() -> None:
    got = compare("ABCU123", "ABC123", Policy(differences=1), OCR)
    assert got is not None and got.kind == "fuzzy" and got.edits == ("insert U at 3",)
    assert compare("ABCU123", "ABC123", Policy(), OCR) is None


def test_equivalent_substitution_may_count_as_difference() -> None:
    got = compare("ABC123", "A8C123", Policy(differences=1), OCR)
    assert got is not None and got.kind == "fuzzy" and got.edits == ("replace 8 with B at 1",)
    # fewest differences first: the OCR reading wins when both are allowed
    got = compare("ABC123", "A8C123", Policy(differences=1, ocr_equivalents=1), OCR)
    assert got is not None and got.kind == "ocr"


def test_swaps_and_deletes() -> None:
    got = compare("ABC213", "ABC123", Policy(differences=1), OCR)
    assert got is not None and got.edits == ("swap 3-4",)
    got = compare("ABC23", "ABC123", Policy(differences=1), OCR)
    assert got is not None and got.edits == ("delete 1 at 3",)
    # a swap around an inserted character is two differences (an edit script, not OSA)
    got = compare("ABCDEF", "ACBEF", Policy(differences=2), OCR)
    assert got is None or got.differences == 2
    got = compare("ABC", "CA", Policy(differences=2, min_fuzzy_length=0), OCR)
    assert got is not None and got.differences == 2
    # a swap whose characters are also OCR look-alikes
    got = compare("I8XYZ", "B1XYZ", Policy(differences=1, ocr_equivalents=2), OCR)
    assert got is not None and got.edits == ("swap 0-1",) and len(got.substitutions) == 2


def test_short_entries_match_exactly_only() -> None:
    policy = Policy(differences=2, ocr_equivalents=3, min_fuzzy_length=5)
    assert compare("AB12", "AB12", policy, OCR) is not None
    assert compare("A812", "AB12", policy, OCR) is None  # not even an OCR look-alike
    assert compare("AB12X", "AB12", policy, OCR) is None
    assert compare("AB1X3", "AB123", policy, OCR) is not None


def test_patterns() -> None:
    p0, p1 = Policy(), Policy(ocr_equivalents=1, differences=2)
    assert compare("7ABC123", "7AB?123", p0, OCR) is not None
    assert compare("7ABC123", "7AB*", p0, OCR) is not None
    assert compare("7AB", "7AB*", p0, OCR) is not None
    assert compare("X7AB", "7AB*", p0, OCR) is None
    assert compare("7A8C123", "7A[B8]C*", p0, OCR) is not None
    assert compare("7A8C123", "7ABC*", p0, OCR) is None
    got = compare("7A8C123", "7ABC*", p1, OCR)
    assert got is not None and got.kind == "partial" and got.substitutions == ((2, "8", "B"),)
    assert compare("7A8C123", "7A[B]C*", p1, OCR) is None  # set members match exactly
    assert compare("7ABC12", "7ABC123?", p1, OCR) is None  # differences do not apply
    assert compare("ZZ7ABC", "*[!8B]?[A-C]", p0, OCR) is not None


# --- the index --------------------------------------------------------------------------


def test_vendor_examples_through_the_index() -> None:
    index = HotlistIndex.build(
        [hotlist("ocr", Policy(ocr_equivalents=1), "A8C123", "ABC1Z3", "ABCI23", "A8CIZ3")]
    )
    assert {m.entry.plate for m in one(index, "ABC123", top=9)} == {"A8C123", "ABC1Z3", "ABCI23"}
    fuzzy = HotlistIndex.build([hotlist("f", Policy(differences=1), "ABC123")])
    (m,) = one(fuzzy, "ABCU123")
    assert (m.kind, m.differences, m.matched_text) == ("fuzzy", 1, "ABCU123")
    assert m.edits == ("insert U at 3",)


def test_ranking_and_max_per_read() -> None:
    index = HotlistIndex.build(
        [
            hotlist("low", Policy(priority=9), "ABC123"),
            hotlist("high", Policy(priority=0), "ABC123"),
            hotlist("ocr", Policy(ocr_equivalents=1, priority=0), "A8C123"),
            hotlist("fuzzy", Policy(differences=1, priority=0), "ABC12"),
            hotlist("partial", Policy(priority=0), "ABC*"),
        ]
    )
    got = one(index, "ABC123", top=9)
    assert [m.hotlist.name for m in got] == ["high", "low", "ocr", "fuzzy", "partial"]
    assert [m.kind for m in got] == ["exact", "exact", "ocr", "fuzzy", "partial"]
    assert [m.hotlist.name for m in one(index, "ABC123", top=2)] == ["high", "low"]
    assert [m.rank_key for m in got] == sorted(m.rank_key for m in got)


def test_state_modes() -> None:
    entries = (Entry("e", "ABC123", state="CA"),)
    modes: list[tuple[StateMode, bool | None]] = [
        ("require", None),
        ("prefer", True),
        ("ignore", False),
    ]
    for mode, on_mismatch in modes:
        index = HotlistIndex.build([Hotlist("l", "stolen", Policy(state=mode), entries)])
        assert one(index, "ABC123", "ca")[0].state_mismatch is False
        assert one(index, "ABC123", None)[0].state_mismatch is False
        got = one(index, "ABC123", "NV")
        assert (got[0].state_mismatch if got else None) == on_mismatch


def test_windows() -> None:
    entries = (Entry("e", "ABC123", effective_from_ms=1000, expires_at_ms=2000),)
    index = HotlistIndex.build([Hotlist("l", "stolen", Policy(), entries)])
    assert [bool(one(index, "ABC123", ts=t)) for t in (999, 1000, 1999, 2000)] == [
        False,
        True,
        True,
        False,
    ]


def test_candidates_exact_and_ocr_only() -> None:
    policy = Policy(candidates=True, differences=1, ocr_equivalents=1)
    index = HotlistIndex.build([hotlist("l", policy, "XYZ789", "XYZ7*")])
    (m,) = one(index, "QQQ111", alts=["XYZ789"])
    assert m.via_candidate and m.matched_text == "XYZ789" and m.kind == "exact"
    (m,) = one(index, "QQQ111", alts=["XYZ7B9"])  # B ~ 8: one OCR substitution
    assert m.kind == "ocr" and m.via_candidate
    assert one(index, "QQQ111", alts=["XYZ7890"]) == []  # a difference: not for candidates
    off = HotlistIndex.build([hotlist("l", Policy(), "XYZ789")])
    assert one(off, "QQQ111", alts=["XYZ789"]) == []


def test_with_and_without_hotlist_build_beside() -> None:
    first = HotlistIndex.build([hotlist("a", Policy(), "AAA111"), hotlist("b", Policy(), "BBB222")])
    second = first.with_hotlist(hotlist("a", Policy(), "AAA999"))
    assert one(first, "AAA111") and not one(first, "AAA999")  # the old index is untouched
    assert one(second, "AAA999") and not one(second, "AAA111") and one(second, "BBB222")
    third = second.without_hotlist("b")
    assert set(third.hotlists) == {"a"} and len(third) == 1 and len(second) == 2
    assert set(third.without_hotlist("nope").hotlists) == {"a"}
    with pytest.raises(MatchersError, match="twice"):
        HotlistIndex.build([hotlist("a", Policy()), hotlist("a", Policy())])


def test_match_batch_validates_input() -> None:
    index = HotlistIndex.build([hotlist("a", Policy(), "AAA111")])
    with pytest.raises(MatchersError, match="not normalised"):
        index.match_batch(["aaa111"], [None], [0])
    with pytest.raises(MatchersError, match="same length"):
        index.match_batch(["AAA111"], [], [0])
    assert index.match_batch([], [], []) == []


def test_simulate_plates() -> None:
    plates = simulate_plates(2000, seed=3)
    assert plates == simulate_plates(2000, seed=3) != simulate_plates(2000, seed=4)
    assert all(p == normalise_plate(p) and 6 <= len(p) <= 7 for p in plates)
    assert sum(p[0].isdigit() and p[1:4].isalpha() and len(p) == 7 for p in plates) > 600
    assert simulate_plates(3, formats=[("LLL", 1.0)])[0].isalpha()
    with pytest.raises(MatchersError, match="D \\(digit\\) and L"):
        simulate_plates(3, formats=[("LX", 1.0)])


def test_estimate_ignores_windows_and_scales_with_policy() -> None:
    plates = simulate_plates(3000, seed=1)
    entries = tuple(
        Entry(f"e{i}", p, expires_at_ms=1) for i, p in enumerate(simulate_plates(3000, seed=2))
    )
    exact = estimate_hit_rate(Hotlist("l", "s", Policy(), entries), plates)
    fuzzy = estimate_hit_rate(Hotlist("l", "s", Policy(differences=1), entries), plates)
    assert 0 <= exact < fuzzy <= 1


def test_estimate_hit_rate() -> None:
    h = hotlist("a", Policy(ocr_equivalents=1), "AAA111", "BBB222")
    assert estimate_hit_rate(h, ["AAA111", "AAA11I", "CCC333", "BBB22Z"]) == 0.75
    assert estimate_hit_rate(h, []) == 0.0


def test_matching_continues_while_a_list_builds_beside() -> None:
    import threading
    import time

    index = HotlistIndex.build([hotlist("small", Policy(), "AAA111")])
    plates = [f"{i:06d}X" for i in range(100_000)]
    big = Hotlist(
        "big",
        "stolen",
        Policy(ocr_equivalents=1),
        tuple(Entry(f"b{i}", p) for i, p in enumerate(plates)),
    )
    during: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            (m,) = index.match_batch(["AAA111"], [None], [0])[0]
            assert m.entry.entry_id == "small-0"
            during.append(time.perf_counter())

    thread = threading.Thread(target=reader)
    thread.start()
    started = time.perf_counter()
    new = index.with_hotlist(big)
    ended = time.perf_counter()
    stop.set()
    thread.join()
    assert any(started < t < ended for t in during)  # the old index answered during the build
    assert new._compiled["small"] is index._compiled["small"]  # untouched lists are shared
    assert len(new) == 100_001 and len(index) == 1
    (m,) = new.match_batch(["000042X"], [None], [0])[0]
    assert m.entry.entry_id == "b42"


def test_custom_ocr_classes_drive_the_index() -> None:
    ocr = OcrClasses(["MN", "UV"])
    policy = Policy(ocr_equivalents=1, differences=0)
    index = HotlistIndex.build([hotlist("l", policy, "MUX12", "OAB12", "PU?12")], ocr)
    (m,) = one(index, "NUX12")
    assert m.kind == "ocr" and m.substitutions == ((0, "N", "M"),)
    assert one(index, "0AB12") == []  # 0 and O are not look-alikes under these classes
    (m,) = one(index, "PVX12")  # the pattern's literals use the same classes
    assert m.kind == "partial" and m.substitutions == ((1, "V", "U"),)
