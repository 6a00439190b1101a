"""Payloads of the resource registry's events on ``liandong.resources.v1``.

Every ledger entry is announced as a past-tense fact (``stock.held``, ``stock.committed``, ...)
carrying the entry as recorded: who, when, why (request, partner, agreement clause). A request
the sharing policy refused is ``stock.refused`` with the reason, naming the clause.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hub.model.payload import Payload as _Payload

STOCK_EVENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "receipt": "stock.received",
        "hold": "stock.held",
        "hold_expired": "stock.hold_expired",
        "hold_released": "stock.released",
        "commit": "stock.committed",
        "dispatch": "stock.dispatched",
        "arrival": "stock.arrived",
        "return": "stock.returned",
        "consumption": "stock.consumed",
        "adjustment": "stock.adjusted",
    }
)
"""Ledger entry kind → event type."""

STOCK_REFUSED = "stock.refused"


class StockChanged(_Payload):
    """One ledger entry: ``entry`` is its position in the ledger, ``jurisdiction`` the depot's
    owner; ``on_hand_delta``/``held_delta`` what it did to the balance."""

    entry: int
    depot: str
    jurisdiction: str
    item: str
    kind: str
    quantity: int
    on_hand_delta: int
    held_delta: int
    actor: str
    at: str
    reason: str | None = None
    hold: str | None = None
    request: str | None = None
    partner: str | None = None
    agreement: str | None = None
    clause: str | None = None


class StockRefused(_Payload):
    """A request for stock the sharing policy (or the stock itself) refused, and why."""

    request: str
    depot: str
    jurisdiction: str
    item: str
    quantity: int
    partner: str
    reason: str
    at: str
    agreement: str | None = None
    clause: str | None = None


STOCK_LOW = "stock.low"
RESOURCE_LINE_MOVED = "resource.line_moved"


class StockLow(_Payload):
    """Free stock (on hand − held) of an item at a depot fell under its minimum level; ``entry``
    is the ledger entry that took it under. Announced once per fall, not for every entry below."""

    entry: int
    depot: str
    jurisdiction: str
    item: str
    free: int
    minimum: int
    at: str


class ResourceLineMoved(_Payload):
    """A line of an EDXL-RM resource request changed state (``previous`` → ``state``) by the
    step ``message`` (the EDXL-RM message type: RequestResource, ResponseToRequestResource,
    RequisitionResource, CommitResource, ReportResourceDeploymentStatus, ReleaseResource,
    RequestReturn). ``request`` is the requester's id for the request, ``line`` the line's number
    in it (its ResourceInfoElementID); ``hold`` the stock set aside for it."""

    request: str
    line: int
    hold: str
    depot: str
    item: str
    quantity: int
    requester: str
    owner: str
    previous: str | None = None
    state: str
    answered: int
    committed: int
    message: str
    actor: str
    at: str
