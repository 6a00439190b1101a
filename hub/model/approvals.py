"""Approval requests to the regional coordinator, and what became of them (pure data).

A playbook's ``approval`` step holds the tasks of the steps after it until a coordinator decides.
``approval.requested`` carries the question and every held task; ``approval.extended`` the tasks
an Update added while it was pending; ``approval.approved``,
``approval.rejected``, ``approval.expired`` and ``approval.cancelled`` say what became of it and
which tasks it issued (none when rejected, cancelled, or expired with ``on_expiry: cancel``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from pydantic import Field

from hub.model.payload import Payload as _Payload
from hub.model.task import Task


class ApprovalState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class OnExpiry(StrEnum):
    """What happens when nobody decided before the request expires."""

    PROCEED = "proceed"
    CANCEL = "cancel"


APPROVAL_REQUESTED = "approval.requested"
APPROVAL_EXTENDED = "approval.extended"

APPROVAL_DECIDED_TYPES: Mapping[ApprovalState, str] = MappingProxyType(
    {
        ApprovalState.APPROVED: "approval.approved",
        ApprovalState.REJECTED: "approval.rejected",
        ApprovalState.EXPIRED: "approval.expired",
        ApprovalState.CANCELLED: "approval.cancelled",
    }
)
"""Final state → the event type that announces it."""


class ApprovalRequested(_Payload):
    """A coordinator is asked to approve the tasks a playbook's approval step holds; unless
    someone decides by ``expires``, ``on_expiry`` applies."""

    approval: str
    incident: str = Field(description="the incident thread")
    playbook: str
    version: int
    step: str
    approver: str = Field(description="the role that may decide: regional_coordinator")
    question_zh: str
    question_en: str
    expires: str
    on_expiry: OnExpiry
    tasks: list[Task] = Field(description="the held tasks, as they will be issued if approved")


class ApprovalExtended(_Payload):
    """An Update of the incident reached more targets while the request was pending: ``tasks``
    joined the held tasks (a decision now issues them too, or none of them)."""

    approval: str
    incident: str = Field(description="the incident thread")
    playbook: str
    step: str
    by: str = Field(description="the sender of the Update")
    at: str = Field(description="when the hub received the Update")
    tasks: list[Task] = Field(description="the held tasks it added")


class ApprovalDecided(_Payload):
    """What became of an approval request: ``state`` is the final state, ``by`` who decided
    (a coordinator's name, or 'hub' for an expiry or a cancelled incident), ``issued`` the ids
    of the held tasks it issued."""

    approval: str
    incident: str
    playbook: str
    step: str
    state: ApprovalState
    by: str
    reason: str | None = None
    at: str
    issued: list[str] = Field(default_factory=list)
