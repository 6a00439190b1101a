"""``/api/v1/resources/rm-*``: resource requests after EDXL-RM 1.0, line by line.

``POST /rm-requests`` holds every line or none (the requester is the actor's jurisdiction);
``POST /rm-lines/{id}/{step}`` takes one step of the message sequence (respond, requisition,
commit, dispatch, arrive, release, request-return, returned). Each step belongs to one party of
the line: the owner answers, commits, dispatches, asks for and confirms the return; the
requester requisitions and releases; either reports arrival. Anyone else gets 403 and nothing
changes. ``GET /rm-requests/{requester}/{id}`` shows the lines to anyone signed in (the
regional picture is shared, as balances are), and ``.../edxl-rm?message=...`` the request as an
EDXL-RM XML message.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hub.codecs import edxl_rm
from hub.console.auth import CurrentActor, CurrentHub
from hub.errors import InvalidInput
from hub.registry.catalogue import supply
from hub.registry.exchange import LineAsk, Move, ResourceExchange, Step
from hub.registry.lines import StoredLine
from hub.registry.rm_messages import message_of
from hub.registry.rm_state import ResponseType

router = APIRouter(prefix="/api/v1/resources", tags=["resources"])

_ID = r"^[A-Za-z0-9._:-]+$"


class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    depot: str = Field(min_length=1, max_length=100)
    item: str
    quantity: int = Field(gt=0, le=10_000_000)
    agreement: str = Field(min_length=1, max_length=200)
    clause: str | None = Field(default=None, max_length=20)
    needed_by: str = Field(min_length=1, max_length=40, description="ISO 8601 with offset")
    deliver_to: str = Field(min_length=1, max_length=500)


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request: str = Field(min_length=1, max_length=100, pattern=_ID)
    """The client's id for this request (its EDXL-RM MessageID); a retry gets the same lines."""
    lines: list[AskBody] = Field(min_length=1, max_length=100)


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: Literal["Accept", "Decline", "Provisional"] | None = None
    quantity: int | None = Field(default=None, ge=0, le=10_000_000)


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json")


def line_json(s: StoredLine) -> dict[str, Any]:
    line = s.line
    return {
        "id": line.id,
        "request": s.client_id,
        "line": s.line_no,
        "depot": s.depot,
        "item": line.item,
        "quantity": line.quantity,
        "needed_by": line.needed_by,
        "deliver_to": line.deliver_to,
        "requester": line.requester,
        "owner": line.owner,
        "state": line.state.value,
        "answered": line.answered,
        "committed": line.committed,
        "hold": s.hold,
    }


def _item(item: str) -> str:
    try:
        return supply(item).id
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


@router.post("/rm-requests")
async def make_request(body: RequestBody, hub: CurrentHub, actor: CurrentActor) -> Response:
    """A RequestResource: every line held, or none (409 naming each refused line's clause)."""
    requester = actor.require_jurisdiction("request resources")
    asks = [
        LineAsk(x.depot, _item(x.item), x.quantity, x.agreement, x.clause, x.needed_by,
                x.deliver_to)
        for x in body.lines
    ]  # fmt: skip
    made = await ResourceExchange(hub.registry).request(requester, body.request, asks, actor.by)
    return _json({"request": body.request, "requester": requester,
                  "lines": [line_json(s) for s in made]})  # fmt: skip


@router.get("/rm-requests/{requester}/{request}")
async def show_request(
    requester: str, request: str, hub: CurrentHub, actor: CurrentActor
) -> Response:
    """The request's lines (everyone signed in reads the regional picture)."""
    found = await ResourceExchange(hub.registry).request_lines(requester, request)
    return _json({"request": request, "requester": requester,
                  "lines": [line_json(s) for s in found]})  # fmt: skip


@router.get("/rm-requests/{requester}/{request}/edxl-rm")
async def export_request(
    requester: str,
    request: str,
    hub: CurrentHub,
    actor: CurrentActor,
    message: edxl_rm.MessageType = Query(default=edxl_rm.MessageType.REQUEST),
    owner: str | None = Query(default=None, description="one owner's lines (owner messages)"),
) -> Response:
    """The request (or its commitments, deployment status, ...) as one EDXL-RM 1.0 XML
    message."""
    found = await ResourceExchange(hub.registry).request_lines(requester, request)
    xml = edxl_rm.encode(message_of(message, found, hub.clock.now_ms(), owner))
    return Response(xml, media_type="application/xml")


@router.post("/rm-lines/{line_id}/{step}")
async def take_step(
    line_id: str, step: Step, hub: CurrentHub, actor: CurrentActor, body: StepBody | None = None
) -> Response:
    """One step on one line, by the party it belongs to (403 otherwise; nothing changes)."""
    who = actor.require_jurisdiction(f"{step.value} a resource line")
    given = body or StepBody()
    move = Move(step, None if given.answer is None else ResponseType(given.answer), given.quantity)
    moved = await ResourceExchange(hub.registry).move(line_id, move, who, actor.by)
    return _json(line_json(moved))
