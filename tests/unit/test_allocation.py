"""Allocation plans: nearest partner depots first, within floors and caps, clauses named.

The demonstration zone's agreement (Qingpu, Wujiang, Jiashan; resources clause 5; floor 30 %,
per request 50 % of lendable stock, auto-commit 10 %) unless a test says otherwise.
"""

from __future__ import annotations

import random

import pytest

from hub.region import load_region
from hub.registry.allocation import Plan, PlanLine, distance_km, plan
from hub.registry.catalogue import supply
from hub.registry.depots import Depot
from hub.registry.ledger import Balance
from hub.registry.policy import Grant, decide, terms

REGION = load_region()
DEMO = REGION.agreement("yrd-demo-zone-emergency-linkage")
ALLIANCE = REGION.agreement("yrd-seven-city-supplies-alliance-2025")
QINGPU, WUJIANG, JIASHAN, PINGHU = "310118", "320509", "330421", "330482"
INCIDENT = (30.85, 120.90)  # beside the Jiashan depot
D_JIASHAN = Depot("jiashan-1", JIASHAN, "嘉善仓库", "Jiashan depot", 30.84, 120.92)
D_WUJIANG = Depot("wujiang-1", WUJIANG, "吴江仓库", "Wujiang depot", 31.05, 120.65)
D_QINGPU = Depot("qingpu-1", QINGPU, "青浦仓库", "Qingpu depot", 30.86, 120.91)  # own: never
D_PINGHU = Depot("pinghu-1", PINGHU, "平湖仓库", "Pinghu depot", 30.85, 120.91)  # no agreement
DEPOTS = [D_JIASHAN, D_WUJIANG, D_QINGPU, D_PINGHU]


def _stock(on_hand: int, held: int = 0, floor: int = 0, **by_depot: int) -> dict[str, Balance]:
    return {
        d.id: Balance(d.id, "sandbag", by_depot.get(d.id.split("-")[0], on_hand), held, floor)
        for d in DEPOTS
    }


def _plan(quantity: int, balances: dict[str, Balance], **kw: object) -> Plan:
    args: dict[str, object] = {
        "requester": QINGPU, "item": "sandbag", "quantity": quantity, "lat": INCIDENT[0],
        "lon": INCIDENT[1], "depots": DEPOTS, "balances": balances, "taken_today": {},
        "agreements": [DEMO],
    }  # fmt: skip
    args.update(kw)
    return plan(**args)  # type: ignore[arg-type]


def test_nearest_partner_first_then_the_next_within_the_request_cap() -> None:
    p = _plan(500, _stock(1000))
    km_jiashan = distance_km(*INCIDENT, D_JIASHAN.lat, D_JIASHAN.lon)
    assert p.lines == (
        # 1,000 on hand, floor 300 → lendable 700; one request takes at most half: 350.
        PlanLine("jiashan-1", JIASHAN, 350, round(km_jiashan, 3), DEMO.id, "5", False),
        PlanLine(
            "wujiang-1", WUJIANG, 150,
            round(distance_km(*INCIDENT, D_WUJIANG.lat, D_WUJIANG.lon), 3), DEMO.id, "5", False,
        ),
    )  # fmt: skip
    assert (p.covered, p.uncovered) == (500, 0)
    (limit,) = p.limits
    assert limit.depot == "jiashan-1" and (limit.agreement, limit.clause) == (DEMO.id, "5")
    assert "caps a single request at 350" in limit.reason and "clause 5" in limit.reason
    # Qingpu's own depot and Pinghu's (no agreement with Qingpu) are nearer, and never used.
    assert {line.depot for line in p.lines}.isdisjoint({"qingpu-1", "pinghu-1"})


def test_a_small_request_commits_at_once() -> None:
    (line,) = _plan(70, _stock(1000)).lines  # 10 % of 700 lendable
    assert (line.depot, line.quantity, line.auto_commit) == ("jiashan-1", 70, True)


def test_deterministic_whatever_the_order_and_ties_by_depot_id() -> None:
    twin = Depot("jiashan-0", JIASHAN, "嘉善二号", "Jiashan 2", D_JIASHAN.lat, D_JIASHAN.lon)
    depots = [*DEPOTS, twin]
    stock = _stock(1000)
    stock[twin.id] = Balance(twin.id, "sandbag", 1000)
    first = _plan(500, stock, depots=depots)
    for seed in range(5):
        shuffled = list(depots)
        random.Random(seed).shuffle(shuffled)
        assert _plan(500, dict(reversed(stock.items())), depots=shuffled) == first
    # Same distance: jiashan-0 before jiashan-1; the owner's daily total counts across both.
    assert [(line.depot, line.quantity) for line in first.lines] == [
        ("jiashan-0", 350), ("jiashan-1", 150)
    ]  # fmt: skip


