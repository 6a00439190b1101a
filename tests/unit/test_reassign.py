"""``at_most`` / ``on_decline: next_candidate`` (pure): the format refuses a reserve nobody can
draw on, and the next candidate is the first authorised target by code not asked yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.engine.evaluator import plan
from hub.engine.playbook import Playbook, load_playbook
from hub.engine.reassign import next_candidate
from hub.engine.source import PlaybookError
from hub.engine.spatial import load_zones
from hub.model.envelope import Lane
from hub.model.incident import Incident
from hub.region import Region, load_region
from tests.factories import cap

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
WATER = (PLAYBOOKS / "cross-border-water-pollution.yaml").read_text(encoding="utf-8")
STEP = "  - id: protect-intakes\n    task:\n"
NOW = 1_782_870_000_000


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


def _variant(tmp_path: Path, region: Region, extra: str) -> Playbook:
    path = tmp_path / "v.yaml"
    path.write_text(WATER.replace(STEP, STEP + extra, 1), encoding="utf-8")
    return load_playbook(path, zones=load_zones(PLAYBOOKS / "zones"), region=region)


def test_next_candidate_needs_a_reserve(tmp_path: Path, region: Region) -> None:
    with pytest.raises(PlaybookError, match="on_decline: next_candidate needs at_most"):
        _variant(tmp_path, region, "      on_decline: next_candidate\n")


def test_the_next_candidate_is_the_first_by_code_not_asked_yet(
    tmp_path: Path, region: Region
) -> None:
    book = [_variant(tmp_path, region, "      at_most: 1\n      on_decline: next_candidate\n")]
    incident = Incident.model_validate(cap("d-1"))
    args = {"thread": incident.key, "cause": "c", "reported_ms": 0, "lane": Lane.ACTUAL}
    (first,) = plan(incident, **args, playbooks=book, region=region).tasks
    assert first.target == "320509"
    kw = {"now_ms": NOW, "playbooks": book, "region": region}
    second = next_candidate(first, incident, {"320509"}, **kw)
    assert second is not None and second.target == "320583"
    assert second == next_candidate(first, incident, {"320509"}, **kw)  # same id, same task
    assert second.id != first.id and second.issued == "2026-07-01T01:40:00.000Z"
    third = next_candidate(second, incident, {"320509", "320583"}, **kw)
    assert third is not None and third.target == "330421"
    assert next_candidate(third, incident, {"320509", "320583", "330421"}, **kw) is None
    # A step that does not say next_candidate: the decline stands.
    plain = [_variant(tmp_path, region, "      at_most: 1\n")]
    assert next_candidate(first, incident, {"320509"}, **{**kw, "playbooks": plain}) is None
