"""``/api/v1/incidents``: the intake for adapters, and reading incidents back."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hub.console.auth import CurrentAdapter, CurrentHub
from hub.console.problems import problem
from hub.errors import InvalidInput, NotFound
from hub.intake.service import parse_incident
from hub.model.envelope import format_time
from hub.model.incident import lane_for
from hub.store import incidents as store

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

_JSON_TYPES = ("application/json", "application/cap+json")
_XML_TYPES = ("application/cap+xml", "application/xml", "text/xml")


@router.post("", status_code=202)
async def report_incident(request: Request, hub: CurrentHub, adapter: CurrentAdapter) -> Response:
    """Accept a canonical incident (CAP 1.2 as JSON) from an adapter."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media in _XML_TYPES:
        return problem(
            415,
            "Unsupported media type",
            "CAP XML is not accepted yet: the CAP XML codec is tracked as its own issue; "
            "send the canonical JSON form (application/json)",
        )
    if media not in _JSON_TYPES:
        return problem(
            415, "Unsupported media type", f"'{media}' is not accepted; send application/json"
        )
    body = await request.body()
    if len(body) > hub.settings.max_body_bytes:
        return problem(
            413, "Too large", f"body of {len(body)} bytes exceeds {hub.settings.max_body_bytes}"
        )
    try:
        incident = parse_incident(body)
    except InvalidInput:
        hub.metrics.incidents_refused.labels("invalid").inc()
        raise
    receipt = await hub.intake.report(incident, adapter)
    if not receipt.duplicate:
        hub.metrics.incidents_accepted.labels(lane_for(incident.status).value).inc()
    content = orjson.dumps(
        {
            "identifier": receipt.identifier,
            "sender": receipt.sender,
            "thread": receipt.thread,
            "version": receipt.version,
            "event": receipt.event,
            "received": receipt.received,
        }
    )
    headers = {"Location": f"/api/v1/incidents/{receipt.identifier}?sender={receipt.sender}"}
    if receipt.duplicate:
        headers["Liandong-Duplicate"] = "true"
    return Response(content, status_code=202, media_type="application/json", headers=headers)


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
    adapter: CurrentAdapter,
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
