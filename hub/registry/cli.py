"""``liandong registry``: load depots and stock from CSV, show balances."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from hub.errors import HubError
from hub.region import load_region
from hub.registry import ledger
from hub.registry.catalogue import SUPPLIES
from hub.registry.csv_import import ImportFailed, import_files
from hub.settings import from_env

app = typer.Typer(help="The resource registry: depots, stock, balances.")

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