def test_floors_and_held_stock_are_never_lent() -> None:
    # Jiashan's own floor of 900 leaves 100 (half of it per request); Wujiang has 400 held of
    # 1,000 with the agreement's floor of 300 → 300 shareable.
    stock = _stock(1000)
    stock["jiashan-1"] = Balance("jiashan-1", "sandbag", 1000, 0, 900)
    stock["wujiang-1"] = Balance("wujiang-1", "sandbag", 1000, 400, 0)
    p = _plan(1000, stock)
    assert [(line.depot, line.quantity) for line in p.lines] == [
        ("jiashan-1", 50), ("wujiang-1", 300)
    ]  # fmt: skip
    assert p.uncovered == 650
    by_depot = {limit.depot: limit for limit in p.limits}
    assert "keeps a floor of 900 sandbags (the depot's own floor)" in by_depot["jiashan-1"].reason
    assert "keeps a floor of 300 sandbags under clause 5" in by_depot["wujiang-1"].reason
    assert all(limit.clause == "5" for limit in p.limits)


def test_the_daily_cap_counts_what_was_taken_today() -> None:
    p = _plan(100, _stock(1000), taken_today={JIASHAN: 660})  # day cap: all 700 lendable
    assert [(line.depot, line.quantity) for line in p.lines] == [
        ("jiashan-1", 40), ("wujiang-1", 60)
    ]  # fmt: skip
    assert "may take at most 700 sandbags a day" in p.limits[0].reason


def test_nothing_to_lend_is_reported_with_the_clause() -> None:
    p = _plan(10, _stock(0))
    assert p.lines == () and p.uncovered == 10
    assert [(limit.depot, limit.clause) for limit in p.limits] == [
        ("jiashan-1", "5"), ("wujiang-1", "5")
    ]  # fmt: skip
    alone = _plan(10, _stock(1000), requester="310116")  # Jinshan: no resources agreement
    assert alone.lines == () and alone.limits[0].depot is None
    assert "no depot belongs to a partner of 310116" in alone.limits[0].reason


def test_the_more_generous_agreement_is_used() -> None:
    # Wujiang (Suzhou) and Qingpu (Shanghai) are also bound by the seven-city alliance (floor
    # 40 %, per request 30 %): the demonstration zone's terms allow more, so they are chosen.
    p = _plan(300, _stock(1000), depots=[D_WUJIANG], agreements=[ALLIANCE, DEMO])
    assert [(line.agreement, line.clause, line.quantity) for line in p.lines] == [
        (DEMO.id, "5", 300)
    ]
    only = _plan(300, _stock(1000), depots=[D_WUJIANG], agreements=[ALLIANCE])
    assert [(line.clause, line.quantity) for line in only.lines] == [("1", 180)]


@pytest.mark.parametrize("seed", range(20))
def test_every_line_is_granted_by_the_policy(seed: int) -> None:
    rng = random.Random(seed)
    stock = {
        d.id: Balance(d.id, "sandbag", n, rng.randint(0, n), rng.randint(0, n))
        for d in DEPOTS
        for n in [rng.randint(0, 2000)]
    }
    taken = {JIASHAN: rng.randint(0, 500), WUJIANG: rng.randint(0, 500)}
    p = _plan(rng.randint(1, 3000), stock, taken_today=taken)
    assert p.covered <= p.quantity
    if p.uncovered:  # every partner depot said why it gave no more
        assert {limit.depot for limit in p.limits} == {"jiashan-1", "wujiang-1"}
    clause = next(c for c in DEMO.clauses if c.id == "5")
    for line in p.lines:
        verdict = decide(
            balance=stock[line.depot], supply=supply("sandbag"), quantity=line.quantity,
            owner_name="o", partner_name="p", taken_today=taken[line.owner], t=terms(DEMO, clause),
        )  # fmt: skip
        assert isinstance(verdict, Grant) and verdict.auto_commit == line.auto_commit


def test_distance_is_great_circle_km() -> None:
    assert distance_km(31.0, 121.0, 32.0, 121.0) == pytest.approx(111.2, abs=0.1)
    with pytest.raises(ValueError, match="positive quantity"):
        _plan(0, _stock(1000))
