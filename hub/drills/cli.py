"""``liandong drills``: record the log for exercises and audits, check exercise scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hub.drills import recording
from hub.errors import HubError
from hub.model.envelope import parse_time
from hub.settings import from_env
from hub.store.db import connect_direct

app = typer.Typer(help="Drills: recordings of the log, exercise scenarios.", no_args_is_help=True)

DataOption = Annotated[
    Path | None, typer.Option("--data", help="data directory [env LIANDONG_DATA]")
]
TopicOption = Annotated[list[str] | None, typer.Option(help="only these topics (repeatable)")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _time(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        _fail(f"{option}: {exc} (ISO 8601 with an offset, e.g. 2026-07-01T08:00:00+08:00)")
    raise AssertionError  # _fail exits


def _read(path: Path) -> list[recording.Record]:
    try:
        return recording.read(path)
    except (HubError, OSError) as exc:
        _fail(str(exc))
    raise AssertionError


def _write(records: list[recording.Record], out: Path) -> None:
    with out.open("wb") as handle:
        count = recording.write(records, handle)
    typer.echo(f"{count} records written to {out}", err=True)


@app.command("export")
def export(
    from_: Annotated[str, typer.Option("--from", help="ISO 8601 time with offset (inclusive)")],
    to: Annotated[str, typer.Option("--to", help="ISO 8601 time with offset (exclusive)")],
    out: Annotated[Path, typer.Option("--out", help="recording file to write (JSONL)")],
    data: DataOption = None,
    topic: TopicOption = None,
) -> None:
    """Write the log records appended between two times as a recording (JSONL)."""
    start, end = _time(from_, "--from"), _time(to, "--to")
    assert start is not None and end is not None
    if end <= start:
        _fail("--to must be after --from")
    settings = from_env(data=data)
    if settings.bus != "embedded" or settings.database.startswith(("postgresql:", "postgres:")):
        _fail("recordings are exported from the embedded log (SQLite); with Kafka read the topics")
    if not settings.database_path.exists():
        _fail(f"no hub database at {settings.database_path}")
    conn = connect_direct(settings.database_path)
    try:
        _write(list(recording.export(conn, start, end, topic or ())), out)
    finally:
        conn.close()


@app.command("trim")
def trim(
    file: Annotated[Path, typer.Argument(help="recording to read")],
    out: Annotated[Path, typer.Argument(help="recording to write")],
    from_: Annotated[
        str | None, typer.Option("--from", help="keep records appended at or after")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="keep records appended before")] = None,
    topic: TopicOption = None,
) -> None:
    """Keep the records of a recording between two times and on some topics."""
    start, end = _time(from_, "--from"), _time(to, "--to")
    _write(recording.trim(_read(file), start, end, topic or ()), out)


@app.command("anonymise")
def anonymise(
    file: Annotated[Path, typer.Argument(help="recording to read")],
    out: Annotated[Path, typer.Argument(help="recording to write")],
) -> None:
    """Replace names, phone numbers and free text; keep ids, codes, times and geometry."""
    _write(recording.anonymise(_read(file)), out)


@app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="scenario files (YAML)")],
) -> None:
    """Validate scenario files; prints `FILE: OK` or each problem as `file:line: ...`."""
    from hub.drills.scenario_file import ScenarioError, load_scenario
    from hub.region import load_region

    region = load_region()
    failed = 0
    for path in files:
        try:
            scenario = load_scenario(path, region)
        except ScenarioError as exc:
            failed += 1
            typer.echo(str(exc))
        else:
            typer.echo(f"{path}: OK ({len(scenario.injects)} injects)")
    raise typer.Exit(1 if failed else 0)


@app.command("run")
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario or recording to play")],
) -> None:
    """Play a scenario against a hub: not built yet."""
    typer.secho(
        "error: 'drills run' is not built yet (issue 8 part 3); "
        "'drills check' validates a scenario meanwhile",
        fg=typer.colors.RED,
        err=True,
    )
    raise typer.Exit(2)
