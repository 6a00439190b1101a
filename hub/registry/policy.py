"""What a depot may lend a partner under an agreement, decided from the agreement's terms.

Pure: the balance, the partner's total for the day and the terms in; a grant (commit at once or
wait for the owner's approval) or a refusal that says why, naming the clause, out.

- Floor: the larger of the depot's own floor for the item and the agreement's safety floor
  (``keep_fraction`` of what is on hand, rounded up).
- Lendable: on hand − floor (the base the agreement's fractions apply to).
- Shareable: on hand − held − floor.
- Per-request cap: ``per_request_cap`` × lendable; per-day cap per partner: ``per_day_cap`` ×
  lendable (see ``terms``).
- Auto-commit: requests up to ``auto_commit_threshold`` × lendable commit at once; larger ones
  are held until the owner approves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hub.model.region import Agreement, Clause
from hub.registry.catalogue import Supply
from hub.registry.ledger import Balance


@dataclass(frozen=True, slots=True)
class Terms:
    """Sharing terms as fractions of lendable stock, with the clause they come from."""

    agreement: str
    clause: Clause
    floor_fraction: float
    auto_commit: float
    per_request: float
    per_day: float


def terms(agreement: Agreement, clause: Clause) -> Terms:
    """The terms of ``agreement``'s ``sharing`` block under one of its resources clauses."""
    sharing = agreement.sharing
    if sharing is None or clause.kind != "resources":
        raise ValueError(f"{agreement.id} clause {clause.id} is not a resources clause")
    return Terms(
        agreement=agreement.id,
        clause=clause,
        floor_fraction=sharing.safety_floor.fraction,
        auto_commit=sharing.auto_commit_threshold,
        per_request=sharing.per_request_cap,
        per_day=sharing.per_day_cap,
    )


@dataclass(frozen=True, slots=True)
class Grant:
    auto_commit: bool
    floor: int
    """The floor the ledger's guard must keep (passed to it as ``min_floor``)."""
    day_cap: int


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    agreement: str | None = None
    clause: str | None = None


@dataclass(frozen=True, slots=True)
class Figures:
    floor: int
    floor_from_agreement: bool
    lendable: int
    shareable: int
    request_cap: int
    day_cap: int
    auto_commit_max: int


def figures(balance: Balance, t: Terms) -> Figures:
    """The amounts ``t`` allows from ``balance``, in units of the item."""
    agreed = math.ceil(t.floor_fraction * balance.on_hand - 1e-9)
    floor = max(balance.floor, agreed)
    lendable = max(0, balance.on_hand - floor)
    return Figures(
        floor=floor,
        floor_from_agreement=agreed > balance.floor,
        lendable=lendable,
        shareable=max(0, balance.on_hand - balance.held - floor),
        request_cap=math.floor(t.per_request * lendable + 1e-9),
        day_cap=math.floor(t.per_day * lendable + 1e-9),
        auto_commit_max=math.floor(t.auto_commit * lendable + 1e-9),
    )


def decide(
    *,
    balance: Balance,
    supply: Supply,
    quantity: int,
    owner_name: str,
    partner_name: str,
    taken_today: int,
    t: Terms,
) -> Grant | Refusal:
    """Grant or refuse ``quantity`` of ``supply`` from ``balance`` to a partner under ``t``."""
    if quantity <= 0:
        return Refusal(f"a request needs a positive quantity, not {quantity}")
    f = figures(balance, t)
    under = f"under clause {t.clause.id} of {t.agreement}"
    if quantity > f.shareable:
        whose = "" if f.floor_from_agreement else " (the depot's own floor)"
        return Refusal(
            f"{owner_name} keeps a floor of {supply.amount(f.floor)}{whose} {under}; "
            f"{f.shareable:,} shareable, {quantity:,} asked",
            t.agreement,
            t.clause.id,
        )
    if quantity > f.request_cap:
        return Refusal(
            f"clause {t.clause.id} of {t.agreement} caps a single request at "
            f"{supply.amount(f.request_cap)} ({t.per_request:.0%} of {f.lendable:,} lendable); "
            f"{quantity:,} asked",
            t.agreement,
            t.clause.id,
        )
    if taken_today + quantity > f.day_cap:
        left = max(0, f.day_cap - taken_today)
        return Refusal(
            f"{partner_name} may take at most {supply.amount(f.day_cap)} a day from "
            f"{owner_name} {under}; {taken_today:,} taken today, {left:,} left, "
            f"{quantity:,} asked",
            t.agreement,
            t.clause.id,
        )
    return Grant(auto_commit=quantity <= f.auto_commit_max, floor=f.floor, day_cap=f.day_cap)
