"""Recordings: the embedded log between two times as JSONL, trimmed and anonymised for drills.

A recording line is ``{"offset", "topic", "key", "appended_ms", "envelope"}``: the log record's
own offset and append time, and the CloudEvent as the hub stored it. Anonymising replaces what
names people or places in words (CAP free text, task action texts and reasons, phone numbers
anywhere in text) with numbered placeholders and keeps everything a replay acts on (ids, codes,
times, categories, severities, polygons, circles, geocodes) byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from hub.errors import InvalidInput
from hub.store.sql import Connection


@dataclass(frozen=True, slots=True)
class Record:
    """One log record of a recording."""

    offset: int
    topic: str
    key: str | None
    appended_ms: int
    envelope: dict[str, Any]

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "offset": self.offset,
                "topic": self.topic,
                "key": self.key,
                "appended_ms": self.appended_ms,
                "envelope": self.envelope,
            },
            option=orjson.OPT_SORT_KEYS,
        )


def export(
    conn: Connection, from_ms: int, to_ms: int, topics: Sequence[str] = ()
) -> Iterator[Record]:
    """The log records appended in ``[from_ms, to_ms)``, in offset order."""
    sql = 'SELECT "offset", topic, key, ts_ms, value FROM log WHERE ts_ms >= ? AND ts_ms < ?'
    args: list[Any] = [from_ms, to_ms]
    if topics:
        sql += f" AND topic IN ({','.join('?' * len(topics))})"
        args.extend(topics)
    for offset, topic, key, ts_ms, value in conn.execute(
        sql + ' ORDER BY "offset"', args
    ).fetchall():
        yield Record(int(offset), str(topic), key, int(ts_ms), orjson.loads(bytes(value)))


def write(records: Iterable[Record], handle: BinaryIO) -> int:
    """Write ``records`` as JSONL; returns how many were written."""
    count = 0
    for record in records:
        handle.write(record.to_json() + b"\n")
        count += 1
    return count


def read(path: Path) -> list[Record]:
    """Read a recording; a line that is not a record raises ``InvalidInput`` naming file:line."""
    records = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                records.append(
                    Record(
                        offset=_int(obj["offset"]),
                        topic=_str(obj["topic"]),
                        key=obj.get("key"),
                        appended_ms=_int(obj["appended_ms"]),
                        envelope=_dict(obj["envelope"]),
                    )
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(f"{path}:{number}: not a recording line: {exc}") from None
    return records


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("envelope is not an object")
    return value


def trim(
    records: Iterable[Record],
    from_ms: int | None = None,
    to_ms: int | None = None,
    topics: Sequence[str] = (),
) -> list[Record]:
    """The records appended in ``[from_ms, to_ms)`` (either bound open) on ``topics`` (all if
    empty); offsets and times are kept as recorded."""
    return [
        r
        for r in records
        if (from_ms is None or r.appended_ms >= from_ms)
        and (to_ms is None or r.appended_ms < to_ms)
        and (not topics or r.topic in topics)
    ]


# Replaced whole wherever they occur in an event's data: CAP free text, task texts, reasons, and
# the raw body a dead letter keeps (it may hold any of them).
FREE_TEXT = frozenset(
    {
        "headline",
        "description",
        "instruction",
        "note",
        "contact",
        "web",
        "senderName",
        "areaDesc",
        "action_zh",
        "action_en",
        "reason",
        "resourceDesc",
        "uri",
        "derefUri",
        "payload",
    }
)
# Never touched: identities, codes, times and geometry a replay must see unchanged.
KEPT = frozenset(
    {
        "id",
        "identifier",
        "sender",
        "sent",
        "references",
        "incidents",
        "thread",
        "incident",
        "task",
        "target",
        "cause",
        "playbook",
        "agreement",
        "clause",
        "step",
        "polygon",
        "circle",
        "geocode",
        "eventCode",
        "code",
        "issued",
        "due",
        "at",
        "received",
        "effective",
        "onset",
        "expires",
        "digest",
    }
)
# Mainland mobiles, landlines with area code, 400/800 service numbers, optionally with +86.
PHONE = re.compile(
    r"(?<!\d)(?:\+?86[-\s]?)?"
    r"(?:1[3-9]\d[-\s]?\d{4}[-\s]?\d{4}"  # mobile: 139 0000 0317
    r"|0\d{2,3}[-\s]?\d{3,4}[-\s]?\d{4}"  # landline: 0512-6300 0110, 021-69000120
    r"|[48]00[-\s]?\d{3}[-\s]?\d{4})"  # service: 400-800-1234
    r"(?!\d)"
)


class Anonymiser:
    """Numbered placeholders, the same for the same text throughout one recording."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, kind: str, text: str) -> str:
        found = self._seen.get((kind, text))
        if found is None:
            n = self._counts.get(kind, 0) + 1
            self._counts[kind] = n
            found = f"https://example.invalid/{n}" if kind == "web" else f"[{kind}-{n}]"
            self._seen[(kind, text)] = found
        return found

    def envelope(self, envelope: dict[str, Any]) -> dict[str, Any]:
        out = dict(envelope)
        if isinstance(out.get("data"), dict):
            out["data"] = self._walk(out["data"])
        return out

    def _walk(self, node: Any, key: str | None = None) -> Any:
        if key in KEPT and not isinstance(node, dict):  # "incident" is a thread or a message
            return node
        if isinstance(node, dict):
            return {k: self._walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [self._walk(v, key) for v in node]
        if isinstance(node, str):
            if key in FREE_TEXT:
                return self.placeholder(key, node)
            return PHONE.sub(lambda m: self.placeholder("phone", m.group(0)), node)
        return node


def anonymise(records: Iterable[Record]) -> list[Record]:
    """The recording with free text and phone numbers replaced; deterministic (the same
    recording always gives the same result); ids, codes, times and geometry kept as they are."""
    anonymiser = Anonymiser()
    return [replace(r, envelope=anonymiser.envelope(r.envelope)) for r in records]
