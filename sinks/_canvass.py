"""Canvass (policy 427.3(d)): every plate read near a place during a time window.

One pass over the date partitions of the window: a bounding box on ``lat``/``lon`` first (cheap
column comparisons), then the exact test (haversine distance to the center, or shapely's
point-in-polygon on the few rows left), then one row per plate.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from sinks._errors import SinksValueError
from sinks._pages import Pages, check_page_size, iso, read_filters
from sinks._search import retry

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

    from sinks._store import ReadStore

__all__ = ["CANVASS_SCHEMA", "canvass"]

CANVASS_SCHEMA: dict[str, pl.DataType] = {
    "plate": pl.String(),
    "state": pl.String(),
    "reads": pl.UInt32(),
    "first_seen": pl.Datetime("ms", "UTC"),
    "last_seen": pl.Datetime("ms", "UTC"),
    "cameras": pl.List(pl.String()),
    "read_ids": pl.List(pl.String()),
    "nearest_m": pl.Float64(),
}
_EARTH_RADIUS_M = 6_371_008.8


def canvass(
    store: ReadStore,
    start: datetime,
    end: datetime,
    *,
    center: tuple[float, float] | None = None,
    radius_m: float | None = None,
    polygon: BaseGeometry | None = None,
    cameras: Collection[str] | None = None,
    page_size: int = 1000,
) -> Pages:
    """Every plate read within ``radius_m`` of ``center`` (lat, lon) or inside ``polygon``
    (shapely, x = lon, y = lat) during ``[start, end)``, one row per plate: ``reads``,
    ``first_seen``, ``last_seen``, ``cameras``, ``read_ids``, ``nearest_m`` (distance of the
    closest read to the center; null for a polygon), sorted by first sighting. Reads without
    a position are not in any canvass."""
    check_page_size(page_size)
    if (center is None) == (polygon is None):
        msg = "canvass needs either center and radius_m, or polygon (not both)"
        raise SinksValueError(msg, "center")
    if center is not None and (radius_m is None or radius_m <= 0):
        msg = f"canvass radius_m must be positive metres, got {radius_m}"
        raise SinksValueError(msg, "radius_m")
    filters, described = read_filters(None, cameras)
    columns = ["read_id", "camera_id", "plate", "state", "ts", "lat", "lon"]

    def window() -> pl.LazyFrame:
        frame = store.scan_reads(start, end).filter(
            pl.col("lat").is_not_null() & pl.col("lon").is_not_null()
        )
        for expression in filters:
            frame = frame.filter(expression)
        return frame

    def grouped() -> pl.DataFrame:
        if center is not None and radius_m is not None:
            lat0, lon0 = center
            dlat = math.degrees(radius_m / _EARTH_RADIUS_M)
            dlon = dlat / max(math.cos(math.radians(lat0)), 1e-6)
            near = pl.col("lat").is_between(lat0 - dlat, lat0 + dlat) & pl.col("lon").is_between(
                lon0 - dlon, lon0 + dlon
            )
            distance = _haversine(pl.col("lat"), pl.col("lon"), lat0, lon0)
            rows = retry(
                lambda: (
                    window()
                    .filter(near)
                    .select(columns)
                    .with_columns(distance_m=distance)
                    .collect()
                )
            ).filter(pl.col("distance_m") <= radius_m)
        else:
            import shapely

            assert polygon is not None
            west, south, east, north = polygon.bounds
            box = pl.col("lat").is_between(south, north) & pl.col("lon").is_between(west, east)
            rows = retry(lambda: window().filter(box).select(columns).collect())
            inside = shapely.contains_xy(polygon, rows["lon"].to_numpy(), rows["lat"].to_numpy())
            rows = rows.filter(pl.Series(inside, dtype=pl.Boolean)).with_columns(
                distance_m=pl.lit(None, pl.Float64)
            )
        return (
            rows.sort("ts", "read_id")
            .group_by("plate", maintain_order=True)
            .agg(
                state=pl.col("state").drop_nulls().mode().sort().first(),
                reads=pl.len(),
                first_seen=pl.col("ts").min(),
                last_seen=pl.col("ts").max(),
                cameras=pl.col("camera_id").unique().sort(),
                read_ids=pl.col("read_id"),
                nearest_m=pl.col("distance_m").min(),
            )
            .sort("first_seen", "plate")
            .cast(CANVASS_SCHEMA)  # type: ignore[arg-type]
        )

    def pages() -> Iterator[pl.DataFrame]:
        result = grouped()
        for offset in range(0, result.height, page_size):
            yield result.slice(offset, page_size)

    query = {
        "search": "canvass",
        "start": iso(start),
        "end": iso(end),
        "center": list(center) if center is not None else None,
        "radius_m": radius_m,
        "polygon": polygon.wkt if polygon is not None else None,
        **described,
    }
    return Pages(query, pages, CANVASS_SCHEMA, None)


def _haversine(lat: pl.Expr, lon: pl.Expr, lat0: float, lon0: float) -> pl.Expr:
    phi = lat.radians()
    phi0 = math.radians(lat0)
    dphi = phi - phi0
    dlmb = lon.radians() - math.radians(lon0)
    a = (dphi / 2).sin().pow(2) + math.cos(phi0) * phi.cos() * (dlmb / 2).sin().pow(2)
    return 2 * _EARTH_RADIUS_M * a.sqrt().arcsin()
