"""The page at ``/``: incidents and tasks as they arrive.

A read-only overview until the duty officers' console (with sign-in) replaces it. It shows what
every party of the region may see anyway; the hub binds to loopback by default.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from hub.console.auth import CurrentHub
from hub.model.envelope import format_time
from hub.store import incidents as incident_store
from hub.store import tasks as task_store

router = APIRouter(tags=["overview"])

_PAGE = files("hub.console").joinpath("static/overview.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    return HTMLResponse(_PAGE)


@router.get("/api/v1/overview")
async def overview(hub: CurrentHub, limit: int = Query(default=50, ge=1, le=500)) -> Response:
    def read(tx: Any) -> dict[str, Any]:
        rows = incident_store.recent_incidents(tx.conn, limit)
        tasks = task_store.list_tasks(tx.conn, limit=limit * 3)
        return {
            "incidents": [
                {
                    "thread": r.thread,
                    "version": r.version,
                    "received": format_time(r.received_ms),
                    "incident": orjson.Fragment(r.body),
                }
                for r in rows
            ],
            "tasks": [t.model_dump(mode="json") for t in tasks],
        }

    data = await hub.db.run(read)
    names = {code: j.name_zh for code, j in hub.region.jurisdictions.items()}
    data["names"] = names
    return Response(orjson.dumps(data), media_type="application/json")
