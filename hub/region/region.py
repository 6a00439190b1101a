"""The region: jurisdictions, their boundaries, who borders whom, and the agreements between them.

A :class:`Region` is built once from the packaged data files (``load_region()``) and then only
answers questions; it is immutable and safe to share between asyncio tasks. Not between
threads: GEOS builds a prepared geometry's edge index lazily, on first use, without a lock. All
geometry it takes and returns lives in the hub's km plane (see :mod:`hub.region.geometry`).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import shapely
from shapely.geometry.base import BaseGeometry

from hub.model.region import (
    CAP_CATEGORIES,
    CLAUSE_KINDS,
    Agreement,
    Clause,
    Jurisdiction,
)
from hub.region import geometry as geo
from hub.region.agreements import default_agreements_path, load_agreements

__all__ = ["Region", "UnknownAgreement", "UnknownJurisdiction", "load_region"]


_BINDING_CACHE_SIZE = 100_000


class UnknownJurisdiction(KeyError):
    """A code that is not a jurisdiction of the region."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code

    def __str__(self) -> str:
        return f"unknown jurisdiction {self.code!r}"


class UnknownAgreement(KeyError):
    """An agreement id that the region does not have."""

    def __init__(self, agreement_id: str) -> None:
        super().__init__(agreement_id)
        self.agreement_id = agreement_id

    def __str__(self) -> str:
        return f"unknown agreement {self.agreement_id!r}"


