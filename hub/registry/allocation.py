"""Allocation plans: a request split across partners' depots nearest the incident.

Pure and deterministic: the requester, the item and quantity, a point, the depots with their
balances, what each owner has already lent the requester today and the agreements in; a plan
out. Depots are taken nearest first (ties by depot id); each line is as much as the depot may
lend under the most generous agreement binding both parties (its shareable stock, the
per-request cap and what is left of the per-day cap), and is checked by ``policy.decide``, the
same decision the ``Registry`` takes when the plan is committed. Whatever a depot could not
give is reported with the policy's refusal, which names the clause.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from hub.model.region import Agreement, Clause, clause_sort_key, speaks_for
from hub.registry.catalogue import supply
from hub.registry.depots import Depot
from hub.registry.ledger import Balance
from hub.registry.policy import Grant, Refusal, Terms, decide, figures, terms

_EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class PlanLine:
    """Take ``quantity`` from ``depot`` under ``clause`` of ``agreement``."""

    depot: str
    owner: str
    quantity: int
    distance_km: float
    agreement: str
    clause: str
    auto_commit: bool
    """Under the agreement's auto-commit threshold: committed at once, no approval needed."""


@dataclass(frozen=True, slots=True)
class Limit:
    """Why a depot gave less than was still needed (or nothing)."""

    depot: str | None
    """None when the limit is not one depot's (no partner at all)."""
    reason: str
    agreement: str | None = None
    clause: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    requester: str
    item: str
    quantity: int
    lines: tuple[PlanLine, ...]
    limits: tuple[Limit, ...] = field(default=())

    @property
    def covered(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def uncovered(self) -> int:
        return self.quantity - self.covered


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km (haversine on the mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def sharing_terms(agreements: Sequence[Agreement], owner: str, requester: str) -> list[Terms]:
    """Terms of every resources clause of an agreement binding both, by (agreement, clause)."""
    found: list[tuple[Agreement, Clause]] = [
        (a, c)
        for a in agreements
        if a.sharing is not None and a.binds(owner) and a.binds(requester)
        for c in a.clauses
        if c.kind == "resources"
    ]
    found.sort(key=lambda ac: (ac[0].id, clause_sort_key(ac[1].id)))
    return [terms(a, c) for a, c in found]


def _allowance(balance: Balance, t: Terms, taken_today: int) -> int:
    f = figures(balance, t)
    return max(0, min(f.shareable, f.request_cap, f.day_cap - taken_today))


def plan(
    *,
    requester: str,
    item: str,
    quantity: int,
    lat: float,
    lon: float,
    depots: Sequence[Depot],
    balances: Mapping[str, Balance],
    taken_today: Mapping[str, int],
    agreements: Sequence[Agreement],
    names: Mapping[str, str] | None = None,
) -> Plan:
    """Split ``quantity`` of ``item`` across partners' depots, nearest ``(lat, lon)`` first.

    ``balances`` is keyed by depot id (a missing depot has nothing); ``taken_today`` by owner
    jurisdiction: what that owner has already lent ``requester`` of ``item`` today. Depots the
    requester speaks for are its own, never a partner's.
    """
    if quantity <= 0:
        raise ValueError(f"a plan needs a positive quantity, not {quantity}")
    goods = supply(item)
    named = names or {}
    taken = dict(taken_today)
    lines: list[PlanLine] = []
    limits: list[Limit] = []
    remaining = quantity
    nearest = sorted(
        ((distance_km(lat, lon, d.lat, d.lon), d) for d in depots),
        key=lambda pair: (pair[0], pair[1].id),
    )
    partners = 0
    for km, depot in nearest:
        if remaining == 0:
            break
        owner = depot.jurisdiction
        if speaks_for(requester, owner):
            continue
        options = sharing_terms(agreements, owner, requester)
        if not options:
            continue
        partners += 1
        balance = balances.get(depot.id, Balance(depot.id, item))
        already = taken.get(owner, 0)
        # The most generous clause; ties go to the first in (agreement, clause) order.
        best = max(options, key=lambda t: _allowance(balance, t, already))
        give = min(remaining, _allowance(balance, best, already))
        verdict = partial(
            decide, balance=balance, supply=goods, owner_name=named.get(owner, owner),
            partner_name=named.get(requester, requester), taken_today=already, t=best,
        )  # fmt: skip
        if give < remaining:
            refused = verdict(quantity=remaining)
            if isinstance(refused, Refusal):
                limits.append(Limit(depot.id, refused.reason, refused.agreement, refused.clause))
        if give == 0:
            continue
        granted = verdict(quantity=give)
        if not isinstance(granted, Grant):  # the allowance is what decide grants; guard drift
            raise AssertionError(f"plan line refused by policy: {granted.reason}")
        lines.append(
            PlanLine(
                depot.id, owner, give, round(km, 3), best.agreement, best.clause.id,
                granted.auto_commit,
            )
        )  # fmt: skip
        taken[owner] = already + give
        remaining -= give
    if partners == 0:
        limits.append(
            Limit(None, f"no depot belongs to a partner of {requester} under a resources clause")
        )
    return Plan(requester, item, quantity, tuple(lines), tuple(limits))
