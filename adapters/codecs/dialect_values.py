"""Value translations of a dialect, both ways: code tables, times and zones, lengths, text.

Each is built once when a mapping is loaded; decoding then calls plain functions. A function
that meets a value it cannot translate raises ValueError with a message meant to follow the
native field path (the caller adds the path).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_core import SchemaValidator, core_schema

from adapters.codecs.dialect_spec import Scalar, Table

_METRES = {"m": 1.0, "km": 1000.0, "ft": 0.3048}


def zone(name: str) -> ZoneInfo:
    """An IANA time zone; ValueError for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' is not an IANA time zone (e.g. Asia/Shanghai)") from None


def factor(native_unit: str | None, canonical_unit: str | None) -> float:
    """Multiply a native length by this to get the canonical unit (1.0 when either is unset)."""
    if native_unit is None or canonical_unit is None:
        return 1.0
    return _METRES[native_unit] / _METRES[canonical_unit]


def tidy(value: float) -> int | float:
    """A number as JSON should carry it: an integral float as an int."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def text(value: Any) -> str:
    """Canonical text from a native scalar (numbers keep their JSON spelling)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return str(tidy(value))
    raise ValueError(f"text was expected, not {_kind(value)}")


_KINDS: dict[type, str] = {dict: "an object", list: "an array"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


class CodeTable:
    """A code table: native code → canonical value, and back (first code wins)."""

    def __init__(self, name: str, spec: Table) -> None:
        self.name = name
        self.default = spec.default
        self.forward: dict[str, Scalar] = {}
        self.backward: dict[str, list[str | int]] = {}
        for code, value in spec.values.items():
            key = self.key(code)
            if key in self.forward:
                raise ValueError(f"code '{key}' appears twice in table '{name}'")
            self.forward[key] = value
            self.backward.setdefault(text(value), []).append(code)
        listing = ", ".join(list(self.forward)[:12])
        self._known = listing + (", ..." if len(self.forward) > 12 else "")

    @staticmethod
    def key(code: Any) -> str:
        """The lookup key of a native code: its text, so 2, 2.0 and "2" are the same code."""
        if type(code) in (dict, list):
            raise ValueError(f"a code was expected, not {_kind(code)}")
        return text(code)

    def decode(self, code: Any) -> Scalar:
        value = self.forward.get(code if type(code) is str else self.key(code))
        if value is not None:
            return value
        if self.default is not None:
            return self.default
        shown = str(code)[:40]
        raise ValueError(
            f"unknown code '{shown}' (table '{self.name}' has no default; known: {self._known})"
        )

    def codes_for(self, value: Any) -> list[str | int]:
        """The native codes that decode to ``value``, in table order (empty: none)."""
        return self.backward.get(text(value), [])

    def values(self) -> list[Scalar]:
        found = list(self.forward.values())
        return [*found, self.default] if self.default is not None else found


# -- times -------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1)
_FROMISO = datetime.fromisoformat
_DIRECTIVES = {"Y": r"(\d{4})", "m": r"(\d{2})", "d": r"(\d{2})", "H": r"(\d{2})"}
_DIRECTIVES |= {"M": r"(\d{2})", "S": r"(\d{2})"}
_REQUIRED = ("Y", "m", "d", "H", "M")
_ISO_LIKE = frozenset({"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"})


@functools.lru_cache(maxsize=64)
def _offset_text(offset: timedelta | None) -> str:
    if offset is None:
        raise ValueError("the time zone gives no UTC offset")
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


class TimeCodec:
    """Native times ⇄ CAP dateTime (numeric offset, seconds, written in ``cap_zone``).

    ``fmt``: ``iso``, ``epoch_s``, ``epoch_ms`` or a pattern (``%Y-%m-%d %H:%M:%S``); naive
    native times are in ``native_zone``. Fractions of a second are dropped (CAP has none).
    """

    def __init__(self, fmt_: str, native_zone: ZoneInfo, cap_zone: ZoneInfo) -> None:
        self.native_zone = native_zone
        self.cap_zone = cap_zone
        self._same_zone = native_zone is cap_zone or native_zone.key == cap_zone.key
        self._order: list[str] = []
        self._pattern = fmt_
        if fmt_ == "iso":
            self.decode: Callable[[Any], str] = self._decode_iso
            self.encode: Callable[[str], Any] = self._encode_iso
        elif fmt_ in ("epoch_s", "epoch_ms"):
            self._scale = 1000 if fmt_ == "epoch_ms" else 1
            self.decode, self.encode = self._decode_epoch, self._encode_epoch
        else:
            self._regex = self._compile(fmt_)
            self.decode, self.encode = self._decode_pattern, self._encode_pattern
            if fmt_ in _ISO_LIKE and self._same_zone:
                self.decode = self._iso_like()

    def _compile(self, pattern: str) -> re.Pattern[str]:
        out, i = [], 0
        while i < len(pattern):
            ch = pattern[i]
            if ch != "%":
                out.append(re.escape(ch))
                i += 1
                continue
            d = pattern[i + 1 : i + 2]
            if d == "%":
                out.append("%")
            elif d in _DIRECTIVES and d not in self._order:
                out.append(_DIRECTIVES[d])
                self._order.append(d)
            else:
                raise ValueError(
                    f"time pattern '{pattern}': '%{d}' is not supported (use %Y %m %d %H %M %S)"
                )
            i += 2
        missing = [f"%{d}" for d in _REQUIRED if d not in self._order]
        if missing:
            raise ValueError(f"time pattern '{pattern}' lacks {' '.join(missing)}")
        # The groups, in ISO order, fill "%s-%s-%sT%s:%s:%s": half a CAP dateTime already.
        iso_order = [self._order.index(d) for d in "YmdHMS" if d in self._order]
        self._reorder = None if iso_order == sorted(iso_order) else iso_order
        self._iso = "%s-%s-%sT%s:%s:" + ("%s" if "S" in self._order else "00")
        return re.compile("".join(out), re.ASCII)

    def _cap(self, moment: datetime) -> str:
        # Naive text plus a cached offset, or a Unix time through fromtimestamp: each a third of
        # the cost of replace(tzinfo=...) and astimezone, at tens of thousands a second.
        if moment.tzinfo is None:
            offset = self.native_zone.utcoffset(moment)
            if self._same_zone:
                return moment.isoformat() + _offset_text(offset)
            seconds = (moment - _EPOCH - offset).total_seconds()  # type: ignore[operator]
            return datetime.fromtimestamp(seconds, tz=self.cap_zone).isoformat()
        return moment.astimezone(self.cap_zone).isoformat()

    def _decode_iso(self, raw: Any) -> str:
        if type(raw) is not str:
            raise ValueError(f"an ISO 8601 time was expected, not {_kind(raw)}")
        try:
            moment = datetime.fromisoformat(raw).replace(microsecond=0)
        except ValueError:
            raise ValueError(f"'{raw[:40]}' is not an ISO 8601 time") from None
        return self._cap(moment)

    def _decode_epoch(self, raw: Any) -> str:
        if type(raw) is str and raw.isascii() and raw.lstrip("-").isdigit():
            raw = int(raw)
        if type(raw) not in (int, float):
            raise ValueError(f"a Unix time was expected, not {_kind(raw)}")
        try:
            return datetime.fromtimestamp(raw // self._scale, tz=self.cap_zone).isoformat()
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{raw} is out of range for a Unix time") from None

    def _decode_pattern(self, raw: Any) -> str:
        if type(raw) is int:
            raw = str(raw)  # "%Y%m%d%H%M%S" times are sometimes sent as numbers
        if type(raw) is not str:
            raise ValueError(f"a time like '{self._pattern}' was expected, not {_kind(raw)}")
        match = self._regex.fullmatch(raw)
        if match is None:
            raise ValueError(f"'{raw[:40]}' does not match the time format '{self._pattern}'")
        groups = match.groups()
        if self._reorder is not None:
            groups = tuple([groups[i] for i in self._reorder])
        iso = self._iso % groups
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError as exc:
            raise ValueError(f"'{raw}' is not a real time: {exc}") from None
        if self._same_zone:
            return iso + _offset_text(self.cap_zone.utcoffset(moment))
        return self._cap(moment)

    def _iso_like(self) -> Callable[[Any], str]:
        # "2026-07-01 08:30:00" is a CAP dateTime but for the "T" and the offset: no groups to
        # reorder. Anything else goes the long way, which says what is wrong. The pattern is
        # checked by pydantic-core's Rust regex engine: the same language as self._regex
        # (ASCII digits, the pattern's own separator), in half the time.
        sep = self._pattern[8]  # " " or "T"
        digits = f"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{sep}[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}"
        matches = SchemaValidator(core_schema.str_schema(pattern=f"^{digits}$")).isinstance_python
        utcoffset, slow, fromisoformat = self.cap_zone.utcoffset, self._decode_pattern, _FROMISO

        def decode_iso_like(raw: Any) -> str:
            if type(raw) is str and matches(raw):
                iso = raw.replace(" ", "T")  # the one space there is, if any
                try:
                    moment = fromisoformat(iso)
                except ValueError:
                    return slow(raw)
                return iso + _offset_text(utcoffset(moment))
            return slow(raw)

        return decode_iso_like

    def _native(self, cap: str) -> datetime:
        return datetime.fromisoformat(cap).astimezone(self.native_zone)

    def _encode_iso(self, cap: str) -> str:
        return self._native(cap).isoformat()

    def _encode_epoch(self, cap: str) -> int:
        return int(datetime.fromisoformat(cap).timestamp()) * self._scale

    def _encode_pattern(self, cap: str) -> str:
        moment = self._native(cap)
        fields = {"Y": f"{moment.year:04d}", "m": f"{moment.month:02d}"}
        fields |= {"d": f"{moment.day:02d}", "H": f"{moment.hour:02d}"}
        fields |= {"M": f"{moment.minute:02d}", "S": f"{moment.second:02d}"}
        return re.sub(r"%(.)", lambda m: fields.get(m.group(1), "%"), self._pattern)


__all__ = ["CodeTable", "TimeCodec", "factor", "text", "tidy", "zone"]
