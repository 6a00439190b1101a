"""The hub's planar frame and the geometry of CAP areas.

Every geometric question the hub asks ("which districts are within 10 km of this spill?") is
answered in one local plane measured in kilometres, so that buffers and distances are plain
Euclidean operations in shapely.

The projection is equirectangular, centred on the region::

    x = R · (lon − LON0) · cos(LAT0)        y = R · (lat − LAT0)        (angles in radians)

with R = 6371.0088 km (the IUGG mean Earth radius), LAT0 = 31.0° and LON0 = 121.0°.

Error over the region (latitude 29.3°–32.7°, longitude 119.3°–123.0°):

* north–south distances are exact on the sphere; the sphere itself differs from the WGS 84
  ellipsoid by up to ~0.3 % at these latitudes;
* east–west distances are scaled by cos(lat)/cos(LAT0): about +2 % at the southern edge
  (Ningbo, 29.3°) and −2 % at the northern edge (Rudong, 32.7°), under 0.5 % within ±0.5° of
  31° where Shanghai and the demonstration zone lie.

So a 10 km distance is right to within ~200 m anywhere in the region, which is well below the
precision of the simplified boundaries and of any incident area a duty officer will draw.
Outside the region the error grows without bound: do not use this frame far from Shanghai.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Point, Polygon, shape
from shapely.geometry.base import BaseGeometry

EARTH_RADIUS_KM = 6371.0088
LAT0 = 31.0
LON0 = 121.0
_KX = EARTH_RADIUS_KM * math.radians(1.0) * math.cos(math.radians(LAT0))  # km per degree east
_KY = EARTH_RADIUS_KM * math.radians(1.0)  # km per degree north

# Quarter-circle segments for circle buffers: 64 vertices, at most ~0.5 % short of the true
# radius, which is ample for CAP circles that are themselves rough.
CIRCLE_QUAD_SEGS = 16

FloatArray = npt.NDArray[np.float64]


def project(lat: float, lon: float) -> tuple[float, float]:
    """Project one (lat, lon) in degrees to (x, y) in the hub's km plane."""
    return ((lon - LON0) * _KX, (lat - LAT0) * _KY)


def unproject(x: float, y: float) -> tuple[float, float]:
    """Inverse of :func:`project`: (x, y) in km back to (lat, lon) in degrees."""
    return (LAT0 + y / _KY, LON0 + x / _KX)


def _lonlat_to_plane(coords: FloatArray) -> FloatArray:
    # shapely.transform hands us an (n, 2) array of (lon, lat), GeoJSON's axis order.
    out = np.empty_like(coords)
    out[:, 0] = (coords[:, 0] - LON0) * _KX
    out[:, 1] = (coords[:, 1] - LAT0) * _KY
    return out


def _plane_to_lonlat(coords: FloatArray) -> FloatArray:
    out = np.empty_like(coords)
    out[:, 0] = LON0 + coords[:, 0] / _KX
    out[:, 1] = LAT0 + coords[:, 1] / _KY
    return out


def _transform(geometry: BaseGeometry, fn: Callable[[FloatArray], FloatArray]) -> BaseGeometry:
    result: BaseGeometry = shapely.transform(geometry, fn)
    return result


def project_lonlat(geometry: BaseGeometry) -> BaseGeometry:
    """Project a shapely geometry whose coordinates are (lon, lat) into the km plane."""
    return _transform(geometry, _lonlat_to_plane)


def unproject_to_lonlat(geometry: BaseGeometry) -> BaseGeometry:
    """Map a geometry of the km plane back to (lon, lat) coordinates, e.g. for GeoJSON."""
    return _transform(geometry, _plane_to_lonlat)


def project_geojson(geojson: dict[str, Any]) -> BaseGeometry:
    """Build a projected shapely geometry from a GeoJSON geometry object in lon/lat."""
    return project_lonlat(shape(geojson))


