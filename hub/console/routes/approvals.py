"""``/api/v1/approvals``: what playbooks' approval steps ask of the regional coordinator.

Anyone signed in (or an adapter) may read them; only a coordinator may approve or reject. Anyone
else gets 403 and nothing changes. Approving issues the held tasks in the same transaction;
approving an approved request again is answered as success; any other second decision is 409.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hub.console.auth import Actor, CurrentActor, CurrentHub, require_role
from hub.engine.approvals import COORDINATOR, ApprovalService
from hub.model.approvals import ApprovalState
from hub.model.envelope import format_time
from hub.store.approvals import Approval

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])

Coordinator = Annotated[Actor, Depends(require_role(COORDINATOR))]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)


def _service(hub: Any) -> ApprovalService:
    service: ApprovalService = hub.escalator.approvals
    return service


def as_json(a: Approval) -> dict[str, Any]:
    return {
        "id": a.id,
        "incident": a.incident,
        "sender": a.sender,
        "lane": a.lane.value,
        "playbook": a.playbook,
        "version": a.version,
        "step": a.step,
        "approver": a.approver,
        "question": {"zh": a.question_zh, "en": a.question_en},
        "requested": format_time(a.requested_ms),
        "expires": format_time(a.expires_ms),
        "on_expiry": a.on_expiry.value,
        "state": a.state.value,
        "tasks": [h.task.model_dump(mode="json") for h in a.held],
        "decided_by": a.decided_by,
        "decided": None if a.decided_ms is None else format_time(a.decided_ms),
        "reason": a.reason,
    }


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json")


@router.get("")
async def list_approvals(
    hub: CurrentHub,
    actor: CurrentActor,
    state: ApprovalState | None = Query(default=None, description="requested, approved, ..."),
    incident: str | None = Query(default=None, description="the incident thread"),
    limit: int = Query(default=500, ge=1, le=5000),
) -> Response:
    """Approval requests, the soonest to expire first."""
    found = await _service(hub).find(state, incident, limit)
    return _json({"approvals": [as_json(a) for a in found]})


@router.get("/{approval_id}")
async def get_approval(approval_id: str, hub: CurrentHub, actor: CurrentActor) -> Response:
    return _json(as_json(await _service(hub).get(approval_id)))


@router.post("/{approval_id}/approve")
async def approve(
    approval_id: str, hub: CurrentHub, actor: Coordinator, body: Decision | None = None
) -> Response:
    """Approve: the held tasks are issued now (their deadlines count from now)."""
    reason = body.reason if body else None
    done = await _service(hub).approve(approval_id, by=actor.by, role=actor.role, reason=reason)
    return _json(as_json(done))


@router.post("/{approval_id}/reject")
async def reject(
    approval_id: str, hub: CurrentHub, actor: Coordinator, body: Decision | None = None
) -> Response:
    """Reject, with a reason (400 without one): none of the held tasks is issued."""
    reason = (body.reason if body else None) or ""
    done = await _service(hub).reject(approval_id, by=actor.by, role=actor.role, reason=reason)
    return _json(as_json(done))
