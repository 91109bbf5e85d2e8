"""The matching data model: policies, entries, hotlists and matches.

These are plain frozen dataclasses so that an index, a match or an alert can hold them without
copying. :class:`Policy` validates its ranges when it is made (an operator's typo must not reach
the matcher); :class:`Entry` validates that its plate is normalised or a valid pattern.

Ranking (ARCHITECTURE "Matching semantics"): matches of one read sort by kind (exact, ocr,
fuzzy, partial), then differences, then OCR substitutions, then state mismatch (a mismatch
ranks lower), then hotlist priority (0 first). Ties then prefer the read's own plate over an
alternate candidate, and finally fall back to the hotlist name and entry id so the order is
deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from matchers._glob import is_pattern, parse_pattern
from matchers._text import MAX_PLATE_LENGTH, EntryError, PolicyError

__all__ = ["KIND_ORDER", "Entry", "Hotlist", "Kind", "Match", "Policy", "StateMode"]

StateMode = Literal["require", "prefer", "ignore"]
Kind = Literal["exact", "ocr", "fuzzy", "partial"]
#: Rank of each kind, best first.
KIND_ORDER: dict[str, int] = {"exact": 0, "ocr": 1, "fuzzy": 2, "partial": 3}

_PLATE = re.compile(rf"[A-Z0-9]{{1,{MAX_PLATE_LENGTH}}}")
# field -> (lowest, highest) for the integer fields of Policy
_RANGES = {
    "differences": (0, 2),
    "ocr_equivalents": (0, 3),
    "min_fuzzy_length": (0, MAX_PLATE_LENGTH),
    "priority": (0, 9),
}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Policy:
    """How one hotlist matches (ARCHITECTURE "Matching semantics").

    :arg differences: edits allowed (insert, delete, substitution, adjacent swap), 0-2.
    :arg ocr_equivalents: characters that may be read as an OCR look-alike, 0-3.
    :arg state: ``require`` (both states known must agree), ``prefer`` (a mismatch matches,
        flagged, ranked lower) or ``ignore``.
    :arg min_fuzzy_length: entry plates shorter than this match exactly only: no difference
        and no OCR substitution (0-10). Patterns are not affected.
    :arg candidates: also match the read's alternate candidate plates (exact and OCR only).
    :arg covert: alerts go to the covert channel only (routing is the dataflow's job).
    :arg priority: 0 is the highest, 9 the lowest.

    Raises :class:`PolicyError` naming the field and its allowed values.
    """

    differences: int = 0
    ocr_equivalents: int = 0
    state: StateMode = "ignore"
    min_fuzzy_length: int = 5
    candidates: bool = False
    covert: bool = False
    priority: int = 5

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                message = f"policy field {name!r} must be an integer {low}-{high}, got {value!r}"
                raise PolicyError(message)
            if not low <= value <= high:
                message = f"policy field {name!r} is {value}; allowed range is {low}-{high}"
                raise PolicyError(message)
        if self.state not in get_args(StateMode):
            message = (
                f"policy field 'state' is {self.state!r}; allowed values are "
                f"'require', 'prefer' and 'ignore'"
            )
            raise PolicyError(message)
        for name in ("candidates", "covert"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                message = f"policy field {name!r} must be true or false, got {value!r}"
                raise PolicyError(message)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Policy:
        """A policy from a mapping of field names; missing fields take their defaults.

        Integer fields accept ints or digit strings, flags accept bools or ``true/false``,
        ``yes/no``, ``on/off``, ``1/0`` (so CSV and environment values work). An unknown key
        raises :class:`PolicyError` listing the known ones.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            message = (
                f"unknown policy field(s) {', '.join(map(repr, unknown))}; "
                f"known fields are {', '.join(sorted(known))}"
            )
            raise PolicyError(message)
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in _RANGES and isinstance(value, str):
                text = value.strip()
                if not (text.isascii() and text.lstrip("-").isdigit()):
                    low, high = _RANGES[key]
                    message = f"policy field {key!r} must be an integer {low}-{high}, got {value!r}"
                    raise PolicyError(message)
                value = int(text)
            elif key in ("candidates", "covert") and isinstance(value, str):
                text = value.strip().lower()
                if text not in _TRUE | _FALSE:
                    message = f"policy field {key!r} must be true or false, got {value!r}"
                    raise PolicyError(message)
                value = text in _TRUE
            elif key == "state" and isinstance(value, str):
                value = value.strip().lower()
            values[key] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The policy as a JSON-ready dict; ``Policy.from_mapping(p.to_dict()) == p``."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Entry:
    """One hotlist entry: a normalised plate or a wildcard pattern, with its provenance.

    ``state`` is stored upper-cased, blank becomes ``None``. Times are epoch milliseconds; the
    entry is live for ``effective_from_ms <= ts < expires_at_ms`` (either bound may be
    ``None``). Raises :class:`EntryError` (or :class:`PatternError` for a bad pattern).
    """

    entry_id: str
    plate: str
    state: str | None = None
    reason: str = ""
    case_number: str | None = None
    entered_by: str = ""
    effective_from_ms: int | None = None
    expires_at_ms: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.entry_id, str) or not self.entry_id:
            message = f"hotlist entry for plate {self.plate!r} has no entry_id; give it a unique id"
            raise EntryError(message)
        if not isinstance(self.plate, str):
            message = f"entry {self.entry_id!r}: plate must be text, got {self.plate!r}"
            raise EntryError(message)
        if is_pattern(self.plate) or "]" in self.plate:
            parse_pattern(self.plate)
        elif _PLATE.fullmatch(self.plate) is None:
            message = (
                f"entry {self.entry_id!r}: plate {self.plate!r} is not a normalised plate "
                f"(1-{MAX_PLATE_LENGTH} of A-Z0-9) nor a pattern with ?, * or [..]; "
                f"pass it through normalise_plate()"
            )
            raise EntryError(message)
        if self.state is not None:
            state = self.state.strip().upper()
            object.__setattr__(self, "state", state or None)
        lo, hi = self.effective_from_ms, self.expires_at_ms
        if lo is not None and hi is not None and hi <= lo:
            message = (
                f"entry {self.entry_id!r}: expires_at_ms {hi} is not after effective_from_ms "
                f"{lo}; the entry could never match"
            )
            raise EntryError(message)

    @property
    def is_pattern(self) -> bool:
        """Whether :attr:`plate` is a wildcard pattern."""
        return is_pattern(self.plate)


