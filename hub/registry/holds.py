"""Holds: stock set aside for a request, for a limited time unless committed.

A hold is a row with a state (``held`` awaiting the owner's approval, ``committed``,
``dispatched``, ``expired``, ``released``, ``returned``); every move of a hold is a
compare-and-set on its state plus a ledger entry, in one transaction. ``expire_due`` returns
the stock of holds whose time ran out (timers are rows: a deadline that passed while no hub ran
is found at the next call).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from hub.errors import ConcurrentUpdate, Conflict, InvalidInput, NotFound
from hub.registry.ledger import Entry, EntryKind, Recorded, record
from hub.store.sql import Connection

_DAY_MS = 86_400_000
_UTC8_MS = 8 * 3_600_000


class HoldState(StrEnum):
    HELD = "held"
    COMMITTED = "committed"
    DISPATCHED = "dispatched"
    EXPIRED = "expired"
    RELEASED = "released"
    RETURNED = "returned"


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    depot: str
    item: str
    quantity: int
    owner: str
    partner: str
    request: str
    agreement: str | None
    clause: str | None
    state: HoldState
    day: str
    created_ms: int
    expires_ms: int | None
    actor: str

    def entry(self, kind: EntryKind, actor: str, at_ms: int, reason: str | None = None) -> Entry:
        """A ledger entry about this hold, carrying its request, partner and clause."""
        return Entry(
            self.depot,
            self.item,
            kind,
            self.quantity,
            actor,
            at_ms,
            reason=reason,
            hold_id=self.id,
            request=self.request,
            partner=self.partner,
            agreement=self.agreement,
            clause=self.clause,
        )


def local_day(at_ms: int) -> str:
    """The calendar day in China Standard Time (UTC+8): what per-day caps count by."""
    days = (at_ms + _UTC8_MS) // _DAY_MS
    return (dt.date(1970, 1, 1) + dt.timedelta(days=days)).isoformat()


COLUMNS = (
    "id, depot, item, quantity, owner, partner, request, agreement, clause, state, day, "
    "created_ms, expires_ms, actor"
)


def hold_from_row(row: tuple[object, ...]) -> Hold:
    """A ``Hold`` from the hold columns of a row."""
    values = list(row)
    values[9] = HoldState(str(values[9]))
    return Hold(*values)  # type: ignore[arg-type]


def get_hold(conn: Connection, hold_id: str) -> Hold | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM holds WHERE id = ?", (hold_id,)).fetchone()
    return None if row is None else hold_from_row(tuple(row))


def holds_of_request(conn: Connection, request: str) -> list[Hold]:
    """The holds taken for one request, by depot."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM holds WHERE request = ? ORDER BY depot, id", (request,)
    ).fetchall()
    return [hold_from_row(tuple(r)) for r in rows]


def hold_row(h: Hold) -> tuple[object, ...]:
    """The values of the hold columns for ``h``."""
    return (
        h.id, h.depot, h.item, h.quantity, h.owner, h.partner, h.request, h.agreement, h.clause,
        h.state.value, h.day, h.created_ms, h.expires_ms, h.actor,
    )  # fmt: skip


INSERT_HOLD = f"INSERT INTO holds ({COLUMNS}) VALUES ({', '.join('?' * 14)})"


def insert_hold(conn: Connection, hold: Hold) -> None:
    conn.execute(INSERT_HOLD, hold_row(hold))


def _move(conn: Connection, hold: Hold, to: HoldState, expires_ms: int | None) -> None:
    cur = conn.execute(
        "UPDATE holds SET state = ?, expires_ms = ? WHERE id = ? AND state = ?",
        (to.value, expires_ms, hold.id, hold.state.value),
    )
    if cur.rowcount != 1:
        raise ConcurrentUpdate(f"hold {hold.id} changed while it was being moved")


def _require(conn: Connection, hold_id: str, *states: HoldState) -> Hold:
    hold = get_hold(conn, hold_id)
    if hold is None:
        raise NotFound(f"no hold '{hold_id}'")
    if hold.state not in states:
        allowed = " or ".join(s.value for s in states)
        raise Conflict(f"hold {hold_id} is {hold.state.value}, not {allowed}")
    return hold


def taken_today(conn: Connection, owner: str, partner: str, item: str, day: str) -> int:
    row = conn.execute(
        "SELECT quantity FROM daily_shared "
        "WHERE owner = ? AND partner = ? AND item = ? AND day = ?",
        (owner, partner, item, day),
    ).fetchone()
    return 0 if row is None else int(row[0])


