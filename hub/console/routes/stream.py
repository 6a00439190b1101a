"""``GET /api/v1/stream``: the live events the caller may see, as server-sent events.

One reader per hub process (``hub.console.live``) follows every event of the region; each
connected console gets the ones its actor may see. Frames: ``event: <type>`` and ``data:`` the
event (type, id, time, lane, jurisdiction, data); ``reset`` when a client fell too far behind
(reload and reconnect).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from hub.console.auth import CurrentActor
from hub.console.live import jurisdiction_filter, stream_of
from hub.model.region import speaks_for

router = APIRouter(prefix="/api/v1", tags=["console"])


@router.get("/stream")
async def stream(request: Request, actor: CurrentActor) -> StreamingResponse:
    """Server-sent events: incidents for everyone; tasks and stock for their parties."""
    everything = actor.role in ("coordinator", "admin")
    accept = jurisdiction_filter(actor.jurisdiction, speaks_for, everything)
    live = stream_of(request.app.state)
    return StreamingResponse(
        live.subscribe(accept),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
