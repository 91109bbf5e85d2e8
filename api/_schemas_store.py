"""Request and response models of the stored-read endpoints: searches, past-read matching,
legal holds, evidence exports and release fulfilment.

Times go out as RFC 3339 UTC text with milliseconds. A JSON body may carry the justification
(``case_number``, ``event_number``, ``description``) at its top level, as everywhere in the API.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api._schemas import RecordOut, ReleaseOut

__all__ = [
    "AlertRefOut",
    "CanvassIn",
    "CanvassOut",
    "CanvassPlateOut",
    "CanvassQuery",
    "ExportIn",
    "ExportOut",
    "HoldIn",
    "HoldOut",
    "HoldReleaseIn",
    "PartialQuery",
    "PastIn",
    "PastOut",
    "PastReadOut",
    "PlateQuery",
    "PointIn",
    "ReadOut",
    "ReleaseExportIn",
    "ReleaseExportOut",
    "SearchOut",
    "VerifyEvidenceOut",
]

Match = Literal["exact", "ocr", "one_difference"]
_CAMERAS = Field(None, max_length=100, description="Only reads of these cameras.")
_PAGE = Field(100, ge=1, le=1000, description="Rows (or plates) per page.")
_CURSOR = Field(None, max_length=512, description="`next_cursor` of the previous page.")


class AlertRefOut(BaseModel):
    """An alert a read raised (covert-list alerts only for roles allowed to see them)."""

    alert_id: str
    hotlist: str | None
    category: str | None
    kind: str | None
    entry_id: str | None
    sighting_of: str | None


class CandidateOut(BaseModel):
    plate: str
    confidence: float | None


class ReadOut(BaseModel):
    """A stored read and how it matched the search."""

    read_id: str
    camera_id: str
    plate: str
    plate_raw: str | None
    ts: str
    confidence: float | None
    state: str | None
    lat: float | None
    lon: float | None
    candidates: list[CandidateOut] | None
    agency: str | None
    image_ref: str | None
    partition: int | None
    matched_plate: str | None = Field(description="The read plate, or the candidate matched.")
    via_candidate: bool | None
    match_kind: str | None = Field(description="exact, ocr, fuzzy, partial or custom.")
    differences: int | None
    substitutions: int | None
    alerts: list[AlertRefOut]


class SearchOut(RecordOut):
    query: dict[str, Any] = Field(description="The search as recorded in the audit log.")
    count: int = Field(description="Rows on this page.")
    total: int | None = Field(description="Rows in the whole result (first page only).")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    reads: list[ReadOut]


class PointIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PlateQuery(BaseModel):
    """Plate history: every read of a plate (exact, OCR look-alike, or one difference)."""

    plate: str = Field(min_length=1, max_length=32)
    match: Match = "exact"
    candidates: bool = Field(False, description="Also match the reads' alternate plates.")
    start: datetime | None = Field(None, description="RFC 3339; default 30 days before end.")
    end: datetime | None = Field(None, description="RFC 3339, exclusive; default now.")
    state: str | None = Field(None, max_length=2)
    cameras: list[str] | None = _CAMERAS


class PartialQuery(BaseModel):
    """Partial plate: a glob over the whole plate (`7AB?12*`, `*XYZ*`, `[8B]AD*`)."""

    pattern: str = Field(min_length=1, max_length=40)
    ocr_equivalents: int = Field(0, ge=0, le=3)
    candidates: bool = False
    start: datetime | None = None
    end: datetime | None = None
    state: str | None = Field(None, max_length=2)
    cameras: list[str] | None = _CAMERAS


_OVERRIDE = (
    "Why this search may pass the configured bounds (window, area, known characters): "
    "holders of `search:override` only; recorded in the audit log."
)


class CanvassQuery(BaseModel):
    """Canvass: plates read within a radius of a point, or inside a GeoJSON polygon."""

    start: datetime = Field(description="RFC 3339, inclusive.")
    end: datetime = Field(description="RFC 3339, exclusive.")
    center: PointIn | None = None
    radius_m: float | None = Field(None, gt=0, le=50_000)
    polygon: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon or MultiPolygon (or a Feature), [lon, lat] order."
    )
    cameras: list[str] | None = _CAMERAS


class CanvassIn(CanvassQuery):
    page_size: int = _PAGE
    cursor: str | None = _CURSOR
    override_reason: str | None = Field(None, max_length=500, description=_OVERRIDE)


class CanvassPlateOut(BaseModel):
    plate: str
    state: str | None
    reads: int
    first_seen: str
    last_seen: str
    cameras: list[str]
    read_ids: list[str]
    nearest_m: float | None = Field(description="Closest read to the center (null: polygon).")
    alerts: list[AlertRefOut]


class CanvassOut(RecordOut):
    query: dict[str, Any]
    count: int = Field(description="Plates on this page.")
    total: int | None = Field(description="Plates in the whole canvass.")
    next_cursor: str | None
    plates: list[CanvassPlateOut]


class PastIn(BaseModel):
    """An entry already on a list: what would it have hit in the last `days` of reads?"""

    hotlist: str = Field(min_length=1, max_length=64)
    plate: str = Field(min_length=1, max_length=40, description="The entry's plate or pattern.")
    state: str | None = Field(None, max_length=8, description="When listed for several states.")
    days: int = Field(30, ge=1, le=3650)
    alert: bool = Field(
        False,
        description="Publish every hit as an alert flagged `historical` (on the first page; "
        "ignored with a cursor).",
    )
    page_size: int = _PAGE
    cursor: str | None = _CURSOR


class PastReadOut(ReadOut):
    entry_id: str
    entry_plate: str
    state_mismatch: bool


class PastOut(RecordOut):
    query: dict[str, Any]
    count: int
    total: int | None
    next_cursor: str | None
    alerts_published: int = Field(description="Historical alerts published by this call.")
    reads: list[PastReadOut]


class HoldIn(BaseModel):
    """A legal hold on the result of one search (or on read ids) for the case number given
    as the justification. Give exactly one of `plate`, `partial`, `canvass`, `read_ids`."""

    reason: str = Field(min_length=1, max_length=1000)
    plate: PlateQuery | None = None
    partial: PartialQuery | None = None
    canvass: CanvassQuery | None = None
    read_ids: list[str] | None = Field(None, max_length=100_000)


class HoldOut(RecordOut):
    case_number: str
    active: bool
    reads: int
    alerts: int
    days: list[date]
    placements: list[dict[str, Any]]
    released: dict[str, Any] | None


class HoldReleaseIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, description="Case closed, court order...")


class ExportIn(BaseModel):
    case_number: str | None = Field(
        None, max_length=64, description="The held case to export (default: the inquiry's)."
    )
    purpose: str = Field("", max_length=2000)


class ExportOut(RecordOut):
    export_id: str
    case_number: str
    manifest: dict[str, Any]
    files: list[str] = Field(description="Names to fetch from .../files/{name}.")


class VerifyEvidenceOut(BaseModel):
    export_id: str
    ok: bool
    summary: dict[str, Any] | None
    problems: str | None


class ReleaseExportIn(BaseModel):
    case_number: str | None = Field(
        None,
        max_length=64,
        description="If given, must be the request's case (a release exports exactly that "
        "case; another one is a 409).",
    )
    note: str = Field("", max_length=2000)


class ReleaseExportOut(BaseModel):
    release: ReleaseOut
    export: ExportOut
