"""The sharing policy as pure arithmetic: floors, caps, auto-commit, refusals naming the clause."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.model.region import Clause
from hub.region import AgreementFileError, load_agreements, load_region
from hub.registry.catalogue import SUPPLIES, Category, Kind, supply
from hub.registry.ledger import Balance
from hub.registry.policy import Grant, Refusal, Terms, decide, figures, terms

CLAUSE = Clause(
    id="4.2", title_zh="物资互助", title_en="Mutual aid", kind="resources", categories=("Met",)
)
T = Terms("test-agreement", CLAUSE, 0.2, 0.1, 0.5, 0.8)
SANDBAG = supply("sandbag")


def _decide(
    on_hand: int, quantity: int, *, held: int = 0, floor: int = 0, today: int = 0
) -> object:
    return decide(
        balance=Balance("js-1", "sandbag", on_hand, held, floor),
        supply=SANDBAG,
        quantity=quantity,
        owner_name="Jiashan",
        partner_name="Wujiang",
        taken_today=today,
        t=T,
    )


def test_the_briefs_example_refusal() -> None:
    # The depot's own floor (2,000) is above the agreement's 20 % of 3,200 (640).
    refusal = _decide(3_200, 1_300, floor=2_000)
    assert refusal == Refusal(
        "Jiashan keeps a floor of 2,000 sandbags (the depot's own floor) under clause 4.2 of "
        "test-agreement; 1,200 shareable, 1,300 asked",
        "test-agreement",
        "4.2",
    )


def test_figures_take_the_larger_floor_and_fractions_of_lendable() -> None:
    f = figures(Balance("d", "sandbag", 10_000, 1_000, 500), T)
    assert (f.floor, f.floor_from_agreement, f.lendable, f.shareable) == (2_000, True, 8_000, 7_000)
    assert (f.request_cap, f.day_cap, f.auto_commit_max) == (4_000, 6_400, 800)


@pytest.mark.parametrize(
    ("quantity", "auto"), [(1, True), (800, True), (801, False), (4_000, False)]
)
def test_auto_commit_threshold(quantity: int, auto: bool) -> None:
    grant = _decide(10_000, quantity)
    assert isinstance(grant, Grant) and grant.auto_commit is auto and grant.floor == 2_000


def test_per_request_and_per_day_caps() -> None:
    capped = _decide(10_000, 4_001)
    assert isinstance(capped, Refusal) and capped.reason.startswith(
        "clause 4.2 of test-agreement caps a single request at 4,000 sandbags (50% of 8,000"
    )
    day = _decide(10_000, 500, today=6_000)
    assert isinstance(day, Refusal) and day.reason == (
        "Wujiang may take at most 6,400 sandbags a day from Jiashan under clause 4.2 of "
        "test-agreement; 6,000 taken today, 400 left, 500 asked"
    )
    assert isinstance(_decide(10_000, 400, today=6_000), Grant)
    assert isinstance(_decide(10_000, 0), Refusal)


def test_terms_come_from_the_agreements_sharing_block() -> None:
    agreement = load_region().agreement("yrd-demo-zone-emergency-linkage")
    (clause,) = [c for c in agreement.clauses if c.kind == "resources"]
    t = terms(agreement, clause)
    assert (t.floor_fraction, t.auto_commit, t.per_request, t.per_day) == (0.3, 0.1, 0.5, 1.0)
    with pytest.raises(ValueError, match="not a resources clause"):
        terms(agreement, agreement.clauses[0])


def test_catalogue_files_every_playbook_item_and_names_amounts() -> None:
    from hub.engine.catalogue import ITEMS

    assert set(ITEMS) <= set(SUPPLIES)
    assert SUPPLIES["sandbag"].item is ITEMS["sandbag"]  # the same vocabulary, not a copy
    assert {s.category for s in SUPPLIES.values()} == set(Category)
    assert supply("water-pump").kind is Kind.EQUIPMENT
    assert SANDBAG.amount(2_000) == "2,000 sandbags"
    assert supply("foam-concentrate").amount(5) == "5 tonnes of firefighting foam concentrate"
    with pytest.raises(ValueError, match="unknown item 'sand bags'"):
        supply("sand bags")


def test_the_per_day_cap_is_each_agreements_own() -> None:
    region = load_region()
    caps = {a.id: a.sharing.per_day_cap for a in region.agreements if a.sharing is not None}
    assert caps["taihu-basin-flood-control-coordination"] == 0.6
    assert caps["yrd-demo-zone-emergency-linkage"] == 1.0
    taihu = region.agreement("taihu-basin-flood-control-coordination")
    (clause,) = [c for c in taihu.clauses if c.kind == "resources"]
    t = terms(taihu, clause)
    assert t.per_day == 0.6
    # 10,000 on hand, floor 40 %: 6,000 lendable, 3,600 a day; 2,400 taken, 1,300 more is over.
    refusal = decide(
        balance=Balance("js-1", "sandbag", 10_000, 0, 0), supply=SANDBAG, quantity=1_300,
        owner_name="Jiashan", partner_name="Wujiang", taken_today=2_400, t=t,
    )  # fmt: skip
    assert isinstance(refusal, Refusal) and refusal.clause == "4"
    assert (
        "at most 3,600 sandbags a day" in refusal.reason and "clause 4 of taihu" in refusal.reason
    )


def test_an_agreement_without_a_per_day_cap_is_refused(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "hub/region/data/agreements.yaml").read_text("utf-8")
    path = tmp_path / "agreements.yaml"
    path.write_text(text.replace("      per_day_cap: 0.6\n", "", 1), "utf-8")
    with pytest.raises(AgreementFileError, match="per_day_cap"):
        load_agreements(path)
    path.write_text(text.replace("per_day_cap: 0.6", "per_day_cap: 0.2", 1), "utf-8")
    with pytest.raises(AgreementFileError, match="below per_request_cap"):
        load_agreements(path)
