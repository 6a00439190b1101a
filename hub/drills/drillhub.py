"""A drill's own hub: the hub's services on the drill's own data directory, guarded.

The drill never touches the live database: it runs on a fresh SQLite file in its own data
directory (embedded mode), seeded with a copy of the live registry's depots and what each can
lend (on hand less held, with its floor), or with the demonstration registry. Its emitter's
guard is ``DrillIsolation`` (only exercise events, only on exercise topics, each stamped with
the drill id) and its registry is marked as the drill's copy, so a live request cannot reserve
on it and its stock events travel as exercise.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from hub.bus.embedded import EmbeddedBus
from hub.clock import Clock
from hub.drills import report
from hub.drills.isolation import DrillIsolation
from hub.errors import InvalidInput
from hub.registry import csv_import, ledger
from hub.registry.depots import Depot, list_depots, save_depot
from hub.runtime import Hub
from hub.settings import Settings
from hub.store.db import Tx

_DEMO = Path(__file__).resolve().parent.parent / "registry" / "data"
_READ_AFTER = (
    'SELECT "offset", topic, key, ts_ms, value FROM log WHERE "offset" > ? '
    'ORDER BY "offset" LIMIT ?'
)


@dataclass(frozen=True, slots=True)
class LogRecord:
    offset: int
    topic: str
    key: str | None
    ts_ms: int
    value: bytes


def drill_settings(data: Path, playbooks: Path) -> Settings:
    """Embedded, planning in-process, no fsync: the drill's database is disposable."""
    return Settings(
        data=data, playbooks=playbooks, sqlite_synchronous="OFF", engine_workers=0, bus="embedded"
    )


class DrillHub:
    """The hub's services on the drill's data directory; ``open``/``close`` around a run."""

    def __init__(self, drill: str, data: Path, playbooks: Path, clock: Clock) -> None:
        data.mkdir(parents=True, exist_ok=True)
        if (data / "liandong.db").exists():
            raise InvalidInput(f"{data} already holds a database; a drill starts on a fresh one")
        self.drill = drill
        self.hub = Hub(drill_settings(data, playbooks), clock=clock)
        emitter = self.hub.backends.emitter
        if not isinstance(emitter, EmbeddedBus):  # drill_settings is always embedded
            raise InvalidInput("a drill runs on the embedded bus")
        emitter.isolation = DrillIsolation(drill)
        self.hub.registry.drill = drill
        self.engine = next(e for e in self.hub.engines if e.lane.value == "exercise")

    async def open(self) -> None:
        await self.hub.db.start()

    async def close(self) -> None:
        await self.hub.db.stop()
        self.hub.planner.close()

    async def read_after(self, offset: int, limit: int = 100_000) -> list[LogRecord]:
        def fetch(tx: Tx) -> list[LogRecord]:
            rows = tx.conn.execute(_READ_AFTER, (offset, limit)).fetchall()
            return [LogRecord(int(o), t, k, int(ts), bytes(v)) for o, t, k, ts, v in rows]

        found: list[LogRecord] = await self.hub.db.run(fetch)
        return found

    async def seed_registry(self, source: Path | None, demo: bool, at_ms: int) -> int:
        """Copy depots and lendable stock from the live database ``source`` (read only), or
        load the demonstration registry; returns the number of stock lines."""
        if source is not None:
            depots, balances = read_registry(source)
        elif demo:
            depots, balances = [], []
        else:
            return 0

        def job(tx: Tx) -> int:
            if demo and source is None:
                region = self.hub.region
                parsed = csv_import.parse(
                    _DEMO / "demo-depots.csv", _DEMO / "demo-stock.csv", region, set()
                )
                csv_import.load(tx.conn, parsed, "demo registry", "drill", at_ms)
                return len(parsed.stock)
            return copy_registry(tx, depots, balances, at_ms)

        lines: int = await self.hub.db.run(job)
        return lines

    async def report(self) -> dict[str, Any]:
        found: dict[str, Any] = await self.hub.db.run(lambda tx: report_of(tx.conn, self.drill))
        return found

    async def digest(self) -> tuple[int, str]:
        """How many records the drill's log holds, and the SHA-256 over them in order."""
        records = await self.read_after(0, 10_000_000)
        return len(records), log_digest(records)


def report_of(conn: Any, drill: str | None) -> dict[str, Any]:
    """The after-action report of the drill whose database ``conn`` is open on."""
    rows = conn.execute('SELECT value FROM log ORDER BY "offset"').fetchall()
    stock = [
        {"depot": b.depot, "item": b.item, "on_hand": b.on_hand, "held": b.held}
        for b in ledger.balances(conn)
    ]
    return report.build((orjson.loads(bytes(r[0])) for r in rows), stock, drill=drill)


def report_from_dir(data: Path) -> dict[str, Any]:
    """The report of a finished drill's data directory (its database opened read-only)."""
    db_path = data / "liandong.db"
    if not db_path.exists():
        raise InvalidInput(f"no drill database at {db_path}")
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT value FROM log WHERE topic LIKE 'exercise.%' ORDER BY \"offset\" LIMIT 1"
        ).fetchone()
        drill = orjson.loads(bytes(row[0])).get("drill") if row else None
        return report_of(conn, drill)
    finally:
        conn.close()


def log_digest(records: Sequence[LogRecord]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.offset}\t{r.topic}\t{r.key}\t{r.ts_ms}\t".encode())
        h.update(r.value)
        h.update(b"\n")
    return h.hexdigest()


def read_registry(db_path: Path) -> tuple[list[Depot], list[ledger.Balance]]:
    """Depots and balances of a live hub's database, opened read-only."""
    if not db_path.exists():
        raise InvalidInput(f"no hub database at {db_path} to copy the registry from")
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return list_depots(conn), ledger.balances(conn)
    finally:
        conn.close()


def copy_registry(
    tx: Tx, depots: Sequence[Depot], balances: Sequence[ledger.Balance], at_ms: int
) -> int:
    for depot in depots:
        save_depot(tx.conn, depot)
    lines = 0
    for b in balances:
        ledger.set_floor(tx.conn, b.depot, b.item, b.floor)
        lendable = b.on_hand - b.held
        if lendable > 0:
            entry = ledger.Entry(
                b.depot, b.item, ledger.EntryKind.RECEIPT, lendable, "drill", at_ms,
                reason="copied from the live registry for a drill",
            )  # fmt: skip
            ledger.record(tx.conn, entry)
            lines += 1
    return lines


def summary_of(records: Sequence[LogRecord]) -> dict[str, Any]:
    """Counts of records per topic (for status lines)."""
    out: dict[str, int] = {}
    for r in records:
        out[r.topic] = out.get(r.topic, 0) + 1
    return dict(sorted(out.items()))
