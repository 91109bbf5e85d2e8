"""Searches of the stored reads: plate history, partial plate and canvass (427.3(d)).

A :class:`SearchSpec` is one validated question with its time window;
:meth:`SearchSpec.terms` is what the audit log records (427.5(a), Civil Code 1798.90.52: plate
or pattern, place, time window) and :meth:`SearchSpec.pages` runs it on a
:class:`sinks.ReadStore` as paged :class:`sinks.Pages`. Every constructor raises
:class:`~service.Invalid` naming the field to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl

import matchers
from service._errors import Invalid, from_sinks
from sinks import MATCH_COLUMNS, READS_SCHEMA, Pages, ReadStore, SinksError

__all__ = [
    "MATCH_MODES",
    "MAX_CANVASS_RADIUS_M",
    "MIN_KNOWN_CHARACTERS",
    "READ_RESULT_SCHEMA",
    "SearchSpec",
]

#: Plate history tolerance the caller asks for: exact, any OCR look-alike, or one difference.
MATCH_MODES = ("exact", "ocr", "one_difference")
#: A canvass is about a scene; a wider circle is a dragnet, not a canvass.
MAX_CANVASS_RADIUS_M = 50_000.0
#: A partial plate pins down at least this many positions by default (the one rule,
#: :func:`matchers.require_known_characters`; the setting ``search_min_known_characters``).
MIN_KNOWN_CHARACTERS = matchers.MIN_KNOWN_CHARACTERS
READ_RESULT_SCHEMA: dict[str, pl.DataType] = {**READS_SCHEMA, **MATCH_COLUMNS}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _polygon(geojson: Mapping[str, Any]) -> Any:
    """A shapely (Multi)Polygon from a GeoJSON geometry or Feature (x = lon, y = lat)."""
    import shapely
    from shapely.geometry import shape

    geometry = geojson.get("geometry") if geojson.get("type") == "Feature" else geojson
    try:
        polygon = shape(geometry)
    except Exception as exc:  # shapely raises many kinds on malformed input: all mean "bad"
        msg = f"polygon is not a GeoJSON Polygon or MultiPolygon ({exc.__class__.__name__})"
        raise Invalid(msg, "polygon") from exc
    if polygon.geom_type not in ("Polygon", "MultiPolygon") or polygon.is_empty:
        msg = f"polygon is a {polygon.geom_type}; give a GeoJSON Polygon or MultiPolygon"
        raise Invalid(msg, "polygon")
    west, south, east, north = polygon.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        msg = "polygon coordinates must be [longitude, latitude] in degrees (GeoJSON order)"
        raise Invalid(msg, "polygon")
    if not shapely.is_valid(polygon):
        msg = f"polygon is not valid ({shapely.is_valid_reason(polygon)}); fix its rings"
        raise Invalid(msg, "polygon")
    return polygon


def _plate_filters(
    candidates: bool, state: str | None, cameras: Sequence[str] | None
) -> dict[str, Any]:
    """The read filters a plate or partial search shares, checked and normalised."""
    return {"candidates": candidates, "state": _state(state), "cameras": _cameras(cameras)}


@dataclass(frozen=True)
class SearchSpec:
    """One validated search over ``[start, end)``. Build with :meth:`plate_history`,
    :meth:`partial` or :meth:`canvass`; they raise :class:`~service.Invalid` naming the field."""

    kind: str
    start: datetime
    end: datetime
    plate: str | None = None
    match: str = "exact"
    candidates: bool = False
    pattern: str | None = None
    ocr_equivalents: int = 0
    state: str | None = None
    cameras: tuple[str, ...] | None = None
    center: tuple[float, float] | None = None
    radius_m: float | None = None
    polygon: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def of_terms(cls, kind: str, terms: Any, start: datetime, end: datetime) -> SearchSpec:
        """The ``plate`` (plate history) or ``partial`` search whose terms are the attributes
        of ``terms`` named as the keywords of :meth:`plate_history` and :meth:`partial` (an
        API body's query, the CLI's arguments)."""
        common = {"candidates": terms.candidates, "state": terms.state, "cameras": terms.cameras}
        if kind == "plate":
            return cls.plate_history(terms.plate, start, end, match=terms.match, **common)
        return cls.partial(
            terms.pattern, start, end, ocr_equivalents=terms.ocr_equivalents, **common
        )

    @classmethod
    def plate_history(
        cls,
        plate: str,
        start: datetime,
        end: datetime,
        *,
        match: str = "exact",
        candidates: bool = False,
        state: str | None = None,
        cameras: Sequence[str] | None = None,
    ) -> SearchSpec:
        normal = matchers.normalise_plate(plate)
        if not 2 <= len(normal) <= matchers.MAX_PLATE_LENGTH:
            msg = f"plate {plate!r} normalises to {normal!r}; give 2-10 letters and digits"
            raise Invalid(msg, "plate")
        if match not in MATCH_MODES:
            raise Invalid(f"match {match!r} is not one of {', '.join(MATCH_MODES)}", "match")
        filters = _plate_filters(candidates, state, cameras)
        return cls("plate", start, end, plate=normal, match=match, **filters)

    @classmethod
    def partial(
        cls,
        pattern: str,
        start: datetime,
        end: datetime,
        *,
        ocr_equivalents: int = 0,
        candidates: bool = False,
        state: str | None = None,
        cameras: Sequence[str] | None = None,
    ) -> SearchSpec:
        try:
            # The known characters are a bound of the search (service._bounds), by the rule
            # hotlist patterns follow; the store refuses a pattern with none.
            text = matchers.normalise_entry_plate(pattern)
            matchers.require_known_characters(text, 1)
        except matchers.MatchersError as exc:
            raise Invalid(f"pattern {pattern!r}: {exc}", "pattern") from exc
        if not 0 <= ocr_equivalents <= 3:
            msg = f"ocr_equivalents is {ocr_equivalents}; allowed range is 0-3"
            raise Invalid(msg, "ocr_equivalents")
        filters = _plate_filters(candidates, state, cameras)
        return cls("partial", start, end, pattern=text, ocr_equivalents=ocr_equivalents, **filters)

    @classmethod
    def canvass(
        cls,
        start: datetime,
        end: datetime,
        *,
        center: tuple[float, float] | None = None,
        radius_m: float | None = None,
        polygon: Mapping[str, Any] | None = None,
        cameras: Sequence[str] | None = None,
    ) -> SearchSpec:
        if (center is None) == (polygon is None):
            raise Invalid("a canvass needs a center and radius_m, or a polygon", "center")
        if center is not None:
            lat, lon = center
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise Invalid(f"center {center} is not a latitude, longitude", "center")
            if radius_m is None or not 0 < radius_m <= MAX_CANVASS_RADIUS_M:
                msg = f"radius_m must be more than 0 and at most {MAX_CANVASS_RADIUS_M:.0f} m"
                raise Invalid(msg, "radius_m")
        else:
            assert polygon is not None
            _polygon(polygon)
        return cls(
            "canvass",
            start,
            end,
            center=center,
            radius_m=radius_m,
            polygon=polygon,
            cameras=_cameras(cameras),
        )

    def _tolerance(self) -> tuple[int, int]:
        assert self.plate is not None
        return {"exact": (0, 0), "ocr": (0, len(self.plate)), "one_difference": (1, 0)}[self.match]

    def terms(self) -> dict[str, Any]:
        """The query terms for the audit log and the legal hold: what, where, when."""
        found: dict[str, Any] = {"search": self.kind, "start": _iso(self.start)}
        found["end"] = _iso(self.end)
        if self.kind == "plate":
            found |= {"plate": self.plate, "match": self.match, "candidates": self.candidates}
        elif self.kind == "partial":
            found |= {"pattern": self.pattern, "ocr_equivalents": self.ocr_equivalents}
            found["candidates"] = self.candidates
        elif self.center is not None:
            found |= {"center": list(self.center), "radius_m": self.radius_m}
        else:
            found["polygon"] = _polygon(self.polygon or {}).wkt
        if self.state is not None:
            found["state"] = self.state
        if self.cameras is not None:
            found["cameras"] = list(self.cameras)
        return found

    def pages(
        self,
        store: ReadStore,
        *,
        page_size: int = 1000,
        newest_first: bool = False,
        start: datetime | None = None,
        end: datetime | None = None,
        ocr_classes: Sequence[str] = matchers.DEFAULT_OCR_CLASSES,
    ) -> Pages:
        """Run on ``store``; ``start``/``end`` narrow the window (for paging)."""
        lo, hi = start or self.start, end or self.end
        try:
            if self.kind == "plate":
                assert self.plate is not None
                differences, ocr = self._tolerance()
                return store.plate_history(
                    self.plate,
                    lo,
                    hi,
                    differences=differences,
                    ocr_equivalents=ocr,
                    candidates=self.candidates,
                    state=self.state,
                    cameras=self.cameras,
                    ocr_classes=ocr_classes,
                    page_size=page_size,
                    newest_first=newest_first,
                )
            if self.kind == "partial":
                assert self.pattern is not None
                return store.partial_search(
                    self.pattern,
                    lo,
                    hi,
                    state=self.state,
                    cameras=self.cameras,
                    ocr_equivalents=self.ocr_equivalents,
                    candidates=self.candidates,
                    ocr_classes=ocr_classes,
                    page_size=page_size,
                    newest_first=newest_first,
                )
            return store.canvass(
                lo,
                hi,
                center=self.center,
                radius_m=self.radius_m,
                polygon=_polygon(self.polygon) if self.polygon is not None else None,
                cameras=self.cameras,
                page_size=page_size,
            )
        except SinksError as exc:
            fallback = {"plate": "plate", "partial": "pattern"}.get(self.kind, "center")
            raise from_sinks(exc, fallback) from exc


def _state(state: str | None) -> str | None:
    if state is None or not state.strip():
        return None
    text = state.strip().upper()
    if len(text) != 2 or not text.isalpha() or not text.isascii():
        raise Invalid(f"state {state!r} is not a two-letter code", "state")
    return text


def _cameras(cameras: Sequence[str] | None) -> tuple[str, ...] | None:
    if not cameras:
        return None
    return tuple(sorted({c.strip() for c in cameras if c.strip()})) or None
