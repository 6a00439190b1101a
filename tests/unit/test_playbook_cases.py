"""Every ``playbooks/*.cases.yaml``: each case is a test, run as ``liandong playbooks test`` runs
it (a dry run); and the case runner really fails when a playbook does something else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.engine.cases import CaseResult, cases_path, load_cases, run_case, run_directory
from hub.engine.cli_playbooks import app as playbooks_cli
from hub.engine.playbook import Playbook, load_playbooks, playbook_files
from hub.region import Region, load_region

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
CASES = [
    pytest.param(path, i, id=f"{path.name.removesuffix('.cases.yaml')}[{i}]")
    for path in sorted(PLAYBOOKS.glob("*.cases.yaml"))
    for i in range(len(load_cases(path)[1].cases))
]


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


@pytest.fixture(scope="module")
def playbooks(region: Region) -> list[Playbook]:
    return load_playbooks(PLAYBOOKS, region)


@pytest.mark.parametrize(("path", "index"), CASES)
def test_case(path: Path, index: int, playbooks: list[Playbook], region: Region) -> None:
    _, parsed = load_cases(path)
    case = parsed.cases[index]
    problems = run_case(case, index, parsed.playbook, playbooks, region)
    assert not problems, f"{case.name}: {problems}"


def test_every_playbook_has_cases_that_match_and_cases_that_do_not() -> None:
    for path in playbook_files(PLAYBOOKS):
        _, parsed = load_cases(cases_path(path))
        outcomes = {c.expect.matched for c in parsed.cases}
        assert outcomes == {True, False}, path.name
        assert any(c.expect.tasks for c in parsed.cases), f"{path.name}: no case issues a task"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, target)
    return target


def test_a_wrong_expectation_fails_with_what_differs(tmp_path: Path, region: Region) -> None:
    directory = _copy(tmp_path)
    cases = directory / "cross-border-water-pollution.cases.yaml"
    text = cases.read_text(encoding="utf-8")
    text = text.replace(
        'target: "320583", agreement: qingpu', 'target: "320585", agreement: qingpu', 1
    )
    text = text.replace('clause: "4"}', 'clause: "3"}', 1)
    cases.write_text(text, encoding="utf-8")
    results = run_directory(directory, region)
    failed = [r for r in results if not r.passed]
    assert len(failed) == 1
    (result,) = failed
    assert isinstance(result, CaseResult) and result.line == 7
    text_of = str(result)
    assert "tasks missing: protect-intakes→320585" in text_of
    assert "tasks not expected: protect-intakes→320583" in text_of
    assert "protect-intakes→320509: clause 4, expected 3" in text_of


def test_a_playbook_without_cases_fails(tmp_path: Path, region: Region) -> None:
    directory = _copy(tmp_path)
    (directory / "taihu-basin-flooding.cases.yaml").unlink()
    results = run_directory(directory, region)
    missing = [r for r in results if not r.passed]
    assert [r.playbook for r in missing] == ["taihu-basin-flooding"]
    assert "no cases" in missing[0].problems[0]


def test_liandong_playbooks_test(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(playbooks_cli, ["test", str(PLAYBOOKS)])
    assert ok.exit_code == 0, ok.output
    assert f"{len(CASES)} cases, {len(CASES)} passed, 0 failed" in ok.output
    directory = _copy(tmp_path)
    cases = directory / "water-town-crowd-surge.cases.yaml"
    cases.write_text(cases.read_text("utf-8").replace("matched: false", "matched: true"), "utf-8")
    bad = runner.invoke(playbooks_cli, ["test", str(directory)])
    assert bad.exit_code == 1
    assert "FAIL " in bad.output and "expected matched=True, got False" in bad.output
