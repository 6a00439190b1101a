"""``liandong``: run the hub, manage adapter credentials, export the log, run benchmarks."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from hub.drills.cli import app as drills_app
from hub.engine.cli_playbooks import app as playbooks_app
from hub.errors import HubError
from hub.intake.credentials import create_adapter
from hub.model.envelope import format_time
from hub.region import load_region
from hub.registry.cli import app as registry_app
from hub.settings import Settings, from_env
from hub.store.adapters import list_adapters
from hub.store.db import connect_direct
from hub.store.sql import Connection
from hub.users_cli import app as users_app
from hub.users_cli import seed_demo as seed_demo_users

app = typer.Typer(
    help="Liandong 联动: cross-jurisdiction emergency coordination hub.", no_args_is_help=True
)
adapters_app = typer.Typer(
    help="Adapter credentials (one per city system, bound to its jurisdiction)."
)
log_app = typer.Typer(help="The event log (the journal every drill and audit reads).")
app.add_typer(adapters_app, name="adapters")
app.add_typer(log_app, name="log")
cap_app = typer.Typer(help="CAP 1.2 tools for integrators: check a feed, convert XML ⇄ JSON.")
app.add_typer(cap_app, name="cap")
app.add_typer(playbooks_app, name="playbooks")
app.add_typer(registry_app, name="registry")
app.add_typer(drills_app, name="drills")
app.add_typer(users_app, name="users")

DataOption = Annotated[
    Path | None, typer.Option("--data", help="data directory [env LIANDONG_DATA]")
]
REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")
DEMO_SCENARIO = REPO / "adapters" / "simulator" / "scenarios" / "demo.yaml"


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _now() -> str:
    import time

    return format_time(time.time_ns() // 1_000_000)


def run_job(settings: Settings, job: Callable[[Connection], T]) -> T:
    """Run one job on the configured database (SQLite file or PostgreSQL), committed."""
    if settings.database.startswith(("postgresql://", "postgres://")):
        from hub.store.postgres import PostgresDatabase

        async def on_postgres() -> T:
            db = PostgresDatabase(settings.database, writers=1)
            await db.start()
            try:
                return await db.run(lambda tx: job(tx.conn))
            finally:
                await db.stop()

        return asyncio.run(on_postgres())
    conn = connect_direct(settings.database_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = job(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


@adapters_app.command("add")
def adapters_add(
    jurisdiction: Annotated[str, typer.Option(help="GB/T 2260 code the adapter speaks for")],
    name: Annotated[str, typer.Option(help="unique adapter name, e.g. wujiang-cap")],
    data: DataOption = None,
) -> None:
    """Create an adapter credential; its token is printed as the last line (shown only once).

    Written to the configured database (LIANDONG_DATABASE; default the SQLite file in --data).
    """
    settings = from_env(data=data)
    region = load_region()
    if not region.is_known(jurisdiction):
        _fail(f"'{jurisdiction}' is not a jurisdiction of the region (GB/T 2260 code expected)")
    try:
        token = run_job(settings, lambda conn: create_adapter(conn, name, jurisdiction, _now()))
    except HubError as exc:
        _fail(str(exc))
    j = region.jurisdiction(jurisdiction)
    typer.echo(f"adapter '{name}' speaks for {j.name_zh} {j.name_en} ({jurisdiction}); token:")
    typer.echo(token)


@adapters_app.command("list")
def adapters_list(data: DataOption = None) -> None:
    """List adapter credentials (names and jurisdictions, never tokens)."""
    for adapter in run_job(from_env(data=data), list_adapters):
        typer.echo(f"{adapter.name}\t{adapter.jurisdiction}")


@log_app.command("export")
def log_export(
    data: DataOption = None,
    topic: Annotated[list[str] | None, typer.Option(help="only these topics (repeatable)")] = None,
    out: Annotated[Path | None, typer.Option(help="write here instead of standard output")] = None,
) -> None:
    """Write the log as JSONL: one envelope a line, with its topic, offset and append time."""
    settings = from_env(data=data)
    if settings.bus != "embedded":
        _fail("with LIANDONG_BUS=kafka://... the log is on Kafka: read it with a Kafka consumer")
    conn = connect_direct(settings.database_path)
    sql = 'SELECT topic, "offset", key, ts_ms, value FROM log'
    args: list[Any] = []
    if topic:
        sql += f" WHERE topic IN ({','.join('?' * len(topic))})"
        args.extend(topic)
    handle = out.open("wb") if out else sys.stdout.buffer
    try:
        for t, offset, key, ts, value in conn.execute(sql + ' ORDER BY "offset"', args):
            line = {
                "topic": t,
                "offset": offset,
                "key": key,
                "time": format_time(ts),
                "event": orjson.Fragment(value),
            }
            handle.write(orjson.dumps(line) + b"\n")
    finally:
        if out:
            handle.close()
        conn.close()


def _read_cap(path: Path) -> Any:
    """A file as a canonical incident (CAP XML by content, or the canonical JSON), or as a
    ``Distribution`` when it is an EDXL-DE 1.0/2.0 envelope (its CAP alerts decoded)."""
    from hub.codecs.cap import decode_cap
    from hub.codecs.edxl_de import decode_edxl_de, looks_like_edxl_de
    from hub.intake.service import parse_incident

    data = path.read_bytes()
    if data.lstrip()[:1] == b"<":
        if looks_like_edxl_de(data):
            return decode_edxl_de(data)
        return decode_cap(data)
    return parse_incident(data)


@cap_app.command("check")
def cap_check(
    files: Annotated[
        list[Path],
        typer.Argument(help="CAP 1.2/1.1 XML, EDXL-DE 1.0/2.0 XML or canonical JSON files"),
    ],
) -> None:
    """Validate each file; prints `FILE: OK` or `FILE: the problem`; exit status 1 if any fails."""
    failed = 0
    for path in files:
        try:
            _read_cap(path)
        except (HubError, OSError) as exc:
            failed += 1
            typer.echo(f"{path}: {exc}")
        else:
            typer.echo(f"{path}: OK")
    raise typer.Exit(1 if failed else 0)


@cap_app.command("convert")
def cap_convert(
    file: Annotated[Path, typer.Argument(help="CAP XML, EDXL-DE XML or canonical JSON")],
    to: Annotated[str, typer.Option("--to", help="json (canonical) or cap (CAP 1.2 XML)")],
) -> None:
    """Convert between CAP XML and the canonical JSON, to standard output.

    An EDXL-DE envelope converts to JSON: the distribution (status, kind, addressing) with its
    content objects, each CAP alert as the canonical incident.
    """
    from hub.codecs.cap import encode_cap
    from hub.codecs.edxl_de import Distribution

    if to not in ("json", "cap"):
        _fail("--to must be json or cap")
    try:
        incident = _read_cap(file)
    except (HubError, OSError) as exc:
        _fail(f"{file}: {exc}")
    if to == "cap" and isinstance(incident, Distribution):
        _fail(f"{file}: an EDXL-DE envelope converts --to json (it may carry several alerts)")
    if to == "cap":
        sys.stdout.buffer.write(encode_cap(incident))
    else:
        data = incident.model_dump(mode="json", exclude_none=True)
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


@app.command("bench")
def bench(
    name: Annotated[str, typer.Argument(help="benchmark name, e.g. embedded")],
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    quick: Annotated[bool, typer.Option(help="fewer and shorter runs (a smoke check)")] = False,
) -> None:
    """Run a benchmark from bench/ and print its figures."""
    try:
        module = importlib.import_module(f"bench.{name.replace('-', '_')}")
    except ModuleNotFoundError:
        _fail(f"no benchmark named '{name}' (see bench/)")
    result = module.run(quick=quick)
    if json_output:
        typer.echo(orjson.dumps(result).decode())
    else:
        for key, value in result.items():
            typer.echo(f"{key}: {value}")


def seed_demo(settings: Settings) -> Path:
    """Create the demo's adapter credentials; returns the file holding their tokens."""
    region = load_region()
    conn = connect_direct(settings.database_path)
    tokens_file = settings.data / "demo-adapters.json"
    try:
        existing = {a.name for a in list_adapters(conn)}
        tokens: dict[str, dict[str, str]] = {}
        if tokens_file.exists():
            tokens = orjson.loads(tokens_file.read_bytes())
        for code in DEMO_JURISDICTIONS:
            name = f"demo-{code}"
            if name in existing and name in tokens:
                continue
            if name in existing:
                name = f"demo-{code}-{os.getpid()}"
            tokens[name] = {
                "jurisdiction": code,
                "token": create_adapter(conn, name, code, _now()),
                "name_zh": region.jurisdiction(code).name_zh,
            }
        _seed_demo_depots(conn, region)
    finally:
        conn.close()
    tokens_file.write_bytes(orjson.dumps(tokens, option=orjson.OPT_INDENT_2))
    tokens_file.chmod(0o600)
    return tokens_file