@dataclass(frozen=True, eq=False, repr=False)
class Hotlist:
    """A named list of entries with one policy. Compared by identity (it may hold millions)."""

    name: str
    category: str
    policy: Policy
    entries: tuple[Entry, ...]
    version: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise EntryError("a hotlist needs a non-empty name")
        if not isinstance(self.policy, Policy):
            message = (
                f"hotlist {self.name!r}: policy must be a Policy, got {type(self.policy).__name__}"
            )
            raise EntryError(message)
        if not isinstance(self.entries, tuple):
            object.__setattr__(self, "entries", tuple(self.entries))

    def __repr__(self) -> str:
        return (
            f"Hotlist(name={self.name!r}, category={self.category!r}, policy={self.policy!r}, "
            f"entries=<{len(self.entries)}>, version={self.version})"
        )


@dataclass(frozen=True)
class Match:
    """One read (or one of its candidates) matching one entry.

    ``substitutions`` lists the OCR substitutions used as ``(position in matched_text, read
    char, entry char)``. ``edits`` describes the differences in words, positions in
    ``matched_text`` (0-based): ``insert U at 3``, ``delete 4 at 3`` (the entry's 4 is missing
    before position 3), ``replace 4 with A at 3``, ``swap 2-3``. Patterns have no edits.
    """

    hotlist: Hotlist
    entry: Entry
    kind: Kind
    differences: int
    substitutions: tuple[tuple[int, str, str], ...]
    edits: tuple[str, ...]
    matched_text: str
    via_candidate: bool
    state_mismatch: bool

    @property
    def rank_key(self) -> tuple[int, int, int, bool, int, bool, str, str]:
        """Sort key, best first (see the module docstring)."""
        return (
            KIND_ORDER[self.kind],
            self.differences,
            len(self.substitutions),
            self.state_mismatch,
            self.hotlist.policy.priority,
            self.via_candidate,
            self.hotlist.name,
            self.entry.entry_id,
        )
