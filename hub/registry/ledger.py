"""Stock as an append-only ledger; balances derived from it.

Every change of stock is an entry (receipt, hold, hold expiry, release, commit, dispatch,
arrival, return, consumption, adjustment) with its deltas to what is on hand and what is held,
and who made it, when and why (the request, the agreement and clause). ``balances`` is the
ledger summed: it is updated in the same transaction as the entry is appended, by an UPDATE
whose WHERE clause is the guard (a hold needs ``on_hand - held - floor >= quantity``), so the
row count says whether the stock was there. On SQLite the single writer serialises the guard;
on PostgreSQL the UPDATE takes the row lock and re-checks the guard against the newest row
version, so two holds can never both take the last units on either database. ``rebuild``
recomputes the balances from the ledger alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.errors import Conflict, InvalidInput
from hub.store.sql import Connection


class EntryKind(StrEnum):
    RECEIPT = "receipt"
    HOLD = "hold"
    HOLD_EXPIRED = "hold_expired"
    HOLD_RELEASED = "hold_released"
    COMMIT = "commit"
    DISPATCH = "dispatch"
    ARRIVAL = "arrival"
    RETURN = "return"
    CONSUMPTION = "consumption"
    ADJUSTMENT = "adjustment"


# (on hand, held) per unit of quantity; an adjustment's sign is its quantity's.
_DELTAS: dict[EntryKind, tuple[int, int]] = {
    EntryKind.RECEIPT: (1, 0),
    EntryKind.HOLD: (0, 1),
    EntryKind.HOLD_EXPIRED: (0, -1),
    EntryKind.HOLD_RELEASED: (0, -1),
    EntryKind.COMMIT: (0, 0),
    EntryKind.DISPATCH: (-1, -1),
    EntryKind.ARRIVAL: (1, 0),
    EntryKind.RETURN: (1, 0),
    EntryKind.CONSUMPTION: (-1, 0),
    EntryKind.ADJUSTMENT: (1, 0),
}


class Refused(Conflict):
    """The ledger's guard refused an entry: the stock it needs is not there."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One change of stock at a depot. ``quantity`` is positive, except that an adjustment may
    be negative (a count found short); an adjustment must give its reason."""

    depot: str
    item: str
    kind: EntryKind
    quantity: int
    actor: str
    at_ms: int
    reason: str | None = None
    hold_id: str | None = None
    request: str | None = None
    partner: str | None = None
    agreement: str | None = None
    clause: str | None = None

    @property
    def deltas(self) -> tuple[int, int]:
        """(change to on hand, change to held)."""
        on_hand, held = _DELTAS[self.kind]
        return on_hand * self.quantity, held * self.quantity


@dataclass(frozen=True, slots=True)
class Recorded:
    """An entry as appended: its position in the ledger."""

    id: int
    entry: Entry
    free: int | None = None
    """On hand − held right after this entry (None when it was not read: the audit trail)."""
    minimum: int = 0
    """The balance's minimum level when the entry was recorded."""


@dataclass(frozen=True, slots=True)
class Balance:
    depot: str
    item: str
    on_hand: int = 0
    held: int = 0
    floor: int = 0

    @property
    def available(self) -> int:
        """What may still be held by the depot's own measure: on hand − held − floor."""
        return max(0, self.on_hand - self.held - self.floor)


LEDGER_COLUMNS = (
    "depot, item, kind, quantity, d_on_hand, d_held, actor, at_ms, reason, hold_id, request, "
    "partner, agreement, clause"
)


def entry_row(e: Entry) -> tuple[object, ...]:
    """The values of ``LEDGER_COLUMNS`` for ``e``."""
    on_hand, held = e.deltas
    return (
        e.depot, e.item, e.kind.value, e.quantity, on_hand, held, e.actor, e.at_ms, e.reason,
        e.hold_id, e.request, e.partner, e.agreement, e.clause,
    )  # fmt: skip


def _check(entry: Entry) -> None:
    if entry.kind is EntryKind.ADJUSTMENT:
        if not entry.reason:
            raise InvalidInput("an adjustment must give its reason")
        if entry.quantity == 0:
            raise InvalidInput("an adjustment of 0 changes nothing")
    elif entry.quantity <= 0:
        raise InvalidInput(f"a {entry.kind.value} needs a positive quantity, not {entry.quantity}")


