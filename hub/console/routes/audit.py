"""``/api/v1/audit``: what transports refused, reported to the hub's audit topic, and what an
adapter could not read, kept on the dead-letter topic. Adapters only (bearer token): a
console user gets 401 here."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hub.console.auth import CurrentAdapter, CurrentHub
from hub.errors import InvalidInput, NotAllowed
from hub.intake.deadletters import KEPT_BYTES
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


class Unreadable(BaseModel):
    """A message an adapter received from its city system and could not read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Literal["incidents", "answers", "any"] = Field(description="where it arrived")
    codec: str = Field(max_length=40, description="the adapter's codec: cap, dialect, ...")
    media_type: str | None = Field(default=None, max_length=100)
    reason: str = Field(min_length=1, max_length=2000, description="what the codec said")
    size: int = Field(ge=0, description="the message's size in bytes")
    payload_base64: str = Field(
        max_length=(KEPT_BYTES * 4) // 3 + 4, description=f"its first {KEPT_BYTES} bytes"
    )


@router.post("/unreadable", status_code=202)
async def report_unreadable(
    report: Unreadable, hub: CurrentHub, adapter: CurrentAdapter
) -> Response:
    """Keep what a city sent that its adapter's codec refused (malformed JSON, invalid CAP, a
    GCJ-02 position...) on ``liandong.deadletter.v1`` with the reason; once per distinct body."""
    try:
        payload = base64.b64decode(report.payload_base64, validate=True)
    except binascii.Error as exc:
        raise InvalidInput(f"payload_base64 is not base64: {exc}") from exc
    new = await hub.deadletters.record(
        adapter,
        route=f"adapter {report.codec} codec, {report.channel}",
        media_type=report.media_type,
        body=payload,
        size=max(report.size, len(payload)),
        reason=report.reason,
    )
    body = {"recorded": True, "duplicate": not new}
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")
