"""Many stock requests in one transaction: read once, decide in order, write set by set.

A hold used to cost nine statements, each a round trip: on PostgreSQL that capped a hub at a
few hundred holds a second however many arrived at once. ``Registry.request`` now gathers the
requests that arrive while a batch is being written and decides them together:

1. **read** what every request of the batch needs, one statement per kind, the four sent
   together: the holds already taken under their ids (a retried request gets its first
   answer), their depots, the balances (on hand, held, floor, minimum) and the partners' totals
   for the day;
2. **decide** each request in arrival order with the policy (``policy.decide``), against this
   snapshot plus what the requests before it in the batch took (``Snapshot.take``);
3. **write**: each touched balance and daily total once, as a compare-and-set on the values
   read (``held = <read>``, ``quantity = <read>``), the ledger entries in one multi-row INSERT
   and the hold rows in one ``executemany``, all sent together; then the events, which carry
   the ledger ids, in one more ``executemany`` (``Registry._requests_in``).

On PostgreSQL "sent together" is one psycopg pipeline (``hub/store/sql.pipeline``): one round
trip for the reads and one for the writes; on SQLite the statements simply run in turn.

The compare-and-set is the guard: on SQLite the single writer means nothing moves between the
read and the write; on PostgreSQL another transaction may have, the UPDATE then finds its row
changed (it waits for the row lock and re-checks against the newest version), changes nothing,
and the whole batch is retried by ``db.run`` (``ConcurrentUpdate``), reading afresh. The
balance UPDATE also keeps the database's own check that the depot's floor is not crossed, so a
mistake in the policy could refuse a batch but never oversell.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from hub.errors import ConcurrentUpdate
from hub.registry.depots import COLUMNS as DEPOT_COLUMNS
from hub.registry.depots import Depot, depot_from_row
from hub.registry.holds import COLUMNS as HOLD_COLUMNS
from hub.registry.holds import INSERT_HOLD, Hold, hold_from_row, hold_row
from hub.registry.ledger import LEDGER_COLUMNS, Balance, Entry, entry_row
from hub.store.sql import UNPREPARED, Connection, Cursor, insert_values, marks, pipeline


@dataclass(slots=True)
class _Stock:
    on_hand: int
    held: int
    floor: int
    minimum: int
    read_held: int  # what the compare-and-set expects to find


@dataclass(slots=True)
class _Day:
    quantity: int
    read: int
    exists: bool


@dataclass
class Snapshot:
    """The balances and daily totals a batch reads, and what its holds take from them."""

    day: str
    _stock: dict[tuple[str, str], _Stock] = field(default_factory=dict)
    _days: dict[tuple[str, str, str], _Day] = field(default_factory=dict)
    _entries: list[Entry] = field(default_factory=list)
    _holds: list[Hold] = field(default_factory=list)

    @classmethod
    def read(
        cls,
        conn: Connection,
        day: str,
        hold_ids: Collection[str],
        depot_ids: Collection[str],
        items: Collection[str],
        partners: Collection[str],
    ) -> tuple[dict[str, Hold], dict[str, Depot], Snapshot]:
        """The holds that exist among ``hold_ids``, the depots among ``depot_ids``, and a
        snapshot of those depots' balances of ``items`` and of ``partners``' totals for ``day``
        (absent rows read as zero): four statements, sent together."""
        snap = cls(day)
        if not hold_ids:
            return {}, {}, snap
        depots, items_, partners_ = sorted(depot_ids), sorted(items), sorted(partners)
        with pipeline(conn):
            held = conn.execute(
                f"{UNPREPARED}SELECT {HOLD_COLUMNS} FROM holds "
                f"WHERE id IN ({marks(len(hold_ids))})",
                tuple(hold_ids),
            )
            places = conn.execute(
                f"{UNPREPARED}SELECT {DEPOT_COLUMNS} FROM depots "
                f"WHERE id IN ({marks(len(depots))})",
                depots,
            )
            stock = conn.execute(
                f"{UNPREPARED}SELECT depot, item, on_hand, held, floor, minimum FROM balances "
                f"WHERE depot IN ({marks(len(depots))}) AND item IN ({marks(len(items_))})",
                (*depots, *items_),
            )
            days = conn.execute(
                f"{UNPREPARED}SELECT owner, partner, item, quantity FROM daily_shared "
                f"WHERE day = ? AND partner IN ({marks(len(partners_))})",
                (day, *partners_),
            )
        existing = {h.id: h for h in (hold_from_row(tuple(r)) for r in held.fetchall())}
        found = {d.id: d for d in (depot_from_row(tuple(r)) for r in places.fetchall())}
        for depot, item, on_hand, held_, floor, minimum in stock.fetchall():
            snap._stock[(str(depot), str(item))] = _Stock(
                int(on_hand), int(held_), int(floor), int(minimum), int(held_)
            )
        for owner, partner, item, quantity in days.fetchall():
            key = (str(owner), str(partner), str(item))
            snap._days[key] = _Day(int(quantity), int(quantity), True)
        return existing, found, snap

    def balance(self, depot: str, item: str) -> Balance:
        """The balance as the batch sees it now (its earlier holds included)."""
        s = self._stock.get((depot, item))
        return (
            Balance(depot, item) if s is None else Balance(depot, item, s.on_hand, s.held, s.floor)
        )

    def taken_today(self, owner: str, partner: str, item: str) -> int:
        d = self._days.get((owner, partner, item))
        return 0 if d is None else d.quantity

    def take(self, hold: Hold, entries: Sequence[Entry]) -> tuple[int, int]:
        """Add ``hold`` (with its ledger ``entries``) to what the batch writes; returns the
        stock's free quantity (on hand − held) after it, and its minimum level."""
        s = self._stock[(hold.depot, hold.item)]  # decide() grants nothing from an absent row
        s.held += hold.quantity
        key = (hold.owner, hold.partner, hold.item)
        d = self._days.get(key)
        if d is None:
            d = self._days[key] = _Day(0, 0, False)
        d.quantity += hold.quantity
        self._holds.append(hold)
        self._entries.extend(entries)
        return s.on_hand - s.held, s.minimum

    def write(self, conn: Connection) -> dict[tuple[str | None, str], int]:
        """Write what the batch took, in one round trip; the ledger ids by (hold id, entry
        kind). Raises ``ConcurrentUpdate`` (the transaction then rolls back) if anything read
        has moved."""
        if not self._holds:
            return {}
        moved = [
            (
                s.held - s.read_held,
                depot,
                item,
                s.on_hand,
                s.read_held,
                s.floor,
                s.held - s.read_held,
            )
            for (depot, item), s in sorted(self._stock.items())
            if s.held != s.read_held
        ]
        changed = sorted((k, d) for k, d in self._days.items() if d.quantity != d.read)
        updates = [(d.quantity - d.read, *k, self.day, d.read) for k, d in changed if d.exists]
        inserts = [(*k, self.day, d.quantity) for k, d in changed if not d.exists]
        checks: list[tuple[Cursor, int, str]] = []
        with pipeline(conn):
            cur = conn.executemany(
                "UPDATE balances SET held = held + ? WHERE depot = ? AND item = ? "
                "AND on_hand = ? AND held = ? AND floor = ? AND on_hand - held - floor >= ?",
                moved,
            )
            checks.append((cur, len(moved), "stock moved"))
            if updates:
                cur = conn.executemany(
                    "UPDATE daily_shared SET quantity = quantity + ? WHERE owner = ? "
                    "AND partner = ? AND item = ? AND day = ? AND quantity = ?",
                    updates,
                )
                checks.append((cur, len(updates), "a partner's daily total moved"))
            if inserts:
                cur = conn.executemany(
                    "INSERT INTO daily_shared (owner, partner, item, day, quantity) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, partner, item, day) DO NOTHING",
                    inserts,
                )
                checks.append((cur, len(inserts), "a partner's daily total appeared"))
            ledger = insert_values(
                conn,
                f"INSERT INTO stock_ledger ({LEDGER_COLUMNS})",
                [entry_row(e) for e in self._entries],
                " RETURNING id, hold_id, kind",
            )
            conn.executemany(INSERT_HOLD, [hold_row(h) for h in self._holds])
        ids: dict[tuple[str | None, str], int] = {}
        for cur in ledger:  # read first: on SQLite an unread RETURNING keeps its statement open
            for entry_id, hold_id, kind in cur.fetchall():
                ids[(hold_id, str(kind))] = int(entry_id)
        for cur, expected, what in checks:
            if cur.rowcount != expected:
                raise ConcurrentUpdate(f"{what} while a batch of holds was decided; retrying")
        return ids