def _seed_demo_depots(conn: Any, region: Any) -> None:
    """The demo's depots and stock (invented, marked demo), loaded once into an empty registry."""
    from hub.registry.csv_import import import_files

    if conn.execute("SELECT COUNT(*) FROM depots").fetchone()[0]:
        return
    data = Path(__file__).resolve().parent / "registry" / "data"
    now_ms = time.time_ns() // 1_000_000
    conn.execute("BEGIN IMMEDIATE")
    try:
        import_files(
            conn, data / "demo-depots.csv", data / "demo-stock.csv", region, "demo", now_ms
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# Qingpu, Wujiang, Jiashan (demonstration zone), Jinshan and Pinghu, Kunshan.
DEMO_JURISDICTIONS = ("310118", "320509", "330421", "310116", "330482", "320583")


@app.command("run")
def run(
    data: DataOption = None,
    host: Annotated[
        str | None, typer.Option(help="address to listen on [env LIANDONG_HOST]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port [env LIANDONG_PORT]")] = None,
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--no-demo",
            help="seed demo adapters and play the demo scenario (default on first run)",
        ),
    ] = None,
    adapters: Annotated[
        str | None,
        typer.Option(
            help="adapter ids to run inside the hub, e.g. suzhou,nantong [env LIANDONG_ADAPTERS]"
        ),
    ] = None,
) -> None:
    """Run the hub (embedded bus and SQLite: no external server)."""
    import uvicorn

    settings = from_env(data=data, host=host, port=port)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations speak only on trouble
    first_run = not settings.database_path.exists()
    play_demo = first_run if demo is None else demo
    try:
        settings.check()
        tokens_file = seed_demo(settings) if play_demo else None
        url = f"http://{settings.host}:{settings.port}/"
        signin = seed_demo_users(settings, url) if play_demo else []
        factory = importlib.import_module("hub.console.app")  # nothing imports the console
        web = factory.create_app(settings)
        from hub.inprocess import HubServer, adapter_ids, load_adapters, loopback_url

        inside = load_adapters(adapter_ids(adapters), loopback_url(settings.host, settings.port))
    except HubError as exc:
        _fail(str(exc))
    url = f"http://{settings.host}:{settings.port}/"
    # City systems keep their connection open between messages; a short keep-alive makes the
    # server close it just as a client reuses it (a lost request the client must resend).
    config = uvicorn.Config(
        web,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
    )
    server = HubServer(config, inside)  # uvicorn's, with the in-process adapters (if any)
    from hub.engine.workers import settle_heap

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving
                return
            await asyncio.sleep(0.05)
        settle_heap()
        typer.echo(f"Liandong 联动 hub running at {url}  (data: {settings.data.resolve()})")
        typer.echo(f"  health: {url}healthz   metrics: {url}metrics   stop: Ctrl-C")
        for line in signin:
            typer.echo(line)
        simulator = None
        if tokens_file is not None:
            typer.echo(
                f"  demo: simulated city command centres report incidents; watch them at {url}"
            )
            simulator = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
                [
                    sys.executable,
                    "-m",
                    "adapters.simulator",
                    "--hub",
                    url,
                    "--adapters",
                    str(tokens_file),
                    "--scenario",
                    str(DEMO_SCENARIO),
                ],
                cwd=REPO,
            )
        try:
            await serving
        finally:
            if simulator is not None and simulator.poll() is None:
                simulator.send_signal(signal.SIGTERM)
                simulator.wait(timeout=10)

    asyncio.run(main())


def _add_plugin_commands() -> None:
    """Add the Typer apps of the ``liandong.commands`` entry points (``liandong adapter`` comes
    from the adapter framework this way: the hub never imports ``adapters``)."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="liandong.commands"):
        try:
            plugin = entry.load()
        except Exception as exc:  # one broken plugin must not take the hub's CLI down
            typer.secho(f"warning: command '{entry.name}' not loaded: {exc}", err=True)
            continue
        if isinstance(plugin, typer.Typer):
            app.add_typer(plugin, name=entry.name)


_add_plugin_commands()


def main() -> None:
    app()
