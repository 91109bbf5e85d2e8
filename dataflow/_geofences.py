"""Geofence advisories (policy 427.3(h)): polygons whose alerts carry an advisory text.

The file is a GeoJSON FeatureCollection of Polygon or MultiPolygon features, each with an
``advisory`` property (e.g. "Tribal lands: contact tribal law enforcement before entering") and
optionally a ``name``. Lookups use a shapely STRtree; only reads that raised an alert are looked
up, so the cost is per alert, not per read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import shapely
from shapely.geometry import shape

from dataflow._errors import DataflowError


class GeofenceError(DataflowError):
    """The geofence file is unusable; the message names the feature and the fix."""


class Geofences:
    """Point-in-polygon lookup of advisory texts."""

    def __init__(self, features: list[tuple[Any, str]]) -> None:
        self._geoms = [g for g, _ in features]
        self._texts = [t for _, t in features]
        self._tree = shapely.STRtree(self._geoms) if self._geoms else None

    @classmethod
    def empty(cls) -> Geofences:
        return cls([])

    @classmethod
    def load(cls, path: Path) -> Geofences:
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            msg = f"geofence file {path} is not readable GeoJSON: {exc}"
            raise GeofenceError(msg) from exc
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
            msg = f"geofence file {path} must be a GeoJSON FeatureCollection"
            raise GeofenceError(msg)
        features: list[tuple[Any, str]] = []
        for i, feat in enumerate(doc.get("features") or []):
            props = feat.get("properties") or {}
            advisory = props.get("advisory")
            label = props.get("name") or f"feature {i}"
            if not isinstance(advisory, str) or not advisory.strip():
                msg = f"geofence file {path}: {label} has no 'advisory' text property; add one"
                raise GeofenceError(msg)
            try:
                geom = shape(feat.get("geometry"))
            except (AttributeError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
                msg = f"geofence file {path}: {label} has an invalid geometry: {exc}"
                raise GeofenceError(msg) from exc
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                msg = f"geofence file {path}: {label} is a {geom.geom_type}; use a Polygon"
                raise GeofenceError(msg)
            features.append((geom, advisory.strip()))
        return cls(features)

    def __len__(self) -> int:
        return len(self._geoms)

    def advisories(self, lat: float | None, lon: float | None) -> list[str]:
        """Advisory texts of every geofence containing the point (GeoJSON is lon, lat)."""
        if self._tree is None or lat is None or lon is None:
            return []
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return [self._texts[i] for i in sorted(int(h) for h in hits)]
