"""``/api/v1/incidents``: the intake for adapters, and reading incidents back.

Reporting: adapters only (bearer token; a console user gets 401 here, the front door reads no
cookie). Reading: any adapter or signed-in user (the regional picture).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hub.console.auth import CurrentActor, CurrentHub
from hub.console.intake_http import report
from hub.errors import InvalidInput, NotFound
from hub.model.envelope import format_time
from hub.store import incidents as store

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.post("", status_code=202)
async def report_incident(request: Request) -> Response:
    """Accept a canonical incident (CAP 1.2 as JSON) from an adapter: 202 once durably stored.

    Served by ``hub.console.intake_http.FrontDoor`` in front of this app; this route gives the
    same answers where the app is mounted without it, and documents the route in OpenAPI.
    """
    answer = await report(
        request.app.state.hub,
        request.app.state.tokens,
        request.headers.get("content-type"),
        request.headers.get("authorization"),
        await request.body(),
    )
    return Response(
        answer.body, status_code=answer.status, media_type=answer.media_type, headers=answer.headers
    )


def _summary(row: store.StoredIncident) -> dict[str, Any]:
    return {
        "identifier": row.identifier,
        "sender": row.sender,
        "msgType": row.msg_type,
        "status": row.status,
        "version": row.version,
        "received": format_time(row.received_ms),
    }


@router.get("/{identifier}")
async def get_incident(
    identifier: str,
    hub: CurrentHub,
    actor: CurrentActor,
    sender: str | None = Query(default=None),
) -> Response:
    """One incident message with its thread's versions. ``sender`` disambiguates identifiers."""

    def read(tx: Any) -> tuple[store.StoredIncident, list[store.StoredIncident]]:
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
        return rows[0], store.thread_versions(tx.conn, rows[0].thread)

    row, versions = await hub.db.run(read)
    body = {
        "incident": orjson.Fragment(row.body),
        "thread": row.thread,
        "version": row.version,
        "received": format_time(row.received_ms),
        "versions": [_summary(v) for v in versions],
    }
    return Response(orjson.dumps(body), media_type="application/json")