def cap_polygon(points: Sequence[tuple[float, float]]) -> BaseGeometry | None:
    """Project a CAP polygon given as (lat, lon) points; None if it encloses no area.

    CAP writes points as "lat,lon", the reverse of GeoJSON, so the axes are swapped here and
    nowhere else. A self-intersecting ring is repaired rather than refused: a duty officer's
    sketch that crosses itself still means "this area".
    """
    if len(points) < 3:
        return None
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.isfinite(arr).all():
        return None
    xy = np.column_stack(((arr[:, 1] - LON0) * _KX, (arr[:, 0] - LAT0) * _KY))
    polygon: BaseGeometry = Polygon(xy)
    if not polygon.is_valid:
        polygon = shapely.make_valid(polygon)
    polygonal = _polygonal_part(polygon)
    return None if polygonal is None or polygonal.area <= 0.0 else polygonal


def cap_circle(lat: float, lon: float, radius_km: float) -> BaseGeometry | None:
    """Project a CAP circle; a zero radius means the point itself. None if unusable."""
    if not all(math.isfinite(v) for v in (lat, lon, radius_km)) or radius_km < 0.0:
        return None
    centre = Point(project(lat, lon))
    if radius_km == 0.0:
        return centre
    circle: BaseGeometry = centre.buffer(radius_km, quad_segs=CIRCLE_QUAD_SEGS)
    return circle


def union(parts: Iterable[BaseGeometry]) -> BaseGeometry:
    """Union of projected parts; raises ValueError when there is nothing to unite."""
    items = [p for p in parts if p is not None and not p.is_empty]
    if not items:
        raise ValueError("area has no usable polygon, circle or known geocode")
    if len(items) == 1:
        return items[0]
    result: BaseGeometry = shapely.union_all(items)
    return result


class DistrictIndex:
    """Districts' projected boundaries indexed for point and distance queries.

    The polygons are prepared (their edges indexed once) and kept in an STRtree, so a query
    touches only the few districts whose boxes are near, and tests those with indexed edges.
    """

    def __init__(self, codes: Sequence[str], shapes: Sequence[BaseGeometry]) -> None:
        self._codes = np.array(codes)
        self._shapes = np.array(shapes)
        shapely.prepare(self._shapes)
        self._boundaries = shapely.boundary(self._shapes)
        self._tree = shapely.STRtree(self._shapes)

    def covering(self, x: float, y: float) -> list[str]:
        """Codes of the districts whose polygon covers the point (borders count)."""
        point = Point(x, y)
        idx = self._tree.query(point)
        hits: list[str] = self._codes[idx[shapely.intersects(self._shapes[idx], point)]].tolist()
        return hits

    def within(self, geometry: BaseGeometry, km: float) -> list[tuple[str, float]]:
        """(code, distance) of the districts within km of the geometry, 0.0 if overlapping."""
        # Exact GEOS distance between a 400-vertex district and a 64-vertex circle costs
        # ~100 µs (shapely does not use prepared geometry for it), so do as little of it as
        # possible: boxes first, then the prepared intersects test (distance 0), and only then
        # the distance to the part of the boundary inside the box grown by km. That part is
        # enough: a nearest point no further than km from the geometry lies inside that box.
        xmin, ymin, xmax, ymax = np.add(shapely.bounds(geometry), (-km, -km, km, km)).tolist()
        near = self._tree.query(shapely.box(xmin, ymin, xmax, ymax))  # callers sort
        if not len(near):
            return []
        overlap = shapely.intersects(self._shapes[near], geometry)
        distances = np.zeros(len(near))
        if not overlap.all():
            clipped = shapely.clip_by_rect(self._boundaries[near[~overlap]], xmin, ymin, xmax, ymax)
            distances[~overlap] = shapely.distance(clipped, geometry)  # NaN: nothing left
        keep = distances <= km
        codes: list[str] = self._codes[near[keep]].tolist()
        return list(zip(codes, distances[keep].tolist(), strict=True))


def _polygonal_part(geometry: BaseGeometry) -> BaseGeometry | None:
    # make_valid may return a collection mixing polygons with stray lines or points.
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    polys = [
        g for g in getattr(geometry, "geoms", ()) if g.geom_type in ("Polygon", "MultiPolygon")
    ]
    if not polys:
        return None
    result: BaseGeometry = shapely.union_all(polys)
    return result
