"""Hotlist files: CSV layouts, row validation and the sibling policy file. No database here.

A hotlist file is a CSV with a header. Three layouts are known and detected from the header
(or named explicitly, or given as a ``{field: column}`` mapping):

- ``plateflow``: ``plate,state,reason,case_number,expires_at,category`` (and ``effective_from``)
- ``ncic``: the NCIC field names ``LIC`` (plate), ``LIS`` (state), ``LIT`` (plate type),
  ``NIC`` (NCIC number), ``OCA`` (originating agency case number), ``LIY`` (plate year)
- ``semicolon``: ``PlateNumber;PlateState;Category`` (``;``-delimited, as vendor systems export)

The delimiter is taken from the header line. Every bad row is collected with its line number
(the header is line 1) and reported at once in a :class:`HotlistImportError`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import matchers
from records._errors import HotlistImportError

#: The official purposes a hotlist may serve (policy 427.2, 427.3(a) and (d)).
CATEGORIES: Mapping[str, str] = {
    "stolen_vehicle": "stolen vehicle",
    "stolen_plate": "stolen licence plate",
    "wanted_vehicle": "vehicle wanted in connection with a crime",
    "wanted_person": "vehicle associated with a wanted person",
    "warrant": "vehicle associated with an outstanding warrant",
    "missing_person": "vehicle associated with a missing person",
    "amber_alert": "AMBER alert (abducted child)",
    "major_crime": "suspect vehicle in a major crime, partial plates allowed (427.3(d))",
}

_CATEGORY_ALIASES: Mapping[str, str] = {
    "stolen": "stolen_vehicle",
    "sv": "stolen_vehicle",
    "stolenvehicle": "stolen_vehicle",
    "sp": "stolen_plate",
    "stolenplate": "stolen_plate",
    "stolenplates": "stolen_plate",
    "felony": "wanted_vehicle",
    "felonyvehicle": "wanted_vehicle",
    "wantedvehicle": "wanted_vehicle",
    "wanted": "wanted_person",
    "wantedperson": "wanted_person",
    "warrants": "warrant",
    "missing": "missing_person",
    "missingperson": "missing_person",
    "amber": "amber_alert",
    "amberalert": "amber_alert",
    "majorcrime": "major_crime",
    "investigation": "major_crime",
    "partial": "major_crime",
}

FIELDS = (
    "plate",
    "state",
    "reason",
    "case_number",
    "expires_at",
    "effective_from",
    "category",
    "ncic_number",
    "plate_type",
    "plate_year",
)

#: Known layouts: field -> column header (matched ignoring case, spaces and punctuation).
LAYOUTS: Mapping[str, Mapping[str, str]] = {
    "plateflow": {
        "plate": "plate",
        "state": "state",
        "reason": "reason",
        "case_number": "case_number",
        "expires_at": "expires_at",
        "effective_from": "effective_from",
        "category": "category",
    },
    "ncic": {
        "plate": "LIC",
        "state": "LIS",
        "plate_type": "LIT",
        "ncic_number": "NIC",
        "case_number": "OCA",
        "plate_year": "LIY",
        "reason": "reason",
        "expires_at": "expires_at",
        "category": "category",
    },
    "semicolon": {
        "plate": "PlateNumber",
        "state": "PlateState",
        "category": "Category",
        "reason": "Description",
        "case_number": "CaseNumber",
        "expires_at": "ExpiryDate",
    },
}

MIN_PLATE, MAX_PLATE = 2, 10
_STATE = re.compile(r"^[A-Z]{2}$")


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def normalise_category(text: str) -> str:
    """The canonical category for ``text`` (``'Stolen Vehicle'`` -> ``stolen_vehicle``).

    Raises ValueError naming the allowed categories when ``text`` is not an official purpose.
    """
    key = _key(text)
    for canonical in CATEGORIES:
        if key == _key(canonical):
            return canonical
    if key in _CATEGORY_ALIASES:
        return _CATEGORY_ALIASES[key]
    allowed = ", ".join(CATEGORIES)
    raise ValueError(f"category {text!r} is not an official purpose (use one of {allowed})")


def parse_time_ms(text: str, *, end_of_day: bool) -> int:
    """Epoch ms from ``YYYY-MM-DD``, ``MM/DD/YYYY``, RFC 3339 or epoch seconds/milliseconds.

    A bare date means the start of that day UTC, or with ``end_of_day`` the start of the next
    day (an entry that expires on 2026-12-31 still matches on that day). Naive times are UTC.
    """
    raw = text.strip()
    if re.fullmatch(r"\d{9,13}", raw):
        value = int(raw)
        return value if value >= 100_000_000_000 else value * 1000
    day: date | None = None
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d"):
        try:
            day = datetime.strptime(raw, fmt).date()
            break
        except ValueError:
            continue
    if day is not None:
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        if end_of_day:
            start += timedelta(days=1)
        return int(start.timestamp() * 1000)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"{raw!r} is not a date (use YYYY-MM-DD, MM/DD/YYYY or an RFC 3339 time)"
        raise ValueError(msg) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def normalise_entry_text(text: str) -> tuple[str, bool]:
    """``(plate or pattern, is_pattern)`` for a hotlist cell; raises ValueError with the reason.

    Plates follow the canonical form (upper-case, only A-Z and 0-9, 2-10 characters). A pattern
    (``?``, ``*``, ``[...]``) keeps its wildcards and must pin down
    :data:`matchers.MIN_KNOWN_CHARACTERS` positions (:func:`matchers.require_known_characters`,
    the rule partial searches follow too).
    """
    raw = text.strip()
    if not raw:
        raise ValueError("no plate")
    upper = raw.upper()
    if matchers.is_pattern(upper):
        pattern = re.sub(r"\s", "", upper)
        try:
            matchers.require_known_characters(pattern)
        except matchers.MatchersError as exc:
            raise ValueError(str(exc)) from exc
        return pattern, True
    plate = matchers.normalise_plate(raw)
    if len(plate) < MIN_PLATE:
        raise ValueError(f"plate {raw!r} is shorter than {MIN_PLATE} characters")
    if len(plate) > MAX_PLATE:
        raise ValueError(f"plate {raw!r} is longer than {MAX_PLATE} characters")
    return plate, False


def normalise_state(text: str | None) -> str | None:
    """Two upper-case letters, or None for an empty cell. ``us-ca`` becomes ``CA``."""
    if text is None or not text.strip():
        return None
    state = text.strip().upper()
    if len(state) == 5 and state[2] == "-":
        state = state[3:]
    if not _STATE.match(state):
        raise ValueError(f"state {text.strip()!r} is not a two-letter state code")
    return state


def entry_key(plate: str, state: str | None) -> str:
    """The identity of an entry within its list: one entry per plate (or pattern) and state."""
    return f"{plate}/{state}" if state else plate


@dataclass(frozen=True)
class ParsedRow:
    """One valid row of a hotlist file, with where it came from."""

    line: int
    plate: str
    is_pattern: bool
    state: str | None
    reason: str
    case_number: str | None
    effective_from_ms: int | None
    expires_at_ms: int | None
    category: str | None

    @property
    def key(self) -> str:
        return entry_key(self.plate, self.state)

    def to_entry(self, list_name: str, entered_by: str) -> matchers.Entry:
        return matchers.Entry(
            entry_id=f"{list_name}:{self.key}",
            plate=self.plate,
            state=self.state,
            reason=self.reason,
            case_number=self.case_number,
            entered_by=entered_by,
            effective_from_ms=self.effective_from_ms,
            expires_at_ms=self.expires_at_ms,
        )


def _read_text(path_or_text: str | Path) -> tuple[str, str]:
    """``(text, source name)``: a Path or a one-line string is a file, else CSV text."""
    if isinstance(path_or_text, Path) or "\n" not in path_or_text:
        path = Path(path_or_text)
        data = path.read_bytes()
        try:
            return data.decode("utf-8-sig"), path.name
        except UnicodeDecodeError:
            return data.decode("cp1252"), path.name
    return path_or_text, "<text>"


def _resolve_mapping(
    name: str, header: list[str], mapping: str | Mapping[str, str] | None
) -> dict[str, int]:
    """field -> column index for this header."""
    keys = [_key(h) for h in header]
    if isinstance(mapping, Mapping):
        unknown = sorted(set(mapping) - set(FIELDS))
        if unknown:
            msg = (
                f"mapping names unknown field(s) {', '.join(unknown)}; "
                f"fields are {', '.join(FIELDS)}"
            )
            raise HotlistImportError(name, [(1, msg)])
        layout = dict(mapping)
    elif mapping is not None:
        if mapping not in LAYOUTS:
            msg = f"unknown layout {mapping!r}; use one of {', '.join(LAYOUTS)} or a column mapping"
            raise HotlistImportError(name, [(1, msg)])
        layout = dict(LAYOUTS[mapping])
    else:
        fits = [n for n, lay in LAYOUTS.items() if _key(lay["plate"]) in keys]
        if not fits:
            msg = (
                f"header {','.join(header)!r} matches no known layout (plateflow: plate,state,...;"
                " ncic: LIC,LIS,...; semicolon: PlateNumber;PlateState;Category); "
                "pass a mapping or fix the header"
            )
            raise HotlistImportError(name, [(1, msg)])
        layout = dict(LAYOUTS[fits[0]])
    resolved = {f: keys.index(_key(col)) for f, col in layout.items() if _key(col) in keys}
    if "plate" not in resolved:
        msg = (
            f"header has no plate column {layout.get('plate', 'plate')!r} "
            f"(header: {','.join(header)})"
        )
        raise HotlistImportError(name, [(1, msg)])
    return resolved


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_hotlist(
    path_or_text: str | Path,
    name: str,
    mapping: str | Mapping[str, str] | None = None,
    *,
    category: str | None = None,
) -> tuple[str | None, list[ParsedRow], str]:
    """Validate a whole hotlist file: ``(category, rows, source name)``.

    The category is ``category`` if given, else the one category the rows carry (None if they
    carry none). Raises :class:`HotlistImportError` listing every bad row by line number.
    """
    text, source = _read_text(path_or_text)
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not first:
        raise HotlistImportError(name, [(0, "the file is empty; a header line is required")])
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(first))
    header = next(reader)
    while not any(cell.strip() for cell in header):
        header = next(reader)
    columns = _resolve_mapping(name, [h.strip() for h in header], mapping)
    wanted = normalise_category(category) if category else None

    problems: list[tuple[int, str]] = []
    rows: list[ParsedRow] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue

        def cell(field: str, cells: list[str] = cells) -> str:
            index = columns.get(field)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        try:
            row = _parse_row(line, cell)
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        if row.key in seen:
            problems.append(
                (
                    line,
                    f"plate {row.plate!r}{' state ' + row.state if row.state else ''} repeats "
                    f"line {seen[row.key]} (one entry per plate and state)",
                )
            )
            continue
        seen[row.key] = line
        rows.append(row)
    if problems:
        raise HotlistImportError(name, problems, source=source)
    if wanted is None:
        found = sorted({r.category for r in rows if r.category})
        if len(found) > 1:
            lines_of = {c: [r.line for r in rows if r.category == c][:5] for c in found}
            detail = "; ".join(
                f"{c} (lines {', '.join(map(str, ls))})" for c, ls in lines_of.items()
            )
            msg = f"rows carry different categories: {detail}; split the file or pass a category"
            raise HotlistImportError(name, [(0, msg)], source=source)
        wanted = found[0] if found else None
    return wanted, rows, source


def _parse_row(line: int, cell: Any) -> ParsedRow:
    plate, is_pattern = normalise_entry_text(cell("plate"))
    state = normalise_state(cell("state"))
    case_number = cell("case_number") or None
    reason = cell("reason")
    if not reason:
        extras = [
            f"NCIC {cell('ncic_number')}" if cell("ncic_number") else "",
            f"plate type {cell('plate_type')}" if cell("plate_type") else "",
            f"plate year {cell('plate_year')}" if cell("plate_year") else "",
        ]
        reason = "; ".join(e for e in extras if e)
    category = normalise_category(cell("category")) if cell("category") else None
    expires = cell("expires_at")
    effective = cell("effective_from")
    try:
        expires_ms = parse_time_ms(expires, end_of_day=True) if expires else None
    except ValueError as exc:
        raise ValueError(f"expires_at {exc}") from exc
    try:
        effective_ms = parse_time_ms(effective, end_of_day=False) if effective else None
    except ValueError as exc:
        raise ValueError(f"effective_from {exc}") from exc
    if is_pattern and not case_number:
        raise ValueError(
            f"pattern {plate!r} needs a case number (partial-plate entries carry one, 427.3(d))"
        )
    if is_pattern and expires_ms is None:
        raise ValueError(f"pattern {plate!r} needs an expiry (expires_at)")
    if expires_ms is not None and effective_ms is not None and expires_ms <= effective_ms:
        raise ValueError("expires_at is not after effective_from")
    return ParsedRow(
        line, plate, is_pattern, state, reason, case_number, effective_ms, expires_ms, category
    )


def read_hotlist_csv(
    path_or_text: str | Path,
    name: str,
    mapping: str | Mapping[str, str] | None = None,
    *,
    category: str | None = None,
    entered_by: str | None = None,
) -> tuple[str | None, list[matchers.Entry]]:
    """Parse a hotlist file into matcher entries, without a database.

    ``mapping`` is a layout name (``plateflow``, ``ncic``, ``semicolon``), a ``{field: column}``
    dict, or None to detect the layout from the header. Entry ids are ``<name>:<plate>[/<state>]``
    (stable across versions); ``entered_by`` defaults to ``file:<file name>``. Returns the
    category (see :func:`parse_hotlist`) and the entries; raises :class:`HotlistImportError`.
    """
    found, rows, source = parse_hotlist(path_or_text, name, mapping, category=category)
    who = entered_by or f"file:{source}"
    return found, [row.to_entry(name, who) for row in rows]


def policy_path(csv_path: str | Path) -> Path:
    """``lists/ncic.csv`` -> ``lists/ncic.policy.json``."""
    path = Path(csv_path)
    return path.with_name(f"{path.stem}.policy.json")


def read_policy_file(csv_path: str | Path) -> dict[str, Any] | None:
    """The JSON object in the CSV's sibling ``<stem>.policy.json``, or None if there is none.

    Besides the policy fields it may hold ``category``. Raises HotlistImportError if the file is
    not a JSON object.
    """
    path = policy_path(csv_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HotlistImportError(
            Path(csv_path).stem, [(exc.lineno, f"{path.name}: {exc.msg}")]
        ) from exc
    if not isinstance(data, dict):
        raise HotlistImportError(Path(csv_path).stem, [(0, f"{path.name} must hold a JSON object")])
    return data


def split_policy(data: Mapping[str, Any], name: str) -> tuple[matchers.Policy, str | None]:
    """``(Policy, category or None)`` from a policy mapping that may also carry ``category``."""
    fields = {k: v for k, v in data.items() if k != "category"}
    try:
        policy = matchers.Policy.from_mapping(fields)
    except (TypeError, ValueError, matchers.MatchersError) as exc:
        raise HotlistImportError(name, [(0, f"policy is not valid: {exc}")]) from exc
    raw = data.get("category")
    try:
        category = normalise_category(str(raw)) if raw else None
    except ValueError as exc:
        raise HotlistImportError(name, [(0, str(exc))]) from exc
    return policy, category


def load_hotlist_file(
    path: str | Path, *, name: str | None = None, mapping: str | Mapping[str, str] | None = None
) -> matchers.Hotlist:
    """A matcher hotlist straight from a CSV file and its sibling policy file (no database).

    The name defaults to the file stem; the category comes from ``category`` in the policy file,
    else the file's category column. Used for ``PLATEFLOW_HOTLIST_FILES``. Version is 0.
    """
    path = Path(path)
    list_name = name or path.stem
    data = read_policy_file(path) or {}
    policy, category = split_policy(data, list_name)
    found, entries = read_hotlist_csv(path, list_name, mapping, category=category)
    if found is None:
        msg = (
            f"no category: add a category column to {path.name} or "
            f'"category" to {policy_path(path).name} (one of {", ".join(CATEGORIES)})'
        )
        raise HotlistImportError(list_name, [(0, msg)])
    return matchers.Hotlist(
        name=list_name, category=found, policy=policy, entries=tuple(entries), version=0
    )
