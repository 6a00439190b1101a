"""The playbook format and the pure evaluator (no hub, no database)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from hub.engine.duration import duration_ms
from hub.engine.evaluator import plan
from hub.engine.playbook import Playbook, load_playbook, load_playbooks
from hub.errors import InvalidInput
from hub.model.envelope import Lane, parse_time
from hub.model.incident import Incident
from hub.region import Region, load_region
from tests.factories import cap

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
REPORTED = parse_time("2026-07-01T08:31:00+08:00")


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


@pytest.fixture(scope="module")
def playbooks() -> list[Playbook]:
    return load_playbooks(PLAYBOOKS)


def _plan(message: dict[str, object], playbooks: list[Playbook], region: Region):  # type: ignore[no-untyped-def]
    incident = Incident.model_validate(message)
    return plan(
        incident,
        thread=incident.key,
        cause="cause-id",
        reported_ms=REPORTED,
        lane=Lane.ACTUAL,
        playbooks=playbooks,
        region=region,
    )


def test_durations() -> None:
    assert duration_ms("PT30M") == 1_800_000
    assert duration_ms("P1DT2H") == 93_600_000
    assert duration_ms("PT0.5S") == 500
    for bad in ("30M", "P", "PT", "P1Y", "PT-5M"):
        with pytest.raises(ValueError, match="ISO 8601"):
            duration_ms(bad)


def test_the_shipped_playbooks_load(playbooks: list[Playbook]) -> None:
    assert [p.id for p in playbooks] == ["cross-border-water-pollution"]


def test_duplicate_keys_and_unknown_fields_are_errors(tmp_path: Path) -> None:
    good = (PLAYBOOKS / "cross-border-water-pollution.yaml").read_text(encoding="utf-8")
    dup = tmp_path / "dup.yaml"
    dup.write_text(good.replace("version: 1\n", "version: 1\nversion: 2\n"), encoding="utf-8")
    with pytest.raises(InvalidInput, match="duplicate key"):
        load_playbook(dup)
    typo = tmp_path / "typo.yaml"
    typo.write_text(good.replace("within_km: 10", "within_kms: 10"), encoding="utf-8")
    with pytest.raises(InvalidInput, match="within_km"):
        load_playbook(typo)
    late = tmp_path / "late.yaml"
    late.write_text(
        good.replace("ack_deadline: PT30M", "ack_deadline: 30 minutes"), encoding="utf-8"
    )
    with pytest.raises(InvalidInput, match="ISO 8601"):
        load_playbook(late)


def test_jinze_spill_gives_tasks_to_wujiang_and_jiashan(
    playbooks: list[Playbook], region: Region
) -> None:
    result = _plan(cap("jinze-1"), playbooks, region)
    targets = {t.target for t in result.tasks}
    assert {"320509", "330421"} <= targets
    assert "310118" not in targets  # never the sender itself
    wujiang = next(t for t in result.tasks if t.target == "320509")
    # The demonstration-zone agreement is the most specific authority for Qingpu–Wujiang.
    assert wujiang.why.agreement == "yrd-demo-zone-emergency-linkage"
    assert wujiang.why.playbook == "cross-border-water-pollution"
    assert wujiang.why.cause == "cause-id"
    assert wujiang.due == "2026-07-01T01:01:00.000Z"  # reported + PT30M
    for task in result.tasks:
        assert region.agreements_binding("310118", task.target, "Env")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"severity": "Moderate"}, "severity Moderate < Severe"),
        ({"category": "Fire"}, "category Fire not in Env"),
    ],
)
def test_what_does_not_match_says_why(
    change: dict[str, str], reason: str, playbooks: list[Playbook], region: Region
) -> None:
    result = _plan(cap("jinze-2", **change), playbooks, region)  # type: ignore[arg-type]
    assert result.tasks == ()
    (verdict,) = result.verdicts
    assert not verdict.matched
    assert any(reason in r for r in verdict.reasons)


def test_no_agreement_no_task(playbooks: list[Playbook], region: Region) -> None:
    # Xujing, eastern Qingpu: its neighbours within 10 km (Minhang, Songjiang, ...) share no
    # joint-response agreement with Qingpu, so the playbook matches but authorises no task.
    result = _plan(cap("xujing", circle="31.18,121.26 0.5"), playbooks, region)
    assert result.verdicts[0].matched
    assert result.tasks == ()


def test_planning_is_deterministic(playbooks: list[Playbook], region: Region) -> None:
    first = _plan(cap("det-1"), playbooks, region)
    second = _plan(cap("det-1"), playbooks, region)
    encode = [
        orjson.dumps(t.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS) for t in first.tasks
    ]
    again = [
        orjson.dumps(t.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS) for t in second.tasks
    ]
    assert encode == again
    assert [t.id for t in first.tasks] == sorted(t.id for t in first.tasks)
