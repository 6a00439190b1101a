"""``GET /api/v1/overview``: the recent incidents and tasks, for the console's board and map.

The console page itself is served at ``/`` by ``hub.console.routes.pages``. Every signed-in user
and every adapter reads the regional picture; changing anything is done elsewhere.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.console.auth import CurrentActor, CurrentHub
from hub.model.envelope import format_time
from hub.store import incidents as incident_store
from hub.store import tasks as task_store

router = APIRouter(tags=["overview"])


@router.get("/api/v1/overview")
async def overview(
    hub: CurrentHub, actor: CurrentActor, limit: int = Query(default=50, ge=1, le=500)
) -> Response:
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
