"""``liandong adapter ...``: list, show, check and run adapters.

This Typer app reaches the ``liandong`` command through the entry point group
``liandong.commands`` (``pyproject.toml``); the hub's CLI loads the group by name and never
imports ``adapters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import orjson
import typer

from adapters.framework.discovery import ADAPTER_PATH_ENV, Found, discover, find
from adapters.framework.manifest import schema_text
from hub.errors import HubError

# The runner and the fixture checker are imported by the commands that use them: every
# `liandong` command loads this module, and they bring uvicorn, httpx, aiokafka and lxml.

app = typer.Typer(
    help=f"City adapters: manifests found under adapters/ and {ADAPTER_PATH_ENV}.",
    no_args_is_help=True,
)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _find(adapter_id: str) -> Found:
    try:
        return find(adapter_id)
    except HubError as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


def _leaves(group: BaseExceptionGroup[HubError]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


@app.command("list")
def list_adapters() -> None:
    """One line per adapter: id, jurisdiction, transport, codec, folder."""
    try:
        found = discover()
    except HubError as exc:
        _fail(str(exc))
    for item in found:
        if item.manifest is None:
            typer.echo(f"!{item.folder.name}\t-\t-\t-\t{item.folder}\t{item.error}")
            continue
        m = item.manifest
        typer.echo(f"{m.id}\t{m.jurisdiction}\t{m.transport.kind}\t{m.codec.kind}\t{item.folder}")


@app.command("show")
def show(adapter_id: Annotated[str, typer.Argument(help="adapter id")]) -> None:
    """The adapter's manifest with every default filled in, as JSON."""
    found = _find(adapter_id)
    assert found.manifest is not None
    data = {"folder": str(found.folder), "manifest": found.manifest.model_dump(mode="json")}
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@app.command("check")
def check(
    adapter_ids: Annotated[
        list[str] | None, typer.Argument(help="adapter ids (default: all)")
    ] = None,
) -> None:
    """Validate manifest, jurisdiction, codec and mapping, then run every fixture case.
    Exit status 1 if anything fails."""
    from adapters.framework.fixtures import check_adapter
    from hub.region import load_region

    region = load_region()
    try:
        targets = [_find(i) for i in adapter_ids] if adapter_ids else discover()
    except HubError as exc:
        _fail(str(exc))
    failed = 0
    for found in targets:
        known = region.is_known(found.manifest.jurisdiction) if found.manifest else None
        name = found.manifest.id if found.manifest else found.folder.name
        for item in check_adapter(found, known_jurisdiction=known):
            failed += not item.ok
            mark = "ok  " if item.ok else "FAIL"
            typer.echo(f"{mark} {name}: {item.name}" + ("" if item.ok else f": {item.problem}"))
    raise typer.Exit(1 if failed else 0)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of adapter.yaml (committed as manifest.schema.json)."""
    typer.echo(schema_text(), nl=False)


@app.command("run")
def run(
    adapter_ids: Annotated[list[str], typer.Argument(help="one or more adapter ids")],
    hub: Annotated[
        str | None, typer.Option(help="hub URL [env LIANDONG_HUB_URL; else the manifest's]")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="file holding the hub token (one adapter only; else hub.token_env)"),
    ] = None,
) -> None:
    """Run adapters until SIGTERM or Ctrl-C (several run side by side in this process)."""
    from adapters.framework.http_out import Breakers
    from adapters.framework.runner import AdapterRunner, hub_access, run_adapters

    logging.basicConfig(
        level=os.environ.get("LIANDONG_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    if token_file is not None and len(adapter_ids) != 1:
        _fail("--token-file holds one token: give one adapter id")
    runners = []
    breakers = Breakers()  # one circuit per destination, whichever adapters share it
    try:
        for adapter_id in adapter_ids:
            found = _find(adapter_id)
            assert found.manifest is not None
            token = token_file.read_text().strip() if token_file is not None else None
            access = hub_access(found.manifest, url=hub, token=token)
            runners.append(AdapterRunner(found, access, breakers=breakers))
    except (HubError, OSError) as exc:
        _fail(str(exc))

    async def main() -> None:
        task = asyncio.create_task(run_adapters(runners))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    except BaseExceptionGroup as group:
        hub_errors, other = group.split(HubError)
        if other is not None or hub_errors is None:
            raise
        _fail("; ".join(str(exc) for exc in _leaves(hub_errors)))
    for runner in runners:
        typer.echo(f"adapter {runner.manifest.id} stopped: {dict(runner.stats)}")
