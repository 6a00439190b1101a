"""``GET /api/v1/resources/holds``: the caller's requests and commitments, and its approval queue.

``mine``: holds whose requesting partner is the caller's jurisdiction (or one it speaks for);
``queue``: holds awaiting the caller's approval as a depot's owner. Coordinators and admins see
every hold in both lists. Newest first, at most ``limit`` of each.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.console.auth import CurrentActor, CurrentHub
from hub.console.routes.resources import _hold_json
from hub.model.region import speaks_for
from hub.registry.holds import COLUMNS, HoldState, hold_from_row
from hub.store.db import Tx

router = APIRouter(prefix="/api/v1/resources", tags=["resources"])


@router.get("/holds")
async def list_holds(
    hub: CurrentHub, actor: CurrentActor, limit: int = Query(default=200, ge=1, le=2000)
) -> Response:
    everything = actor.role in ("coordinator", "admin")
    mine_code = actor.jurisdiction

    def ours(code: str) -> bool:
        return everything or (mine_code is not None and speaks_for(mine_code, code))

    def read(tx: Tx) -> dict[str, list[dict[str, Any]]]:
        rows = tx.conn.execute(
            f"SELECT {COLUMNS} FROM holds ORDER BY created_ms DESC, id LIMIT ?", (limit * 20,)
        ).fetchall()
        holds = [hold_from_row(tuple(r)) for r in rows]
        mine = [h for h in holds if ours(h.partner)][:limit]
        queue = [h for h in holds if h.state is HoldState.HELD and ours(h.owner)][:limit]
        return {"mine": [_hold_json(h) for h in mine], "queue": [_hold_json(h) for h in queue]}

    return Response(orjson.dumps(await hub.db.run(read)), media_type="application/json")
