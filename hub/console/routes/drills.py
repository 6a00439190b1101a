"""``/api/v1/drills``: start, pause, resume and stop drills, follow them, read their reports.

Only a regional coordinator or an administrator controls drills; anyone else gets 403. A drill
plays a shipped scenario (``drills/NAME.yaml``) or a recording kept in the hub's data directory
(``recordings/NAME.jsonl``), named, never a path, on its own data directory
(``{data}/drills/{drill}``) under a virtual clock; the live database is only read, to copy the
registry. The after-action report is served as JSON and as a page with inline SVG charts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.console.auth import Actor, CurrentHub, require_role
from hub.drills import timeline as timelines
from hub.drills.drillhub import report_from_dir
from hub.drills.html import render
from hub.drills.player import Player, State
from hub.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/drills", tags=["drills"])
Controller = Annotated[Actor, Depends(require_role("coordinator", "admin"))]
_NAME = r"^[a-z0-9][a-z0-9._-]{0,99}$"


class Start(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(pattern=_NAME, description="a scenario of drills/ or a recording name")
    speed: float | Literal["max"] = Field(default="max", description="times real time, or max")
    registry: Literal["live", "demo", "none"] = "live"


class Desk:
    """The drills this console started, by id."""

    def __init__(self) -> None:
        self.players: dict[str, Player] = {}
        self.running: dict[str, asyncio.Task[Any]] = {}

    def get(self, drill: str) -> Player:
        player = self.players.get(drill)
        if player is None:
            raise NotFound(f"no drill '{drill}'")
        return player


def _desk(request: Request) -> Desk:
    desk: Desk | None = getattr(request.app.state, "drills", None)
    if desk is None:
        desk = request.app.state.drills = Desk()
    return desk


def _source(hub: Any, name: str) -> Path:
    scenario = hub.settings.playbooks.parent / "drills" / f"{name}.yaml"
    recorded = hub.settings.data / "recordings" / f"{name}.jsonl"
    for path in (scenario, recorded):
        if path.is_file():
            return Path(path)
    raise NotFound(f"no scenario drills/{name}.yaml and no recording recordings/{name}.jsonl")


async def _play(player: Player) -> None:
    try:
        await player.run()
    except Exception:  # the drill's own failure, kept in its status
        log.exception("drill %s failed", player.drill)


@router.post("", status_code=202)
async def start(body: Start, hub: CurrentHub, actor: Controller, request: Request) -> Any:
    desk = _desk(request)
    plan = timelines.load(_source(hub, body.source))
    base = hub.settings.data / "drills"
    n = 1
    while f"{body.source}-{n}" in desk.players or (base / f"{body.source}-{n}").exists():
        n += 1
    drill = f"{body.source}-{n}"
    live_db = hub.settings.database_path if body.registry == "live" else None
    if live_db is not None and not live_db.exists():
        raise InvalidInput(f"registry 'live': no hub database at {live_db}")
    player = Player(
        drill, plan, base / drill, hub.settings.playbooks,
        speed=None if body.speed == "max" else body.speed,
        registry_from=live_db, registry_demo=body.registry == "demo",
    )  # fmt: skip
    desk.players[drill] = player
    desk.running[drill] = asyncio.create_task(_play(player), name=f"drill:{drill}")
    log.info("drill %s started by %s", drill, actor.id)
    return player.status()


@router.get("")
async def list_drills(actor: Controller, request: Request) -> Any:
    return [p.status() for p in _desk(request).players.values()]


@router.get("/{drill}")
async def status(drill: str, actor: Controller, request: Request) -> Any:
    return _desk(request).get(drill).status()


@router.post("/{drill}/pause")
async def pause(drill: str, actor: Controller, request: Request) -> Any:
    player = _desk(request).get(drill)
    player.pause()
    return player.status()


@router.post("/{drill}/resume")
async def resume(drill: str, actor: Controller, request: Request) -> Any:
    player = _desk(request).get(drill)
    player.resume()
    return player.status()


@router.post("/{drill}/stop")
async def stop(drill: str, actor: Controller, request: Request) -> Any:
    desk = _desk(request)
    player = desk.get(drill)
    player.stop()
    task = desk.running.get(drill)
    if task is not None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 10)
    return player.status()


def _report(player: Player) -> dict[str, Any]:
    if player.report is not None:
        return player.report
    if player.state in (State.READY,):
        raise NotFound(f"drill '{player.drill}' has not started yet")
    return report_from_dir(player.data)


@router.get("/{drill}/report")
async def report(drill: str, actor: Controller, request: Request) -> Any:
    return _report(_desk(request).get(drill))


@router.get("/{drill}/report.html", response_class=HTMLResponse)
async def report_page(drill: str, actor: Controller, request: Request, hub: CurrentHub) -> Any:
    found = _report(_desk(request).get(drill))
    names = {code: j.name_zh for code, j in hub.region.jurisdictions.items()}
    return HTMLResponse(render(found, names))