def reserve_day(conn: Connection, hold: Hold, cap: int) -> bool:
    """Count ``hold`` against its partner's daily total, guarded by ``cap``; False if over.
    One upsert: the day's first hold inserts the row, later ones add to it under the guard."""
    if hold.quantity > cap:
        return False
    cur = conn.execute(
        "INSERT INTO daily_shared (owner, partner, item, day, quantity) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (owner, partner, item, day) DO UPDATE "
        "SET quantity = daily_shared.quantity + excluded.quantity "
        "WHERE daily_shared.quantity + excluded.quantity <= ?",
        (hold.owner, hold.partner, hold.item, hold.day, hold.quantity, cap),
    )
    return cur.rowcount == 1


def _unreserve_day(conn: Connection, hold: Hold) -> None:
    conn.execute(
        "UPDATE daily_shared SET quantity = quantity - ? WHERE owner = ? AND partner = ? "
        "AND item = ? AND day = ?",
        (hold.quantity, hold.owner, hold.partner, hold.item, hold.day),
    )


def commit_hold(conn: Connection, hold_id: str, actor: str, at_ms: int) -> Recorded:
    """The owner approves a hold: it no longer expires and the stock stays held until sent."""
    hold = _require(conn, hold_id, HoldState.HELD)
    _move(conn, hold, HoldState.COMMITTED, None)
    return record(conn, hold.entry(EntryKind.COMMIT, actor, at_ms))


def release_hold(conn: Connection, hold_id: str, actor: str, at_ms: int, reason: str) -> Recorded:
    """Give a held or committed hold's stock back (refused by the owner, or no longer needed)."""
    hold = _require(conn, hold_id, HoldState.HELD, HoldState.COMMITTED)
    _move(conn, hold, HoldState.RELEASED, None)
    _unreserve_day(conn, hold)
    return record(conn, hold.entry(EntryKind.HOLD_RELEASED, actor, at_ms, reason))


def dispatch_hold(conn: Connection, hold_id: str, actor: str, at_ms: int) -> Recorded:
    """A committed hold leaves the depot: on hand and held both drop by its quantity."""
    hold = _require(conn, hold_id, HoldState.COMMITTED)
    _move(conn, hold, HoldState.DISPATCHED, None)
    return record(conn, hold.entry(EntryKind.DISPATCH, actor, at_ms))


def shrink_hold(
    conn: Connection, hold_id: str, quantity: int, actor: str, at_ms: int, reason: str
) -> Recorded | None:
    """Keep only ``quantity`` of a held or committed hold (an answer or a commitment for less
    than was asked); the rest goes back to the depot and to the partner's daily total."""
    hold = _require(conn, hold_id, HoldState.HELD, HoldState.COMMITTED)
    if quantity == hold.quantity:
        return None
    if not 0 < quantity < hold.quantity:
        raise InvalidInput(f"hold {hold_id} holds {hold.quantity}; cannot keep {quantity}")
    cur = conn.execute(
        "UPDATE holds SET quantity = ? WHERE id = ? AND quantity = ? AND state = ?",
        (quantity, hold.id, hold.quantity, hold.state.value),
    )
    if cur.rowcount != 1:
        raise ConcurrentUpdate(f"hold {hold.id} changed while it was being reduced")
    rest = dataclasses.replace(hold, quantity=hold.quantity - quantity)
    _unreserve_day(conn, rest)
    return record(conn, rest.entry(EntryKind.HOLD_RELEASED, actor, at_ms, reason))


def return_hold(conn: Connection, hold_id: str, quantity: int, actor: str, at_ms: int) -> Recorded:
    """What a dispatched hold took comes back to its depot (``quantity`` of it: the rest was
    used up where it went)."""
    hold = _require(conn, hold_id, HoldState.DISPATCHED)
    if not 0 < quantity <= hold.quantity:
        raise InvalidInput(f"hold {hold_id} sent {hold.quantity}; {quantity} cannot come back")
    _move(conn, hold, HoldState.RETURNED, None)
    back = dataclasses.replace(hold, quantity=quantity)
    return record(conn, back.entry(EntryKind.RETURN, actor, at_ms, "returned by the partner"))


def expire_due(conn: Connection, now_ms: int, limit: int = 500) -> list[Recorded]:
    """Expire holds still awaiting approval whose time is up, returning their stock."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM holds WHERE state = ? AND expires_ms <= ? "
        "ORDER BY expires_ms, id LIMIT ?",
        (HoldState.HELD.value, now_ms, limit),
    ).fetchall()
    done: list[Recorded] = []
    for row in rows:
        hold = hold_from_row(tuple(row))
        cur = conn.execute(
            "UPDATE holds SET state = ? WHERE id = ? AND state = ?",
            (HoldState.EXPIRED.value, hold.id, HoldState.HELD.value),
        )
        if cur.rowcount != 1:  # another hub expired, committed or released it first
            continue
        _unreserve_day(conn, hold)
        done.append(record(conn, hold.entry(EntryKind.HOLD_EXPIRED, "hub", now_ms, "hold expired")))
    return done
