"""``liandong drills``: record the log for exercises and audits, check exercise scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

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


def _fail(message: str) -> NoReturn:
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


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        _fail(f"--speed {text!r}: expected a number above 0 (times real time) or 'max'")
    return value


def _timeline(path: Path) -> Any:
    from hub.drills import timeline

    try:
        return timeline.load(path)
    except (HubError, OSError) as exc:
        _fail(str(exc))


def _drill_dir(base: Path, drill: str) -> Path:
    n = 1
    while (base / f"{drill}-{n}").exists():
        n += 1
    return base / f"{drill}-{n}"


def _registry(registry: str, data: Path | None) -> tuple[Path | None, bool]:
    if registry == "none":
        return None, False
    if registry == "demo":
        return None, True
    if registry == "live":
        return from_env(data=data).database_path, False
    _fail(f"--registry {registry!r}: expected live, demo or none")
    raise AssertionError


@app.command("run")
def run(
    source: Annotated[Path, typer.Argument(help="scenario (.yaml) or recording (.jsonl)")],
    speed: Annotated[str, typer.Option(help="times faster than real time, or 'max'")] = "max",
    drill: Annotated[str | None, typer.Option("--drill", help="drill id")] = None,
    out: Annotated[Path | None, typer.Option(help="the drill's own data directory (new)")] = None,
    registry: Annotated[
        str, typer.Option(help="copy the registry from: live (the hub's data), demo, none")
    ] = "live",
    playbooks: Annotated[Path | None, typer.Option(help="playbooks directory")] = None,
    html: Annotated[Path | None, typer.Option(help="write the after-action report page")] = None,
    data: DataOption = None,
) -> None:
    """Play a scenario or a recording as a drill, isolated on its own data directory, under a
    virtual clock; prints the run and its after-action report as JSON. Ctrl-C stops it; the
    signal USR1 pauses and resumes it."""
    import asyncio
    import signal

    from hub.drills.player import Player

    chosen_speed = _speed(speed)
    plan = _timeline(source)
    settings = from_env(data=data)
    drill_id = drill or plan.name
    registry_from, demo = _registry(registry, data)
    if registry_from is not None and not registry_from.exists():
        registry_from = None  # no live hub here yet: the drill starts with an empty registry
    target = out or _drill_dir(settings.data / "drills", drill_id)
    try:
        player = Player(
            drill_id, plan, target, playbooks or settings.playbooks, speed=chosen_speed,
            registry_from=registry_from, registry_demo=demo,
        )  # fmt: skip
    except (HubError, OSError, ValueError) as exc:
        _fail(str(exc))

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, player.stop)
        loop.add_signal_handler(
            signal.SIGUSR1, lambda: player.resume() if player.state.value == "paused" else (
                player.pause()
            ),
        )  # fmt: skip
        return await player.run()

    try:
        status = asyncio.run(main())
    except HubError as exc:
        _fail(f"drill {drill_id}: {exc}")
    typer.echo(_dumps({"run": status, "report": player.report}))
    if html is not None and player.report is not None:
        from hub.drills.html import render

        html.write_text(render(player.report), encoding="utf-8")


@app.command("report")
def report(
    drill_dir: Annotated[Path, typer.Argument(help="a drill's data directory")],
    html: Annotated[Path | None, typer.Option(help="write the report page here")] = None,
) -> None:
    """The after-action report of a drill (JSON; ``--html`` writes the page with its charts)."""
    from hub.drills.drillhub import report_from_dir

    try:
        found = report_from_dir(drill_dir)
    except (HubError, OSError) as exc:
        _fail(str(exc))
    typer.echo(_dumps(found))
    if html is not None:
        from hub.drills.html import render

        html.write_text(render(found), encoding="utf-8")


@app.command("compare")
def compare(
    source: Annotated[Path, typer.Argument(help="recording (.jsonl) or scenario (.yaml)")],
    playbooks: Annotated[
        list[Path] | None, typer.Option("--playbooks", help="playbooks A, then B (repeat)")
    ] = None,
    registry: Annotated[
        list[str] | None,
        typer.Option("--registry", help="registry of A, then of B: live, demo, none"),
    ] = None,
    data: DataOption = None,
) -> None:
    """Run the same input under two sets of playbooks (or two registries) and print what
    differs: tasks per jurisdiction, time to first task, escalations, resources, stock left."""
    import asyncio
    import tempfile

    from hub.drills.compare import Variant
    from hub.drills.compare import compare as run_compare

    settings = from_env(data=data)
    books = list(playbooks or [])
    regs = list(registry or [])
    if len(books) > 2 or len(regs) > 2 or (len(books) < 2 and len(regs) < 2):
        _fail("give two --playbooks (A and B) or two --registry (A and B)")
    books += [books[-1] if books else settings.playbooks] * (2 - len(books))
    regs += [regs[-1] if regs else "live"] * (2 - len(regs))
    for book in books:
        if not book.is_dir():
            _fail(f"--playbooks {book}: not a directory")
    plan = _timeline(source)
    variants = []
    for tag, book, reg in zip("ab", books, regs, strict=True):
        registry_from, demo = _registry(reg, data)
        if registry_from is not None and not registry_from.exists():
            _fail(f"--registry live: no hub database at {registry_from}")
        variants.append(Variant(f"{tag}: {book} / registry {reg}", book, registry_from, demo))
    with tempfile.TemporaryDirectory(prefix="liandong-whatif-") as work:
        try:
            result = asyncio.run(
                run_compare(plan, variants[0], variants[1], Path(work), f"whatif-{plan.name}")
            )
        except HubError as exc:
            _fail(str(exc))
    typer.echo(_dumps(result))


def _dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
