"""``/api/v1/resources``: stock balances, allocation plans, and committing them as holds.

A plan is shown before anything changes; committing it holds every line or none. The requester
is always the actor's jurisdiction (an adapter's, or a duty officer's); only a depot's owner or a
regional coordinator approves a hold, and only the owner or the requester releases it. Balances
are read by any adapter or signed-in user; a coordinator or an administrator plans, requests and
releases for no jurisdiction. Anyone else gets 403 and nothing changes.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hub.console.auth import CurrentActor, CurrentHub
from hub.errors import InvalidInput, NotAllowed
from hub.model.envelope import format_time
from hub.registry.allocation import Plan, PlanLine
from hub.registry.catalogue import supply
from hub.registry.holds import Hold

router = APIRouter(prefix="/api/v1/resources", tags=["resources"])


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str
    quantity: int = Field(gt=0, le=10_000_000)
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)


class LineBody(BaseModel):
    # The plan's lines are posted back as shown; what the hub computes (distance, owner,
    # auto-commit) is recomputed, so those fields are ignored rather than refused.
    model_config = ConfigDict(extra="ignore")
    depot: str
    quantity: int = Field(gt=0)
    agreement: str
    clause: str


class CommitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    """The client's id for this request: a retry with the same id gets the same holds."""
    item: str
    lines: list[LineBody] = Field(min_length=1, max_length=100)


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _item(item: str) -> str:
    try:
        return supply(item).id
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "requester": plan.requester,
        "item": plan.item,
        "quantity": plan.quantity,
        "covered": plan.covered,
        "uncovered": plan.uncovered,
        "lines": [
            {
                "depot": line.depot,
                "owner": line.owner,
                "quantity": line.quantity,
                "distance_km": line.distance_km,
                "agreement": line.agreement,
                "clause": line.clause,
                "auto_commit": line.auto_commit,
            }
            for line in plan.lines
        ],
        "limits": [
            {"depot": x.depot, "reason": x.reason, "agreement": x.agreement, "clause": x.clause}
            for x in plan.limits
        ],
    }


def _hold_json(hold: Hold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "depot": hold.depot,
        "item": hold.item,
        "quantity": hold.quantity,
        "owner": hold.owner,
        "partner": hold.partner,
        "request": hold.request.partition("/")[2],
        "agreement": hold.agreement,
        "clause": hold.clause,
        "state": hold.state.value,
        "expires": None if hold.expires_ms is None else format_time(hold.expires_ms),
    }


@router.get("/balances")
async def list_balances(
    hub: CurrentHub,
    actor: CurrentActor,
    jurisdiction: str | None = Query(default=None, description="depots this code speaks for"),
    item: str | None = Query(default=None),
) -> Response:
    """Stock by depot and item: on hand, held, the depot's own floor and what is left above it."""
    found = await hub.registry.balances(jurisdiction, None if item is None else _item(item))
    return _json(
        {
            "balances": [
                {
                    "depot": d.id,
                    "jurisdiction": d.jurisdiction,
                    "name_zh": d.name_zh,
                    "name_en": d.name_en,
                    "lat": d.lat,
                    "lon": d.lon,
                    "item": b.item,
                    "on_hand": b.on_hand,
                    "held": b.held,
                    "floor": b.floor,
                    "available": b.available,
                }
                for d, b in found
            ]
        }
    )


@router.post("/plans")
async def make_plan(body: PlanBody, hub: CurrentHub, actor: CurrentActor) -> Response:
    """A plan for the actor's jurisdiction; nothing is held until it is committed."""
    requester = actor.require_jurisdiction("request stock")
    found = await hub.registry.plan(requester, _item(body.item), body.quantity, body.lat, body.lon)
    return _json(_plan_json(found))


@router.post("/requests")
async def commit_plan(body: CommitBody, hub: CurrentHub, actor: CurrentActor) -> Response:
    """Hold every line of a plan, or none (409 naming what the policy now refuses)."""
    requester = actor.require_jurisdiction("request stock")
    lines = [
        PlanLine(x.depot, "", x.quantity, 0.0, x.agreement, x.clause, False) for x in body.lines
    ]
    holds = await hub.registry.commit_plan(
        requester, body.request, _item(body.item), lines, actor.by
    )
    return _json({"request": body.request, "holds": [_hold_json(h) for h in holds]})


@router.post("/holds/{hold_id}/approve")
async def approve_hold(hold_id: str, hub: CurrentHub, actor: CurrentActor) -> Response:
    """The depot's owner (its adapter or duty officer) or a regional coordinator approves a
    hold awaiting approval."""
    hold = await hub.registry.get_hold(hold_id)
    if not (actor.role == "coordinator" or actor.may_act_for(hold.owner)):
        raise NotAllowed(
            f"hold {hold_id} is {hold.owner}'s (or a coordinator's) to approve, not "
            f"{actor.jurisdiction or actor.role}'s"
        )
    await hub.registry.approve(hold_id, actor.by)
    return _json(_hold_json(await hub.registry.get_hold(hold_id)))


@router.post("/holds/{hold_id}/release")
async def release_hold(
    hold_id: str, body: ReleaseBody, hub: CurrentHub, actor: CurrentActor
) -> Response:
    """The owner (refusing) or the requester (no longer needed) gives the stock back."""
    hold = await hub.registry.get_hold(hold_id)
    if not (actor.may_act_for(hold.owner) or actor.may_act_for(hold.partner)):
        raise NotAllowed(
            f"hold {hold_id} is between {hold.owner} and {hold.partner}, not "
            f"{actor.jurisdiction or actor.role}"
        )
    await hub.registry.release(hold_id, actor.by, body.reason)
    return _json(_hold_json(await hub.registry.get_hold(hold_id)))
