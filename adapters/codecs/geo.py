"""Coordinates of city messages: pair order, datum, GB/T 2260 codes, CAP circle and polygon text.

CAP areas are WGS-84 "lat,lon". Chinese city systems write pairs in either order and sometimes
in GCJ-02 (the "Mars" datum of Amap/Tencent maps, ~500 m off here) or BD-09 (Baidu's). A shift
between those datums is an approximation that hides which one the source really used, so a
message that *says* GCJ-02 or BD-09 is refused with a clear error instead of being shifted; the
city's system must send WGS-84 (or CGCS2000, which agrees with WGS-84 to a few centimetres).
Every function here raises ValueError with a message meant to follow a native field path.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, NoReturn

import orjson

Order = Literal["lat,lon", "lon,lat"]
DATUMS = ("WGS-84", "CGCS2000", "GCJ-02", "BD-09")
ACCEPTED_DATUMS = frozenset({"WGS-84", "CGCS2000"})
GB2260 = "GB/T 2260"
"""The CAP ``valueName`` of a geocode that is a GB/T 2260 administrative code."""

# Province-level prefixes of GB/T 2260 (mainland, Taiwan, Hong Kong, Macao).
_PROVINCES = frozenset(
    ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
     "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
     "65", "71", "81", "82"]
)  # fmt: skip
_SPLIT = re.compile(r"[,\s]+")
_RING_SPLIT = re.compile(r"\s*;\s*|\s+")


def refuse_datum(datum: str) -> str:
    """The datum itself if coordinates in it are accepted; ValueError otherwise."""
    if datum in ACCEPTED_DATUMS:
        return datum
    _raise(
        f"the message says its coordinates are {datum}; Liandong takes WGS-84 only and does not "
        f"shift {datum} (an approximation): the city system must send WGS-84"
    )


def gb2260(value: Any) -> str:
    """A GB/T 2260 administrative code as text (a number is accepted)."""
    if type(value) is int:
        value = str(value)
    if type(value) is not str:
        _raise(f"a GB/T 2260 code must be text, not {type(value).__name__}")
    if not is_gb2260(value):
        _raise(f"'{value[:40]}' is not a GB/T 2260 administrative code (six digits, a province)")
    return str(value)


def is_gb2260(text: str) -> bool:
    """Whether ``text`` is a GB/T 2260 administrative code (six digits, a province)."""
    # six ASCII digits (what the pattern [0-9]{6} says, without a regex call)
    return len(text) == 6 and text.isascii() and text.isdigit() and text[:2] in _PROVINCES


def number(value: Any) -> float:
    """A finite number from a JSON number or numeric text."""
    kind = type(value)
    if (kind is float or kind is int) and -1e300 < value < 1e300:
        return float(value)  # the common case, and one comparison rejects inf and nan
    if kind is bool:
        _raise("a number was expected, not a boolean")
    if type(value) is str:
        try:
            value = float(value)
        except ValueError:
            _raise(f"'{value[:40]}' is not a number")
    if not isinstance(value, int | float):
        _raise(f"a number was expected, not {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        _raise(f"{value} is not a finite number")
    return result


def fmt(value: float) -> str:
    """CAP text of a number: the shortest text that reads back as the same float ("120.9",
    "2.0"), in fixed-point where Python would write an exponent ("0.00001", not "1e-05")."""
    text = repr(float(value))
    if "e" not in text:
        return text
    fixed = f"{value:.17f}".rstrip("0")
    return fixed + "0" if fixed.endswith(".") else fixed


def pair(value: Any) -> tuple[float, float]:
    """A native coordinate pair in native order: ``[x, y]`` or ``"x,y"`` / ``"x y"``."""
    if type(value) is list and len(value) == 2:
        return number(value[0]), number(value[1])
    if type(value) is str and value.count(",") == 1:
        first, _, second = value.partition(",")
        try:
            return number(float(first)), number(float(second))
        except ValueError:
            pass  # the long way says what is wrong
    if type(value) is str:
        parts: list[Any] = [p for p in _SPLIT.split(value.strip()) if p]
    elif type(value) is list:
        parts = value
    else:
        _raise(f"a coordinate pair must be [x, y] or 'x,y', not {type(value).__name__}")
    if len(parts) != 2:
        _raise(f"a coordinate pair has two numbers, this one has {len(parts)}")
    return number(parts[0]), number(parts[1])


def lat_lon(first: float, second: float, order: Order) -> tuple[float, float]:
    """(lat, lon) from a native pair, checked against WGS-84 ranges with a hint on the order."""
    lat, lon = (first, second) if order == "lat,lon" else (second, first)
    check_lat_lon(lat, lon, order)
    return lat, lon


def check_lat_lon(lat: float, lon: float, order: Order | None = None) -> None:
    if -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
        return
    hint = ""
    if order and -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0:
        hint = f" (the dialect declares {order} order; are these the other way round?)"
    _raise(f"latitude {lat} / longitude {lon} are outside WGS-84 ranges{hint}")


def native_pair(lat: float, lon: float, order: Order, form: str) -> Any:
    """A (lat, lon) in the city's order and form: ``[x, y]`` or ``"x,y"``."""
    x, y = (lat, lon) if order == "lat,lon" else (lon, lat)
    if form == "string":
        return f"{fmt(x)},{fmt(y)}"
    return [x, y]


