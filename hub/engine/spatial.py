"""Where an incident is, asked the questions playbooks ask: near a border, inside a zone,
touching a jurisdiction, which districts lie within N km.

Every incident is asked these questions by many playbooks, so an :class:`Area` answers each once
and remembers it, and a lone CAP circle (the usual report) is answered from its centre without
building a polygon: a disc meets a shape exactly when its centre lies within the radius of it.
Boxes are compared in plain Python first, so most incidents far from a zone cost no GEOS call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from hub.engine.source import PlaybookError, Problem
from hub.model.incident import Incident
from hub.model.region import city_of
from hub.region import Region
from hub.region import geometry as geo

BorderLevel = Literal["district", "city", "province"]
BORDER_LEVELS: tuple[BorderLevel, ...] = ("district", "city", "province")
Bounds = tuple[float, float, float, float]

# The region's box in WGS-84 with a margin: a zone outside it almost surely has lat/lon swapped.
_LON_RANGE, _LAT_RANGE = (117.5, 124.0), (28.5, 33.5)


@dataclass(frozen=True, slots=True, eq=False)
class Zone:
    """A named area playbooks refer to (a river corridor, a lake, the demonstration zone)."""

    name: str
    title_zh: str
    title_en: str
    source: str
    geometry: BaseGeometry  # in the hub's km plane, prepared
    bounds: Bounds


def load_zones(directory: Path) -> dict[str, Zone]:
    """Every ``*.geojson`` in ``directory`` as a zone named after its file; {} if none."""
    zones: dict[str, Zone] = {}
    for path in sorted(directory.glob("*.geojson")) if directory.is_dir() else []:
        zones[path.stem] = _load_zone(path)
    return zones


def _load_zone(path: Path) -> Zone:
    def bad(message: str) -> PlaybookError:
        return PlaybookError([Problem(str(path), 1, "", message)])

    try:
        doc: Any = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise bad(f"not a GeoJSON file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise bad("a zone is a GeoJSON FeatureCollection")
    title, source = doc.get("title"), doc.get("source")
    if not (isinstance(title, dict) and title.get("zh") and title.get("en")):
        raise bad('a zone needs "title": {"zh": ..., "en": ...}')
    if not (isinstance(source, str) and source.strip()):
        raise bad('a zone needs "source": where its shape comes from')
    shapes = []
    for i, feature in enumerate(doc.get("features") or []):
        try:
            found = shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad(f"feature {i}: not a GeoJSON geometry ({exc})") from None
        if found.geom_type not in ("Polygon", "MultiPolygon") or not found.is_valid:
            raise bad(f"feature {i}: expected a valid Polygon or MultiPolygon")
        xmin, ymin, xmax, ymax = found.bounds
        if not (_LON_RANGE[0] <= xmin <= xmax <= _LON_RANGE[1]):
            raise bad(f"feature {i}: longitudes outside the region (GeoJSON is lon,lat)")
        if not (_LAT_RANGE[0] <= ymin <= ymax <= _LAT_RANGE[1]):
            raise bad(f"feature {i}: latitudes outside the region (GeoJSON is lon,lat)")
        shapes.append(geo.project_lonlat(found))
    if not shapes:
        raise bad("a zone needs at least one feature")
    geometry = geo.union(shapes)
    shapely.prepare(geometry)
    return Zone(path.stem, str(title["zh"]), str(title["en"]), source, geometry, _bounds(geometry))


def _bounds(geometry: BaseGeometry) -> Bounds:
    xmin, ymin, xmax, ymax = (float(v) for v in shapely.bounds(geometry))
    return (xmin, ymin, xmax, ymax)


def _box_distance(x: float, y: float, box: Bounds) -> float:
    dx = max(box[0] - x, 0.0, x - box[2])
    dy = max(box[1] - y, 0.0, y - box[3])
    return math.hypot(dx, dy)


class Borders:
    """The lines where two districts meet, at one level (any two districts, two cities, two
    provinces), indexed for "how far is the nearest border, and whose is it?"."""

    def __init__(self, region: Region, level: BorderLevel) -> None:
        codes = [d.code for d in region.districts()]
        lines: list[BaseGeometry] = []
        self.pairs: list[tuple[str, str]] = []
        for a in codes:
            outline = shapely.boundary(region.geometry(a))
            for b in region.neighbours(a):
                if a < b and _differ(a, b, level):
                    # Neighbours share simplified borders, but not to the last bit: take the
                    # part of a's outline lying within 50 m of b.
                    near_b = shapely.buffer(region.geometry(b), 0.05)
                    lines.append(shapely.intersection(outline, near_b))
                    self.pairs.append((a, b))
        self._tree = shapely.STRtree(lines)
        self._cells: dict[tuple[int, int], float] = {}

    def near(self, x: float, y: float, radius: float, km: float) -> bool | None:
        """Whether a disc lies within ``km`` of a border, decided from the distance at the
        centre of the 2 km cell around it (kept per cell) when that is clear either way; None
        when the disc is too close to the limit to tell (ask :meth:`nearest`)."""
        cell = (math.floor(x / _CELL_KM), math.floor(y / _CELL_KM))
        at_centre = self._cells.get(cell)
        if at_centre is None:
            centre = Point((cell[0] + 0.5) * _CELL_KM, (cell[1] + 0.5) * _CELL_KM)
            found = self.nearest(centre)
            at_centre = self._cells[cell] = math.inf if found is None else found[0]
        # Any point of the cell is within half its diagonal of the cell's centre.
        if at_centre - _HALF_DIAGONAL - radius > km:
            return False
        if at_centre + _HALF_DIAGONAL - radius <= km:
            return True
        return None

    def nearest(self, geometry: BaseGeometry) -> tuple[float, tuple[str, str]] | None:
        if not self.pairs:
            return None
        found, distances = self._tree.query_nearest(geometry, return_distance=True)
        # Ties are broken by the pair, so the answer does not depend on the tree's order.
        return min((float(d), self.pairs[int(i)]) for i, d in zip(found, distances, strict=True))


_CELL_KM = 2.0
_HALF_DIAGONAL = _CELL_KM * math.sqrt(0.5)


def _differ(a: str, b: str, level: BorderLevel) -> bool:
    if level == "province":
        return a[:2] != b[:2]
    if level == "city":
        return city_of(a) != city_of(b)
    return True


@functools.lru_cache(maxsize=16)
def borders(region: Region, level: BorderLevel) -> Borders:
    """The border index of ``region`` at ``level``, built on first use (~0.1 s) and kept."""
    return Borders(region, level)


@functools.lru_cache(maxsize=1024)
def _jurisdiction_box(region: Region, code: str) -> Bounds:
    return _bounds(region.geometry(code))


class Area:
    """One incident's area (every info block's polygons, circles and geocodes together), with
    each spatial answer computed once."""

    __slots__ = (
        "_answers",
        "_circle",
        "_circles",
        "_geocodes",
        "_geometry",
        "_incident",
        "_point",
        "_polygons",
        "_usable",
        "region",
    )

    def __init__(self, region: Region, incident: Incident) -> None:
        self.region = region
        self._incident = incident
        self._polygons: list[list[tuple[float, float]]] = []
        self._circles: list[tuple[float, float, float]] = []
        self._geocodes: list[str] = []
        self._circle: tuple[float, float, float] | None = None
        self._point: BaseGeometry | None = None
        self._geometry: BaseGeometry | None = None
        self._usable: bool | None = None
        self._answers: dict[Any, Any] = {}

    def _read(self) -> None:
        # Parsed on the first spatial question: most incidents are turned down before one.
        for info in self._incident.info:
            for area in info.area:
                self._polygons.extend(area.polygons())
                self._circles.extend(area.circles())
                self._geocodes.extend(g.value for g in area.geocode)
        if len(self._circles) == 1 and not (self._polygons or self._geocodes):
            lat, lon, radius = self._circles[0]
            if math.isfinite(lat + lon + radius) and radius >= 0.0:
                x, y = geo.project(lat, lon)
                self._circle = (x, y, radius)

    @property
    def sent_on(self) -> date:
        """The day the incident was sent, for "which agreements were in force"."""
        day = self._answers.get("sent")
        if day is None:
            day = self._answers["sent"] = datetime.fromisoformat(self._incident.sent).date()
        return day

    @property
    def usable(self) -> bool:
        """Whether the incident says where it is (a polygon, circle or known geocode)."""
        if self._usable is None:
            self._read()
            if self._circle is not None:
                self._usable = True
            else:
                try:
                    self._geometry = self.region.area_geometry(
                        self._polygons, self._circles, self._geocodes
                    )
                    self._usable = True
                except ValueError:
                    self._usable = False
        return self._usable

    def _need(self) -> None:
        if not self.usable:
            raise ValueError("the incident has no usable area")

    def _centre(self) -> tuple[BaseGeometry, float]:
        assert self._circle is not None
        if self._point is None:
            self._point = Point(self._circle[0], self._circle[1])
        return self._point, self._circle[2]

    def border(self, level: BorderLevel) -> tuple[float, tuple[str, str]] | None:
        """Distance in km to the nearest border at ``level`` and the two districts it parts."""
        self._need()
        key = ("border", level)
        if key not in self._answers:
            index = borders(self.region, level)
            if self._circle is not None:
                point, radius = self._centre()
                found = index.nearest(point)
                if found is not None:
                    found = (max(0.0, found[0] - radius), found[1])
            else:
                found = index.nearest(self._shape())
            self._answers[key] = found
        return self._answers[key]  # type: ignore[no-any-return]

    def near_border(self, level: BorderLevel, km: float) -> bool:
        """Whether the area lies within ``km`` of a border at ``level``."""
        self._need()
        if self._circle is not None:
            x, y, radius = self._circle
            decided = borders(self.region, level).near(x, y, radius, km)
            if decided is not None:
                return decided
        found = self.border(level)
        return found is not None and found[0] <= km

    def meets_zone(self, zone: Zone, km: float = 0.0) -> bool:
        """Whether the area comes within ``km`` of the zone (touches it when ``km`` is 0)."""
        self._need()
        key = ("zone", zone.name, km)
        found = self._answers.get(key)
        if found is None:
            found = self._answers[key] = self._meets(zone.geometry, zone.bounds, km)
        return found

    def zone_distance(self, zone: Zone) -> float:
        """Distance in km from the area to the zone (0.0 when they overlap); for explaining."""
        self._need()
        return self._distance(zone.geometry)

    def meets_jurisdiction(self, code: str) -> bool:
        """Whether the area touches the jurisdiction (a city: any of its districts)."""
        self._need()
        key = ("jurisdiction", code)
        found = self._answers.get(key)
        if found is None:
            box = _jurisdiction_box(self.region, code)
            found = self._answers[key] = self._meets(self.region.geometry(code), box, 0.0)
        return found

    def within_km(self, km: float, exclude: str) -> list[tuple[str, float]]:
        """Districts within ``km`` of the area as (code, km), nearest first, from the region."""
        self._need()
        key = ("within", km, exclude)
        found = self._answers.get(key)
        widest = self._answers.get(("widest", exclude))
        if found is None and widest is not None and widest[0] >= km:
            found = [(code, d) for code, d in widest[1] if d <= km]  # same order: by (d, code)
            self._answers[key] = found
        if found is None:
            if self._circle is not None:
                lat, lon, radius = self._circles[0]
                found = self.region.within_km_of_circle(lat, lon, radius, km, exclude)
            else:
                found = self.region.within_km(self._shape(), km, exclude)
            self._answers[key] = found
            if widest is None or widest[0] < km:
                self._answers[("widest", exclude)] = (km, found)
        return list(found)

    def _meets(self, geometry: BaseGeometry, box: Bounds, km: float) -> bool:
        if self._circle is not None:
            x, y, radius = self._circle
            if _box_distance(x, y, box) > radius + km:
                return False
            point, _ = self._centre()
            return bool(shapely.dwithin(geometry, point, radius + km))
        area = self._shape()
        if km == 0.0:
            return bool(shapely.intersects(geometry, area))
        return bool(shapely.dwithin(geometry, area, km))

    def _distance(self, geometry: BaseGeometry) -> float:
        if self._circle is not None:
            point, radius = self._centre()
            return max(0.0, float(shapely.distance(geometry, point)) - radius)
        return float(shapely.distance(geometry, self._shape()))

    def _shape(self) -> BaseGeometry:
        if self._geometry is None:
            if self._circle is not None:
                lat, lon, radius = self._circles[0]
                circle = geo.cap_circle(lat, lon, radius)
                assert circle is not None
                self._geometry = circle
            else:
                self._need()
        assert self._geometry is not None
        return self._geometry


def describe_pair(region: Region, pair: Sequence[str]) -> str:
    """'Qingpu District 310118 / Wujiang District 320509', for reasons people read."""
    return " / ".join(f"{region.jurisdiction(c).name_en} {c}" for c in pair)
