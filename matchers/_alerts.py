"""Building an alert from a match (ARCHITECTURE "Alert"): ids, the record, the advisories.

The flow builds live alerts and stored-read past matching builds historical ones with the same
function, so both have the same shape and the same deterministic ids (a replay, or a second
past search, publishes the same ``alert_id``). Pure: geofences arrive as parsed GeoJSON (the
caller reads the file), and lookups are shapely point-in-polygon tests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from matchers._model import Match
from matchers._text import MatchersError

__all__ = ["VERIFY_ADVISORY", "GeofenceError", "Geofences", "alert_id", "build_alert"]

#: Policy 427.3(g): every alert tells the officer to confirm the hit before acting on it.
VERIFY_ADVISORY = (
    "Verify this hit through CLETS/NCIC before any enforcement action (policy 427.3(g)); "
    "the plate read may be wrong and the hotlist may be out of date."
)


class GeofenceError(MatchersError):
    """The geofences are unusable; the message names the source, the feature and the fix."""


def alert_id(read_id: str, entry_id: str) -> str:
    """Deterministic: the same read hitting the same entry always yields the same id."""
    digest = hashlib.blake2b(f"{read_id}\x1f{entry_id}".encode(), digest_size=12)
    return "a-" + digest.hexdigest()


def build_alert(
    read: Mapping[str, Any], match: Match, advisories: list[str], now_ms: int
) -> dict[str, Any]:
    """The alert of ARCHITECTURE "Alert" for one match of one canonical read.

    ``advisories`` are the geofence texts for the read's position (see
    :meth:`Geofences.advisories`); the verification advisory always comes first.
    """
    hotlist, entry = match.hotlist, match.entry
    return {
        "alert_id": alert_id(read["read_id"], entry.entry_id),
        "read": read,
        "hotlist": {
            "name": hotlist.name,
            "category": hotlist.category,
            "priority": hotlist.policy.priority,
            "covert": hotlist.policy.covert,
        },
        "entry": {
            "entry_id": entry.entry_id,
            "plate": entry.plate,
            "state": entry.state,
            "reason": entry.reason,
            "case_number": entry.case_number,
            "entered_by": entry.entered_by,
            "expires_at": entry.expires_at_ms,
        },
        "match": {
            "kind": match.kind,
            "differences": match.differences,
            "substitutions": [list(s) for s in match.substitutions],
            "edits": list(match.edits),
            "matched_text": match.matched_text,
            "via_candidate": match.via_candidate,
        },
        "state_mismatch": match.state_mismatch,
        "verify_before_action": True,
        "advisories": [VERIFY_ADVISORY, *advisories],
        "emitted_at": now_ms,
        "sighting_of": None,
    }


class Geofences:
    """Point-in-polygon lookup of advisory texts (policy 427.3(h)).

    Built from a GeoJSON FeatureCollection of Polygon or MultiPolygon features, each with an
    ``advisory`` property (e.g. "Tribal lands: contact tribal law enforcement before entering")
    and optionally a ``name``. Lookups use a shapely STRtree; only reads that raised an alert
    are looked up, so the cost is per alert, not per read.
    """

    def __init__(self, features: list[tuple[Any, str]]) -> None:
        import shapely  # here, not at module level: the ingest imports matchers, not geofences

        self._geoms = [g for g, _ in features]
        self._texts = [t for _, t in features]
        self._tree = shapely.STRtree(self._geoms) if self._geoms else None

    @classmethod
    def empty(cls) -> Geofences:
        return cls([])

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "geofences") -> Geofences:
        """Parse GeoJSON text (the contents of ``PLATEFLOW_GEOFENCE_FILE``); ``source`` names
        it in errors. Raises :class:`GeofenceError`."""
        try:
            doc = json.loads(data)
        except ValueError as exc:  # not JSON, or bytes that are not UTF-8
            msg = f"geofence file {source} is not readable GeoJSON: {exc}"
            raise GeofenceError(msg) from exc
        return cls.from_geojson(doc, source)

    @classmethod
    def from_geojson(cls, doc: Any, source: str = "geofences") -> Geofences:
        """Build from a parsed GeoJSON FeatureCollection. Raises :class:`GeofenceError`
        naming the feature when one has no advisory or is not a polygon."""
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
            msg = f"geofence file {source} must be a GeoJSON FeatureCollection"
            raise GeofenceError(msg)
        import shapely
        from shapely.geometry import shape

        features: list[tuple[Any, str]] = []
        for i, feat in enumerate(doc.get("features") or []):
            props = (feat.get("properties") if isinstance(feat, dict) else None) or {}
            advisory = props.get("advisory")
            label = props.get("name") or f"feature {i}"
            if not isinstance(advisory, str) or not advisory.strip():
                msg = f"geofence file {source}: {label} has no 'advisory' text property; add one"
                raise GeofenceError(msg)
            try:
                geom = shape(feat.get("geometry"))
            except (AttributeError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
                msg = f"geofence file {source}: {label} has an invalid geometry: {exc}"
                raise GeofenceError(msg) from exc
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                msg = f"geofence file {source}: {label} is a {geom.geom_type}; use a Polygon"
                raise GeofenceError(msg)
            features.append((geom, advisory.strip()))
        return cls(features)

    def __len__(self) -> int:
        return len(self._geoms)

    def advisories(self, lat: float | None, lon: float | None) -> list[str]:
        """Advisory texts of every geofence containing the point (GeoJSON is lon, lat)."""
        if self._tree is None or lat is None or lon is None:
            return []
        import shapely

        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return [self._texts[i] for i in sorted(int(h) for h in hits)]
