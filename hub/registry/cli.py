"""``liandong registry``: load depots and stock from CSV, show balances, and exchange resource
requests as EDXL-RM 1.0 XML (``rm-export``, ``rm-import``)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from hub.codecs import edxl_rm
from hub.codecs.edxl_rm import MessageType
from hub.errors import HubError, NotFound
from hub.region import load_region
from hub.registry import ledger
from hub.registry.catalogue import SUPPLIES
from hub.registry.csv_import import ImportFailed, import_files
from hub.registry.exchange import ResourceExchange
from hub.registry.lines import StoredLine
from hub.registry.rm_messages import apply, message_of
from hub.settings import Settings, from_env

app = typer.Typer(help="The resource registry: depots, stock, balances, EDXL-RM messages.")
T = TypeVar("T")

DataOption = Annotated[
    Path | None, typer.Option("--data", help="data directory [env LIANDONG_DATA]")
]


@app.command("import")
def import_command(
    depots: Annotated[Path, typer.Argument(help="depots CSV", exists=True, dir_okay=False)],
    stock: Annotated[Path, typer.Argument(help="stock CSV", exists=True, dir_okay=False)],
    data: DataOption = None,
) -> None:
    """Load depots and stock counts; every bad row is named and nothing is written (exit 1)."""
    from hub.cli import run_job  # hub.cli registers this app: imported when the command runs

    region = load_region()
    now = time.time_ns() // 1_000_000
    try:
        appended = run_job(
            from_env(data=data),
            lambda conn: import_files(conn, depots, stock, region, "registry-import", now),
        )
    except ImportFailed as exc:
        for problem in exc.problems:
            typer.secho(f"error: {problem}", fg=typer.colors.RED, err=True)
        typer.secho(f"{len(exc.problems)} bad row(s); nothing imported", err=True)
        raise typer.Exit(1) from None
    except HubError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"imported {depots.name} and {stock.name}: {appended} ledger entries")


@app.command("balances")
def balances_command(
    depot: Annotated[str | None, typer.Option(help="only this depot")] = None,
    item: Annotated[str | None, typer.Option(help="only this item")] = None,
    data: DataOption = None,
) -> None:
    """Print balances: depot, item, on hand, held, floor, available (on hand − held − floor)."""
    from hub.cli import run_job

    rows = run_job(from_env(data=data), lambda conn: ledger.balances(conn, depot, item))
    typer.echo("depot\titem\ton_hand\theld\tfloor\tavailable\tunit")
    for b in rows:
        unit = SUPPLIES[b.item].item.unit_en if b.item in SUPPLIES else ""
        typer.echo(f"{b.depot}\t{b.item}\t{b.on_hand}\t{b.held}\t{b.floor}\t{b.available}\t{unit}")


def _with_registry(settings: Settings, work: Callable[[ResourceExchange, int], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database, its events going where the hub's go (the
    embedded log, or the outbox the hub's relay publishes)."""
    from hub.backends import build
    from hub.clock import SystemClock
    from hub.registry.service import Registry

    async def main() -> T:
        clock = SystemClock()
        backends = build(settings, clock, "registry-cli")
        await backends.db.start()
        try:
            registry = Registry(backends.db, backends.emitter, clock, load_region())
            return await work(ResourceExchange(registry), clock.now_ms())
        finally:
            await backends.db.stop()

    return asyncio.run(main())


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command("rm-export")
def rm_export_command(
    request_id: Annotated[str, typer.Argument(help="REQUESTER/ID, or the ID if only one has it")],
    message: Annotated[
        MessageType, typer.Option(help="which EDXL-RM message to write")
    ] = MessageType.REQUEST,
    owner: Annotated[
        str | None, typer.Option(help="an owner's lines (for messages an owner sends)")
    ] = None,
    data: DataOption = None,
) -> None:
    """Write a resource request (or its response, commitments, deployment status, ...) as
    EDXL-RM 1.0 XML."""

    async def work(exchange: ResourceExchange, now: int) -> bytes:
        key = request_id
        if "/" not in key:
            named = await exchange.requests_named(key)
            if len(named) != 1:
                which = ", ".join(named) if named else "none"
                raise NotFound(f"request '{key}': give it as REQUESTER/ID (found: {which})")
            key = named[0]
        requester, _, client_id = key.partition("/")
        found = await exchange.lines(requester, client_id)
        if not found:
            raise NotFound(f"no resource request '{client_id}' of {requester}")
        return edxl_rm.encode(message_of(message, found, now, owner))

    try:
        xml = _with_registry(from_env(data=data), work)
    except HubError as exc:
        _fail(str(exc))
    sys.stdout.buffer.write(xml)


@app.command("rm-import")
def rm_import_command(
    file: Annotated[Path, typer.Argument(help="an EDXL-RM 1.0 XML message", dir_okay=False)],
    data: DataOption = None,
) -> None:
    """Apply an EDXL-RM message: a RequestResource holds its lines (all or none); the others
    take their step on the lines they name, as the party the message names."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        _fail(f"{file}: {exc.strerror}")
    try:
        message = edxl_rm.decode(raw)
    except HubError as exc:
        _fail(f"{file.name}: {exc}")

    async def work(exchange: ResourceExchange, now: int) -> list[StoredLine]:
        return await apply(exchange, message, f"edxl-rm:{file.name}")

    try:
        done = _with_registry(from_env(data=data), work)
    except HubError as exc:
        _fail(f"{file.name}: {exc}")
    typer.echo(f"{message.type.value} {message.message_id}: {len(done)} line(s)")
    for s in done:
        line = s.line
        typer.echo(
            f"{s.client_id}\t{s.line_no}\t{s.depot}\t{line.item}\t{line.quantity}\t"
            f"{line.state.value}\t{line.answered}\t{line.committed}"
        )