class Region:
    """Jurisdictions, boundaries, adjacency and agreements, with the queries the hub needs."""

    def __init__(
        self,
        jurisdictions: Iterable[Jurisdiction],
        boundaries: Mapping[str, dict[str, Any]],
        adjacency: Iterable[tuple[str, str, float]],
        agreements: Iterable[Agreement],
        attribution: Mapping[str, str] | None = None,
    ) -> None:
        """Build from models, GeoJSON boundaries in lon/lat per code, and adjacency pairs
        ``(a, b, shared border km)``. Raises ValueError if the pieces do not fit together."""
        by_code = {j.code: j for j in sorted(jurisdictions, key=lambda j: j.code)}
        self._jurisdictions = MappingProxyType(by_code)
        self._attribution = MappingProxyType(dict(attribution or {}))
        if missing := sorted(set(by_code) - set(boundaries)):
            raise ValueError(f"no boundary for {missing}")
        self._geometry = {code: geo.project_geojson(boundaries[code]) for code in by_code}
        shapely.prepare(list(self._geometry.values()))  # index the edges once, for predicates
        self._district_codes = tuple(c for c, j in by_code.items() if j.level == "district")
        self._children: dict[str, tuple[str, ...]] = {
            c: tuple(d for d in self._district_codes if by_code[d].parent == c)
            for c, j in by_code.items()
            if j.level == "city"
        }
        shapes = [self._geometry[c] for c in self._district_codes]
        self._index = geo.DistrictIndex(self._district_codes, shapes)
        self._neighbours, self._border = self._index_adjacency(adjacency)
        self._agreements = tuple(sorted(agreements, key=lambda a: a.id))
        self._agreement_by_id = {a.id: a for a in self._agreements}
        # Agreements never change while a Region lives: their answers are memoised.
        self._binding_cache: dict[tuple[Any, ...], list[tuple[Agreement, Clause]]] = {}
        self._parties_cache: dict[str, list[str]] = {}
        self._check_agreements()
        self._geojson = orjson.dumps(self._feature_collection(boundaries))

    @classmethod
    def from_files(cls, region_path: Path, agreements_path: Path | None = None) -> Region:
        """Load a region data file (as written by scripts/build_region.py) and agreements."""
        data = orjson.loads(region_path.read_bytes())
        if data.get("format") != 1:
            raise ValueError(f"{region_path}: unsupported format {data.get('format')!r}")
        boundaries: dict[str, dict[str, Any]] = {}
        jurisdictions = []
        for code, entry in data["jurisdictions"].items():
            fields = dict(entry)
            boundaries[code] = fields.pop("geometry")
            jurisdictions.append(Jurisdiction.model_validate(fields))
        adjacency = [(a, b, float(km)) for a, b, km in data["adjacency"]]
        agreements = load_agreements(agreements_path)
        return cls(jurisdictions, boundaries, adjacency, agreements, data.get("attribution"))

    # -- jurisdictions ---------------------------------------------------------------------

    @property
    def jurisdictions(self) -> Mapping[str, Jurisdiction]:
        """All jurisdictions, cities and districts, by code (read-only)."""
        return self._jurisdictions

    @property
    def attribution(self) -> Mapping[str, str]:
        """Source and licence of the boundary data, for display."""
        return self._attribution

    def jurisdiction(self, code: str) -> Jurisdiction:
        """The jurisdiction with this code; raises UnknownJurisdiction."""
        try:
            return self._jurisdictions[code]
        except KeyError:
            raise UnknownJurisdiction(code) from None

    def is_known(self, code: str) -> bool:
        """Whether the code is a city or district of the region."""
        return code in self._jurisdictions

    def districts(self) -> list[Jurisdiction]:
        """All districts, sorted by code."""
        return [self._jurisdictions[c] for c in self._district_codes]

    def districts_of(self, code: str) -> list[str]:
        """The district codes a code stands for: a city's districts, or the district itself."""
        j = self.jurisdiction(code)
        return list(self._children[code]) if j.level == "city" else [code]

    # -- adjacency -------------------------------------------------------------------------

    def neighbours(self, code: str) -> list[str]:
        """Districts bordering ``code`` (for a city: bordering any of its districts), sorted."""
        own = set(self.districts_of(code))
        found = {n for d in own for n in self._neighbours.get(d, ())}
        return sorted(found - own)

    def shared_border_km(self, a: str, b: str) -> float:
        """Length of border two districts share, in km (0.0 if they are not neighbours)."""
        self.jurisdiction(a), self.jurisdiction(b)
        return self._border.get((min(a, b), max(a, b)), 0.0)

    # -- geometry --------------------------------------------------------------------------

    def geometry(self, code: str) -> BaseGeometry:
        """The jurisdiction's boundary in the km plane (prepared for fast predicates)."""
        self.jurisdiction(code)
        return self._geometry[code]

    def containing(self, lat: float, lon: float) -> Jurisdiction | None:
        """The district containing the point, or None outside the region.

        A point exactly on a shared border belongs to the lower code, so the answer is stable.
        """
        hits = self._index.covering(*geo.project(lat, lon))
        return self._jurisdictions[min(hits)] if hits else None

    def area_geometry(
        self,
        polygons: Sequence[Sequence[tuple[float, float]]],
        circles: Sequence[tuple[float, float, float]],
        geocodes: Sequence[str] = (),
    ) -> BaseGeometry:
        """The union of a CAP area's parts in the km plane.

        ``polygons`` are lists of (lat, lon) points as CAP writes them, ``circles`` are
        (lat, lon, radius_km), ``geocodes`` are GB/T 2260 codes standing for their jurisdiction's
        boundary; degenerate polygons, bad circles and unknown codes are skipped. Raises
        ValueError if nothing usable is left.
        """
        parts = [geo.cap_polygon(p) for p in polygons]
        parts += [geo.cap_circle(lat, lon, r) for lat, lon, r in circles]
        parts += [self._geometry[c] for c in geocodes if c in self._geometry]
        return geo.union(p for p in parts if p is not None)

    def within_km(
        self, geometry: BaseGeometry, km: float, exclude: str | None = None
    ) -> list[tuple[str, float]]:
        """Districts within ``km`` of the geometry as (code, distance km), 0.0 if they overlap;
        sorted by (distance, code), without ``exclude``."""
        if not (math.isfinite(km) and km >= 0.0):
            raise ValueError(f"km must be a finite non-negative number, not {km!r}")
        found = self._index.within(geometry, km)
        return sorted((c for c in found if c[0] != exclude), key=lambda item: (item[1], item[0]))

    def within_km_of_circle(
        self, lat: float, lon: float, radius_km: float, km: float, exclude: str | None = None
    ) -> list[tuple[str, float]]:
        """``within_km`` for a CAP circle, without building the circle's polygon: a disc lies
        within ``km`` of a district exactly when its centre lies within ``km + radius``."""
        centre = geo.cap_circle(lat, lon, 0.0)
        if centre is None or radius_km < 0.0:
            raise ValueError(f"not a usable circle: {lat},{lon} {radius_km}")
        found = self.within_km(centre, km + radius_km, exclude)
        hits = [(code, max(0.0, d - radius_km)) for code, d in found]
        return sorted(hits, key=lambda item: (item[1], item[0]))

    def distance_km(self, code: str, geometry: BaseGeometry) -> float:
        """Distance in km from a jurisdiction's boundary to the geometry (0.0 if they overlap)."""
        return float(shapely.distance(self.geometry(code), geometry))

    def to_geojson(self) -> dict[str, Any]:
        """A fresh GeoJSON FeatureCollection of the districts in lon/lat, for the console's map."""
        result: dict[str, Any] = orjson.loads(self._geojson)
        return result

    # -- agreements ------------------------------------------------------------------------

    @property
    def agreements(self) -> list[Agreement]:
        """All agreements, sorted by id."""
        return list(self._agreements)

    def agreement(self, agreement_id: str) -> Agreement:
        """The agreement with this id; raises UnknownAgreement."""
        try:
            return self._agreement_by_id[agreement_id]
        except KeyError:
            raise UnknownAgreement(agreement_id) from None

    def parties(self, agreement_id: str) -> list[str]:
        """District codes bound by the agreement (a city party brings all its districts)."""
        found = self._parties_cache.get(agreement_id)
        if found is None:
            agreement = self.agreement(agreement_id)
            found = sorted({d for p in agreement.parties for d in self.districts_of(p)})
            self._parties_cache[agreement_id] = found
        return list(found)

    def agreements_binding(
        self,
        a: str,
        b: str,
        category: str,
        kind: str | None = None,
        on: dt.date | None = None,
    ) -> list[tuple[Agreement, Clause]]:
        """(agreement, clause) pairs binding both ``a`` and ``b`` with a clause covering the CAP
        ``category`` (and of ``kind``), in force on ``on`` (None: ignore dates); sorted by
        (agreement id, clause id)."""
        key = (a, b, category, kind, on)
        cached = self._binding_cache.get(key)
        if cached is None:
            self._check_query(category, kind, a, b)
            cached = [
                (agreement, clause)
                for agreement in self._agreements
                if (on is None or agreement.in_force(on))
                and agreement.binds(a)
                and agreement.binds(b)
                for clause in agreement.clauses_for(category, kind)
            ]
            if len(self._binding_cache) < _BINDING_CACHE_SIZE:  # bounded: dates vary
                self._binding_cache[key] = cached
        return list(cached)

    def partners(
        self, code: str, category: str, kind: str | None = None, on: dt.date | None = None
    ) -> list[str]:
        """Districts sharing with ``code`` an agreement that has a clause covering ``category``
        (and of ``kind``), in force on ``on`` if given; sorted, without ``code``'s own."""
        self._check_query(category, kind, code)
        found: set[str] = set()
        for agreement in self._agreements:
            if on is not None and not agreement.in_force(on):
                continue
            if agreement.binds(code) and agreement.clauses_for(category, kind):
                found.update(self.parties(agreement.id))
        return sorted(found - set(self.districts_of(code)))

    # -- internals -------------------------------------------------------------------------

    def _check_query(self, category: str, kind: str | None, *codes: str) -> None:
        # A misspelt category or kind would silently match nothing; fail loudly instead.
        if category not in CAP_CATEGORIES:
            raise ValueError(f"unknown CAP category {category!r}")
        if kind is not None and kind not in CLAUSE_KINDS:
            raise ValueError(f"unknown clause kind {kind!r}")
        for code in codes:
            self.jurisdiction(code)

    def _index_adjacency(
        self, pairs: Iterable[tuple[str, str, float]]
    ) -> tuple[dict[str, tuple[str, ...]], dict[tuple[str, str], float]]:
        neighbours: dict[str, set[str]] = {c: set() for c in self._district_codes}
        border: dict[tuple[str, str], float] = {}
        for a, b, km in pairs:
            if a not in neighbours or b not in neighbours or a == b:
                raise ValueError(f"adjacency pair {a}-{b} is not two known districts")
            neighbours[a].add(b)
            neighbours[b].add(a)  # stored once per pair, symmetric by construction
            border[(min(a, b), max(a, b))] = km
        return {c: tuple(sorted(n)) for c, n in neighbours.items()}, border

    def _check_agreements(self) -> None:
        for agreement in self._agreements:
            if unknown := [p for p in agreement.parties if p not in self._jurisdictions]:
                raise ValueError(f"agreement {agreement.id}: unknown parties {unknown}")
            if inside := [p for p in agreement.external_parties if p in self._jurisdictions]:
                raise ValueError(f"agreement {agreement.id}: external parties in region {inside}")

    def _feature_collection(self, boundaries: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        features = []
        for code in self._district_codes:
            j = self._jurisdictions[code]
            properties = {
                "code": code,
                "name_zh": j.name_zh,
                "name_en": j.name_en,
                "parent": j.parent,
            }
            features.append(
                {"type": "Feature", "properties": properties, "geometry": boundaries[code]}
            )
        return {"type": "FeatureCollection", "features": features}


@functools.cache
def load_region() -> Region:
    """The region shipped with the hub (``hub/region/data``), loaded once per process."""
    data = Path(str(resources.files("hub.region") / "data" / "region.json"))
    return Region.from_files(data, default_agreements_path())