def circle_text(lat: float, lon: float, radius_km: float) -> str:
    if radius_km < 0:
        _raise(f"a circle's radius must not be negative ({fmt(radius_km)} km)")
    # fmt's text of each number: repr, unless repr writes an exponent (then fmt's own way)
    text = f"{float(lat)!r},{float(lon)!r} {float(radius_km)!r}"
    if "e" not in text:
        return text
    return f"{fmt(lat)},{fmt(lon)} {fmt(radius_km)}"


def ring_text(value: Any, order: Order) -> str:
    """CAP polygon text ("lat,lon lat,lon ...", closed) of a native ring."""
    swap = order == "lon,lat"
    if type(value) is list:
        text = plain_ring_text(value, swap)
        if text is not None:
            return text
    elif type(value) is str:
        pairs = [item.partition(",") for item in value.replace(";", " ").split()]
        if len(pairs) >= 3 and all(sep for _, sep, _ in pairs):
            try:
                text = plain_ring_text([[float(a), float(b)] for a, _, b in pairs], swap)
            except ValueError:
                text = None
            if text is not None:
                return text
    return polygon_text(ring(value, order))


def plain_ring_text(items: list[Any], swap: bool) -> str | None:
    """``ring_text`` of the usual ring, [x, y] numbers in range (``swap``: [lon, lat]); None
    for anything else, which ``ring_text`` takes the long way, saying what is wrong."""
    # Written by orjson in one call: its floats are the shortest text that reads back the
    # same, as repr and fmt write them, except that repr writes an exponent below 1e-4 (those
    # go the long way, through fmt).
    if len(items) < 3:
        return None
    points = []
    for item in items:
        if type(item) is not list or len(item) != 2:
            return None
        if swap:
            lon, lat = item
        else:
            lat, lon = item
        if type(lat) is not float:
            if type(lat) is not int:
                return None
            lat = float(lat)
        if type(lon) is not float:
            if type(lon) is not int:
                return None
            lon = float(lon)
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return None
        if (lat and -1e-4 < lat < 1e-4) or (lon and -1e-4 < lon < 1e-4):
            return None
        points.append((lat, lon))
    if points[0] != points[-1]:
        points.append(points[0])  # rings are often sent open; CAP needs them closed
    if len(points) < 4:
        return None
    return orjson.dumps(points)[2:-2].decode().replace("],[", " ")


def ring(value: Any, order: Order) -> list[tuple[float, float]]:
    """A native polygon ring ([[x, y], ...] or "x,y x,y" / "x,y;x,y") as closed (lat, lon)."""
    if type(value) is str:
        items: list[Any] = [p for p in _RING_SPLIT.split(value.strip()) if p]
    elif type(value) is list:
        items = value
    else:
        _raise(f"a polygon must be a list of pairs or text, not {type(value).__name__}")
    points: list[tuple[float, float]] = []
    swap = order == "lon,lat"
    for i, item in enumerate(items):
        try:
            x, y = pair(item)
        except ValueError as exc:
            _raise(f"point {i}: {exc}")
        lat, lon = (y, x) if swap else (x, y)
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            try:
                check_lat_lon(lat, lon, order)
            except ValueError as exc:
                _raise(f"point {i}: {exc}")
        points.append((lat, lon))
    if points and points[0] != points[-1]:
        points.append(points[0])  # rings are often sent open; CAP needs them closed
    if len(points) < 4:
        _raise(f"a polygon needs at least three distinct points, this one has {len(items)}")
    return points


def polygon_text(points: list[tuple[float, float]]) -> str:
    return " ".join([f"{fmt(lat)},{fmt(lon)}" for lat, lon in points])


def native_ring(points: list[tuple[float, float]], order: Order, form: str) -> Any:
    pairs = [native_pair(lat, lon, order, form) for lat, lon in points]
    return ";".join(pairs) if form == "string" else pairs


def _raise(message: str) -> NoReturn:
    raise ValueError(message)