def try_record(conn: Connection, entry: Entry, *, min_floor: int = 0) -> Recorded | None:
    """Append ``entry`` and apply it to the balance, or return None when the guard refuses.

    A hold is guarded by ``on_hand - held - max(floor, min_floor) >= quantity`` (``min_floor``:
    a floor the sharing agreement adds to the depot's own); every other entry by what is held
    staying within what is on hand.
    """
    _check(entry)
    d_on_hand, d_held = entry.deltas
    if d_on_hand > 0:
        conn.execute(
            "INSERT INTO balances (depot, item) VALUES (?, ?) ON CONFLICT (depot, item) DO NOTHING",
            (entry.depot, entry.item),
        )
    # RETURNING both applies the guard (no row: refused) and reads what the low-stock check
    # needs, in one statement.
    if entry.kind is EntryKind.HOLD:
        after = conn.execute(
            "UPDATE balances SET held = held + ? WHERE depot = ? AND item = ? "
            "AND on_hand - held - (CASE WHEN floor > ? THEN floor ELSE ? END) >= ? "
            "RETURNING on_hand - held, minimum",
            (d_held, entry.depot, entry.item, min_floor, min_floor, entry.quantity),
        ).fetchone()
    else:
        after = conn.execute(
            "UPDATE balances SET on_hand = on_hand + ?, held = held + ? "
            "WHERE depot = ? AND item = ? AND on_hand + ? >= held + ? AND held + ? >= 0 "
            "RETURNING on_hand - held, minimum",
            (d_on_hand, d_held, entry.depot, entry.item, d_on_hand, d_held, d_held),
        ).fetchone()
    if after is None:
        return None
    (entry_id,) = conn.execute(
        f"INSERT INTO stock_ledger ({LEDGER_COLUMNS}) VALUES ({', '.join('?' * 14)}) RETURNING id",
        entry_row(entry),
    ).fetchone()
    return Recorded(int(entry_id), entry, int(after[0]), int(after[1]))


def record(conn: Connection, entry: Entry, *, min_floor: int = 0) -> Recorded:
    """``try_record``, raising ``Refused`` when the stock is not there."""
    recorded = try_record(conn, entry, min_floor=min_floor)
    if recorded is None:
        have = get_balance(conn, entry.depot, entry.item)
        raise Refused(
            f"{entry.kind.value} of {entry.quantity} {entry.item} at {entry.depot} refused: "
            f"on hand {have.on_hand}, held {have.held}, floor {have.floor}"
        )
    return recorded


def set_floor(conn: Connection, depot: str, item: str, floor: int) -> None:
    """The depot's safety floor for ``item``: stock it never lends (policy, not a movement)."""
    if floor < 0:
        raise InvalidInput(f"a floor cannot be negative ({floor})")
    conn.execute(
        "INSERT INTO balances (depot, item, floor) VALUES (?, ?, ?) "
        "ON CONFLICT (depot, item) DO UPDATE SET floor = excluded.floor",
        (depot, item, floor),
    )


def set_minimum(conn: Connection, depot: str, item: str, minimum: int) -> None:
    """The level under which free stock (on hand − held) is announced as ``stock.low``; 0: never."""
    if minimum < 0:
        raise InvalidInput(f"a minimum level cannot be negative ({minimum})")
    conn.execute(
        "INSERT INTO balances (depot, item, minimum) VALUES (?, ?, ?) "
        "ON CONFLICT (depot, item) DO UPDATE SET minimum = excluded.minimum",
        (depot, item, minimum),
    )


_BALANCE = "SELECT depot, item, on_hand, held, floor FROM balances"


def get_balance(conn: Connection, depot: str, item: str) -> Balance:
    """The live balance (zeros when the depot never had the item)."""
    row = conn.execute(f"{_BALANCE} WHERE depot = ? AND item = ?", (depot, item)).fetchone()
    return Balance(depot, item) if row is None else Balance(*row)


def balances(conn: Connection, depot: str | None = None, item: str | None = None) -> list[Balance]:
    """Live balances sorted by depot and item, filtered by either."""
    where, args = [], []
    for column, value in (("depot", depot), ("item", item)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(f"{_BALANCE}{clause} ORDER BY depot, item", args).fetchall()
    return [Balance(*r) for r in rows]


def derive(conn: Connection) -> list[Balance]:
    """The balances as the ledger alone says they are (floors read from the live rows)."""
    rows = conn.execute(
        "SELECT l.depot, l.item, SUM(l.d_on_hand), SUM(l.d_held), COALESCE(MAX(b.floor), 0) "
        "FROM stock_ledger l LEFT JOIN balances b ON b.depot = l.depot AND b.item = l.item "
        "GROUP BY l.depot, l.item ORDER BY l.depot, l.item"
    ).fetchall()
    return [Balance(d, i, int(on), int(held), int(fl)) for d, i, on, held, fl in rows]


def rebuild(conn: Connection) -> list[Balance]:
    """Overwrite the live balances with those derived from the ledger; returns them."""
    derived = derive(conn)
    conn.execute("UPDATE balances SET on_hand = 0, held = 0")
    conn.executemany(
        "INSERT INTO balances (depot, item, on_hand, held) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (depot, item) DO UPDATE SET on_hand = excluded.on_hand, held = excluded.held",
        [(b.depot, b.item, b.on_hand, b.held) for b in derived],
    )
    return derived


def entries(conn: Connection, depot: str, item: str | None = None) -> list[Recorded]:
    """A depot's ledger in order (of one item if given): the audit trail."""
    sql = (
        "SELECT id, depot, item, kind, quantity, actor, at_ms, reason, hold_id, request, partner, "
        "agreement, clause FROM stock_ledger WHERE depot = ?"
    )
    args: list[str] = [depot]
    if item is not None:
        sql += " AND item = ?"
        args.append(item)
    rows = conn.execute(sql + " ORDER BY id", args).fetchall()
    return [
        Recorded(int(r[0]), Entry(r[1], r[2], EntryKind(r[3]), int(r[4]), *r[5:])) for r in rows
    ]
