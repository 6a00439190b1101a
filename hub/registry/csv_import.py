"""Loading depots and stock counts from CSV, every bad row reported with its file and line.

Depots: ``id,jurisdiction,name_zh,name_en,lat,lon,address,demo``; stock:
``depot,item,on_hand,floor`` and an optional ``minimum`` (the level under which free stock raises
``stock.low``). All rows are checked before anything is written; a file with any
bad row writes nothing. A stock count enters the ledger as what changed: a receipt for a depot's
first count of an item, an adjustment (reason: the file) for a recount.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import InvalidInput
from hub.region import Region
from hub.registry import ledger
from hub.registry.catalogue import SUPPLIES
from hub.registry.depots import Depot, save_depot
from hub.registry.ledger import Entry, EntryKind
from hub.store.sql import Connection

DEPOT_COLUMNS = ("id", "jurisdiction", "name_zh", "name_en", "lat", "lon", "address", "demo")
STOCK_COLUMNS = ("depot", "item", "on_hand", "floor")


class ImportFailed(InvalidInput):
    """One or more rows could not be read; ``problems`` holds one ``file:line: what`` each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class StockCount:
    depot: str
    item: str
    on_hand: int
    floor: int
    where: str
    minimum: int | None = None


@dataclass(slots=True)
class Parsed:
    depots: list[Depot] = field(default_factory=list)
    stock: list[StockCount] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _rows(
    path: Path, columns: tuple[str, ...], parsed: Parsed
) -> Iterator[tuple[str, dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.DictReader(row for row in stream if not row.startswith("#"))
        if missing := [c for c in columns if c not in (reader.fieldnames or [])]:
            parsed.problems.append(f"{path.name}: missing columns {', '.join(missing)}")
            return
        for n, row in enumerate(reader, start=1):
            yield f"{path.name}: row {n} ({row.get(columns[0]) or '?'})", row


def _int(text: str | None, name: str) -> int:
    try:
        value = int((text or "").strip() or "0")
    except ValueError:
        raise ValueError(f"{name} '{text}' is not a whole number") from None
    if value < 0:
        raise ValueError(f"{name} {value} is negative")
    return value


def _depot(row: dict[str, str], region: Region) -> Depot:
    code = (row.get("jurisdiction") or "").strip()
    if not region.is_known(code):
        raise ValueError(f"jurisdiction '{code}' is not a jurisdiction of the region")
    try:
        lat, lon = float(row["lat"]), float(row["lon"])
    except (TypeError, ValueError):
        raise ValueError(
            f"lat/lon '{row.get('lat')}', '{row.get('lon')}' are not numbers"
        ) from None
    found = region.containing(lat, lon)
    if found is None or code not in (found.code, found.parent):
        there = "outside the region" if found is None else f"in {found.name_en} ({found.code})"
        raise ValueError(f"{lat}, {lon} lies {there}, not in {code}")
    if not (row.get("id") or "").strip() or not row.get("name_zh") or not row.get("name_en"):
        raise ValueError("id, name_zh and name_en are required")
    return Depot(
        row["id"].strip(), code, row["name_zh"].strip(), row["name_en"].strip(), lat, lon,
        (row.get("address") or "").strip() or None,
        (row.get("demo") or "").strip().lower() in {"1", "true", "yes", "demo"},
    )  # fmt: skip


def parse(depots_csv: Path, stock_csv: Path, region: Region, known: set[str]) -> Parsed:
    """Read both files; ``known`` are depot ids already registered."""
    parsed = Parsed()
    for where, row in _rows(depots_csv, DEPOT_COLUMNS, parsed):
        try:
            parsed.depots.append(_depot(row, region))
        except ValueError as exc:
            parsed.problems.append(f"{where}: {exc}")
    ids = known | {d.id for d in parsed.depots}
    for where, row in _rows(stock_csv, STOCK_COLUMNS, parsed):
        try:
            depot, item = (row.get("depot") or "").strip(), (row.get("item") or "").strip()
            if depot not in ids:
                raise ValueError(f"depot '{depot}' is in neither the depots file nor the registry")
            if item not in SUPPLIES:
                raise ValueError(f"item '{item}' is not in the catalogue")
            count = StockCount(
                depot,
                item,
                _int(row.get("on_hand"), "on_hand"),
                _int(row.get("floor"), "floor"),
                where,
                None if not (row.get("minimum") or "").strip() else _int(row["minimum"], "minimum"),
            )
            parsed.stock.append(count)
        except ValueError as exc:
            parsed.problems.append(f"{where}: {exc}")
    return parsed


def load(conn: Connection, parsed: Parsed, source: str, actor: str, at_ms: int) -> int:
    """Write what ``parse`` read (refusing if it found problems); returns entries appended."""
    if parsed.problems:
        raise ImportFailed(parsed.problems)
    for depot in parsed.depots:
        save_depot(conn, depot)
    appended = 0
    for count in parsed.stock:
        ledger.set_floor(conn, count.depot, count.item, count.floor)
        if count.minimum is not None:
            ledger.set_minimum(conn, count.depot, count.item, count.minimum)
        have = ledger.get_balance(conn, count.depot, count.item).on_hand
        if count.on_hand == have:
            continue
        kind = EntryKind.RECEIPT if have == 0 else EntryKind.ADJUSTMENT
        entry = Entry(
            count.depot, count.item, kind, count.on_hand - have, actor, at_ms,
            reason=f"stock count imported from {source}",
        )  # fmt: skip
        ledger.record(conn, entry)
        appended += 1
    return appended


def import_files(
    conn: Connection, depots_csv: Path, stock_csv: Path, region: Region, actor: str, at_ms: int
) -> int:
    """Check both files, then load them in the caller's transaction; raises ``ImportFailed``."""
    known = {r[0] for r in conn.execute("SELECT id FROM depots").fetchall()}
    parsed = parse(depots_csv, stock_csv, region, known)
    return load(conn, parsed, stock_csv.name, actor, at_ms)
