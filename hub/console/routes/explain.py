"""``GET /api/v1/incidents/{identifier}/explain``: which playbooks matched a stored incident and
why, which did not and why not, and the tasks they plan (the same answer as ``liandong
playbooks explain``). Any adapter or signed-in user may ask (it changes nothing)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.console.auth import CurrentActor, CurrentHub
from hub.engine.explain import explain
from hub.errors import InvalidInput, NotFound
from hub.model.incident import Incident, lane_for
from hub.store import incidents as store

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.get("/{identifier}/explain")
async def explain_incident(
    identifier: str,
    hub: CurrentHub,
    actor: CurrentActor,
    sender: str | None = Query(default=None),
) -> Response:
    """Explain the playbooks' verdicts on one stored incident message (pure: nothing is sent)."""

    def read(tx: Any) -> store.StoredIncident:
        rows = store.find_by_identifier(tx.conn, identifier)
        if sender is not None:
            rows = [r for r in rows if r.sender == sender]
        if not rows:
            raise NotFound(f"no incident with identifier '{identifier}'")
        if len(rows) > 1:
            raise InvalidInput(
                f"identifier '{identifier}' was used by several senders "
                f"({', '.join(r.sender for r in rows)}); add ?sender=CODE"
            )
        return rows[0]

    row = await hub.db.run(read)
    incident = Incident.model_validate_json(row.body)
    told = explain(
        incident,
        thread=row.thread,
        cause=row.event_id,
        reported_ms=row.received_ms,
        lane=lane_for(incident.status),
        playbooks=hub.playbooks,
        region=hub.region,
    )
    return Response(orjson.dumps(told.to_json()), media_type="application/json")
