"""``/api/v1/audit``: what transports refused, reported to the hub's audit topic."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from hub.console.auth import CurrentAdapter, CurrentHub
from hub.errors import NotAllowed
from hub.intake.service import Refusal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.post("/refusals", status_code=202)
async def report_refusal(report: Refusal, hub: CurrentHub, adapter: CurrentAdapter) -> Response:
    """A refusal seen by a transport (the MQTT broker denying a city's publish), reported with
    the refused credential's own token; recorded once per report id as ``intake.refused``."""
    if report.credential != adapter.jurisdiction:
        raise NotAllowed(
            f"adapter '{adapter.name}' speaks for {adapter.jurisdiction}; it cannot report "
            f"refusals of credential {report.credential}"
        )
    new = await hub.intake.record_refusal(adapter, report)
    body = {"id": report.id, "recorded": True, "duplicate": not new}
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")
