"""Depots: where a jurisdiction keeps its emergency supplies, and where that is."""

from __future__ import annotations

from dataclasses import dataclass

from hub.store.sql import Connection


@dataclass(frozen=True, slots=True)
class Depot:
    """A store of supplies owned by one jurisdiction (GB/T 2260 code); location in WGS-84."""

    id: str
    jurisdiction: str
    name_zh: str
    name_en: str
    lat: float
    lon: float
    address: str | None = None
    demo: bool = False
    """Invented for the demonstration; never operational data."""


COLUMNS = "id, jurisdiction, name_zh, name_en, lat, lon, address, demo"


def save_depot(conn: Connection, depot: Depot) -> None:
    """Insert the depot, or update its description if it is already registered."""
    conn.execute(
        f"INSERT INTO depots ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET jurisdiction = excluded.jurisdiction, "
        "name_zh = excluded.name_zh, name_en = excluded.name_en, lat = excluded.lat, "
        "lon = excluded.lon, address = excluded.address, demo = excluded.demo",
        (
            depot.id,
            depot.jurisdiction,
            depot.name_zh,
            depot.name_en,
            depot.lat,
            depot.lon,
            depot.address,
            int(depot.demo),
        ),
    )


def depot_from_row(row: tuple[object, ...]) -> Depot:
    """A ``Depot`` from the depot columns of a row."""
    id_, jur, zh, en, lat, lon, address, demo = row
    return Depot(
        str(id_),
        str(jur),
        str(zh),
        str(en),
        float(lat),  # type: ignore[arg-type]
        float(lon),  # type: ignore[arg-type]
        None if address is None else str(address),
        bool(demo),
    )


def get_depot(conn: Connection, depot_id: str) -> Depot | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM depots WHERE id = ?", (depot_id,)).fetchone()
    return None if row is None else depot_from_row(tuple(row))


def list_depots(conn: Connection, jurisdiction: str | None = None) -> list[Depot]:
    """Depots sorted by id, of one jurisdiction if given."""
    if jurisdiction is None:
        rows = conn.execute(f"SELECT {COLUMNS} FROM depots ORDER BY id").fetchall()
    else:
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM depots WHERE jurisdiction = ? ORDER BY id", (jurisdiction,)
        ).fetchall()
    return [depot_from_row(tuple(r)) for r in rows]
