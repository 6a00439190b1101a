"""``liandong playbooks``: check playbooks, run their cases, explain an incident."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from hub.engine.cases import cases_path, load_cases, run_directory
from hub.engine.explain import Explanation, explain
from hub.engine.playbook import load_playbooks, playbook_files
from hub.engine.schema import SCHEMA_PATH, rendered
from hub.engine.source import PlaybookError, Problem
from hub.engine.spatial import load_zones
from hub.errors import HubError
from hub.model.envelope import derived_id, parse_time
from hub.model.incident import Incident, lane_for
from hub.region import load_region
from hub.settings import Settings, from_env

app = typer.Typer(
    help="Playbooks: check them, run their cases (a dry run), explain an incident.",
    no_args_is_help=True,
)

DirArgument = Annotated[
    Path | None, typer.Argument(help="playbook directory [env LIANDONG_PLAYBOOKS]")
]


def _directory(given: Path | None) -> Path:
    return given if given is not None else from_env().playbooks


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def check_directory(directory: Path) -> tuple[int, list[Problem]]:
    """How many playbooks load, and every problem: playbooks, zones, cases files."""
    region = load_region()
    problems: list[Problem] = []
    count = 0
    try:
        load_zones(directory / "zones")
        count = len(load_playbooks(directory, region))
    except PlaybookError as exc:
        problems.extend(exc.problems)
    for path in playbook_files(directory):
        cases = cases_path(path)
        if not cases.exists():
            problems.append(Problem(str(path), 1, "", f"no cases: write {cases.name} beside it"))
            continue
        try:
            load_cases(cases)
        except PlaybookError as exc:
            problems.extend(exc.problems)
    for cases in sorted(directory.glob("*.cases.yaml")):
        twin = cases.with_name(cases.name.removesuffix(".cases.yaml") + ".yaml")
        if not twin.exists():
            problems.append(Problem(str(cases), 1, "", f"cases for a missing playbook {twin.name}"))
    return count, problems


@app.command("check")
def check(directory: DirArgument = None) -> None:
    """Check every playbook, zone and cases file; prints `file:line: what is wrong`."""
    where = _directory(directory)
    count, problems = check_directory(where)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {where}")
        raise typer.Exit(1)
    typer.echo(f"{count} playbooks in {where}: OK")


@app.command("test")
def test(
    directory: DirArgument = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list passing cases")] = False,
) -> None:
    """Run every playbook's cases offline (no database, no bus, nothing sent)."""
    where = _directory(directory)
    try:
        results = run_directory(where)
    except PlaybookError as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        raise typer.Exit(1) from None
    failed = [r for r in results if not r.passed]
    for result in results if verbose else failed:
        typer.echo(str(result))
    typer.echo(f"{len(results)} cases, {len(results) - len(failed)} passed, {len(failed)} failed")
    raise typer.Exit(1 if failed else 0)


@app.command("explain")
def explain_command(
    identifier: Annotated[
        str | None, typer.Argument(help="the incident's CAP identifier, as stored by the hub")
    ] = None,
    sender: Annotated[
        str | None, typer.Option(help="the sender, when several used the identifier")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="data directory [env LIANDONG_DATA]")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="explain this incident file (CAP JSON) instead")
    ] = None,
    playbooks: Annotated[
        Path | None, typer.Option("--playbooks", help="playbook directory [env LIANDONG_PLAYBOOKS]")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Which playbooks matched an incident and why, which did not and why not."""
    if (identifier is None) == (file is None):
        _fail("give an IDENTIFIER (read from the hub's database) or --file, not both")
    settings = from_env(data=data)
    try:
        region = load_region()
        loaded = load_playbooks(playbooks or settings.playbooks, region)
        if file is not None:
            incident, thread, cause, reported_ms = _from_file(file)
        else:
            assert identifier is not None
            incident, thread, cause, reported_ms = _from_store(settings, identifier, sender)
    except (HubError, OSError) as exc:
        _fail(str(exc))
    result = explain(
        incident,
        thread=thread,
        cause=cause,
        reported_ms=reported_ms,
        lane=lane_for(incident.status),
        playbooks=loaded,
        region=region,
    )
    _print(result, json_output)


def _print(result: Explanation, json_output: bool) -> None:
    if json_output:
        sys.stdout.buffer.write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        return
    for line in result.lines():
        typer.echo(line)


def _from_file(path: Path) -> tuple[Incident, str, str, int]:
    from hub.intake.service import parse_incident

    incident = parse_incident(path.read_bytes())
    cause = derived_id("incident.reported", incident.key)
    return incident, incident.key, cause, parse_time(incident.sent)


def _from_store(
    settings: Settings, identifier: str, sender: str | None
) -> tuple[Incident, str, str, int]:
    from hub.cli import run_job  # the CLI's way to reach either database; imported late (cycle)
    from hub.store import incidents as store

    if settings.database == "sqlite" and not settings.database_path.exists():
        raise HubError(f"no hub database at {settings.database_path} (give --data DIR)")
    rows = run_job(settings, lambda conn: store.find_by_identifier(conn, identifier))
    if sender is not None:
        rows = [r for r in rows if r.sender == sender]
    if not rows:
        raise HubError(f"no incident with identifier '{identifier}' in the hub's database")
    if len(rows) > 1:
        senders = ", ".join(r.sender for r in rows)
        raise HubError(f"identifier '{identifier}' was used by {senders}: add --sender CODE")
    row = rows[0]
    incident = Incident.model_validate_json(row.body)
    return incident, row.thread, row.event_id, row.received_ms


@app.command("schema")
def schema(
    check_file: Annotated[
        bool, typer.Option("--check", help="fail if the committed schema file is out of date")
    ] = False,
) -> None:
    """Print the playbook JSON Schema (generated from the loader's models)."""
    text = rendered()
    if check_file:
        if SCHEMA_PATH.read_bytes() != text:
            _fail(f"{SCHEMA_PATH} is out of date: liandong playbooks schema > {SCHEMA_PATH}")
        typer.echo(f"{SCHEMA_PATH}: up to date")
        return
    sys.stdout.buffer.write(text)
