"""The life of one resource request line, after OASIS EDXL-RM 1.0's message sequence.

RequestResource → ResponseToRequestResource (accept, decline or provisional, with a quantity) →
RequisitionResource → CommitResource → ReportResourceDeploymentStatus (en route, arrived) →
ReleaseResource → RequestReturn → returned. Pure: a line and a move in, the next line out, or
an error saying which rule the move breaks. The rules are enforced, not logged:

- a response, and a commitment, never exceed the quantity requested on the line;
- a provisional answer must become accept or decline before the line is requisitioned;
- nothing is released before it has arrived;
- only the owner (the party that answered) may request a return; only the requester
  requisitions and releases.

Parties are jurisdiction codes; a city's credential acts for its districts (``speaks_for``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from hub.errors import Conflict, InvalidInput, NotAllowed
from hub.model.region import speaks_for


class LineState(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    PROVISIONAL = "provisional"
    DECLINED = "declined"
    REQUISITIONED = "requisitioned"
    COMMITTED = "committed"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    RELEASED = "released"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"


class ResponseType(StrEnum):
    """EDXL-RM ``ResponseType`` values for a line."""

    ACCEPT = "Accept"
    DECLINE = "Decline"
    PROVISIONAL = "Provisional"


_ANSWERED = {
    ResponseType.ACCEPT: LineState.ACCEPTED,
    ResponseType.DECLINE: LineState.DECLINED,
    ResponseType.PROVISIONAL: LineState.PROVISIONAL,
}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a request: ``quantity`` of ``item`` needed by ``needed_by`` (ISO 8601) at
    ``deliver_to``, asked by ``requester`` of ``owner``."""

    id: str
    item: str
    quantity: int
    needed_by: str
    deliver_to: str
    requester: str
    owner: str
    state: LineState = LineState.REQUESTED
    answered: int = 0
    """The quantity of the latest response (0 for a decline)."""
    committed: int = 0

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise InvalidInput(f"line {self.id}: a request needs a positive quantity")


def _need(line: Line, move: str, *states: LineState) -> None:
    if line.state not in states:
        allowed = " or ".join(s.value for s in states)
        raise Conflict(f"line {line.id} is {line.state.value}: {move} needs it {allowed}")


def _by(line: Line, actor: str, party: str, move: str) -> None:
    if not speaks_for(actor, party):
        raise NotAllowed(f"line {line.id}: only {party} may {move}, not {actor}")


def respond(line: Line, actor: str, answer: ResponseType, quantity: int) -> Line:
    """The owner answers the line (again, while its answer is provisional)."""
    _by(line, actor, line.owner, "answer")
    _need(line, "a response", LineState.REQUESTED, LineState.PROVISIONAL)
    if answer is ResponseType.DECLINE:
        if quantity != 0:
            raise InvalidInput(f"line {line.id}: a decline offers 0, not {quantity}")
    elif not 0 < quantity <= line.quantity:
        raise InvalidInput(
            f"line {line.id}: a response offers 1 to {line.quantity} (requested), not {quantity}"
        )
    return dataclasses.replace(line, state=_ANSWERED[answer], answered=quantity)


def requisition(line: Line, actor: str) -> Line:
    """The requester confirms it wants what was accepted."""
    _by(line, actor, line.requester, "requisition")
    if line.state is LineState.PROVISIONAL:
        raise Conflict(
            f"line {line.id}: a provisional answer must become accept or decline before requisition"
        )
    _need(line, "requisition", LineState.ACCEPTED)
    return dataclasses.replace(line, state=LineState.REQUISITIONED)


def commit(line: Line, actor: str, quantity: int) -> Line:
    """The owner commits stock to the requisitioned line."""
    _by(line, actor, line.owner, "commit")
    _need(line, "a commitment", LineState.REQUISITIONED)
    if not 0 < quantity <= min(line.quantity, line.answered):
        raise InvalidInput(
            f"line {line.id}: {quantity} committed, but {line.quantity} requested and "
            f"{line.answered} accepted"
        )
    return dataclasses.replace(line, state=LineState.COMMITTED, committed=quantity)


def dispatched(line: Line, actor: str) -> Line:
    """Deployment status from the owner: the resource left, en route."""
    _by(line, actor, line.owner, "report it en route")
    _need(line, "en route", LineState.COMMITTED)
    return dataclasses.replace(line, state=LineState.EN_ROUTE)


def arrived(line: Line, actor: str) -> Line:
    """Deployment status from either party: the resource arrived where it was to go."""
    if not (speaks_for(actor, line.owner) or speaks_for(actor, line.requester)):
        raise NotAllowed(f"line {line.id}: only its parties report arrival, not {actor}")
    _need(line, "arrival", LineState.EN_ROUTE)
    return dataclasses.replace(line, state=LineState.ARRIVED)


def release(line: Line, actor: str) -> Line:
    """The requester no longer needs what arrived."""
    _by(line, actor, line.requester, "release")
    if line.state in (LineState.COMMITTED, LineState.EN_ROUTE):
        raise Conflict(f"line {line.id}: no release before arrival ({line.state.value})")
    _need(line, "release", LineState.ARRIVED)
    return dataclasses.replace(line, state=LineState.RELEASED)


def request_return(line: Line, actor: str) -> Line:
    """The owner asks for its resource back (after arrival)."""
    _by(line, actor, line.owner, "request a return")
    _need(line, "a return request", LineState.ARRIVED, LineState.RELEASED)
    return dataclasses.replace(line, state=LineState.RETURN_REQUESTED)


def returned(line: Line, actor: str) -> Line:
    """The owner confirms the resource is back."""
    _by(line, actor, line.owner, "confirm the return")
    _need(line, "a return", LineState.RELEASED, LineState.RETURN_REQUESTED)
    return dataclasses.replace(line, state=LineState.RETURNED)
