"""EDXL-RM messages ⇄ the registry's request lines: what a request's lines say as a message
(export), and a received message applied as the steps it carries (import).

Export picks the lines a message speaks for: a ResponseToRequestResource the lines answered, a
CommitResource the lines committed (or further), a ReportResourceDeploymentStatus the lines en
route (EnRoute) or arrived or further (Arrived), and so on; messages sent by an owner (a status
report is exported as the owner's) carry one owner's lines. Import of a RequestResource makes
the request (every line held or none); of any other message, takes its step on each line it
names, in one transaction: all or none. A status report takes the dispatch step on its EnRoute
lines and the arrival step on its Arrived lines, as its RespondingOrg (the owner), or as the
requester when it names none: only the owner dispatches, either party reports arrival.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.codecs.edxl_rm import DEPLOYMENT_STATUSES, MessageType, RmLine, RmMessage
from hub.errors import InvalidInput, NotFound
from hub.model.envelope import format_time
from hub.registry.exchange import LineAsk, Move, ResourceExchange, Step
from hub.registry.lines import StoredLine
from hub.registry.rm_state import LineState, ResponseType

_S = LineState
_AFTER_ANSWER = {_S.REQUISITIONED, _S.COMMITTED, _S.EN_ROUTE, _S.ARRIVED, _S.RELEASED,
                 _S.RETURN_REQUESTED, _S.RETURNED}  # fmt: skip
_AFTER_COMMIT = {_S.COMMITTED, _S.EN_ROUTE, _S.ARRIVED, _S.RELEASED, _S.RETURN_REQUESTED,
                 _S.RETURNED}  # fmt: skip
_AFTER_ARRIVAL = {_S.ARRIVED, _S.RELEASED, _S.RETURN_REQUESTED, _S.RETURNED}
_SHOWN: dict[MessageType, set[LineState]] = {
    MessageType.REQUEST: set(LineState),
    MessageType.RESPONSE: {_S.ACCEPTED, _S.PROVISIONAL, _S.DECLINED, *_AFTER_ANSWER},
    MessageType.REQUISITION: _AFTER_ANSWER,
    MessageType.COMMIT: _AFTER_COMMIT,
    MessageType.REPORT_STATUS: {_S.EN_ROUTE, *_AFTER_ARRIVAL},
    MessageType.RELEASE: {_S.RELEASED, _S.RETURN_REQUESTED, _S.RETURNED},
    MessageType.RETURN: {_S.RETURN_REQUESTED, _S.RETURNED},
}
BY_OWNER = frozenset(
    {MessageType.RESPONSE, MessageType.COMMIT, MessageType.REPORT_STATUS, MessageType.RETURN}
)
"""Messages exported as one owner's (a status report may also come from the requester)."""
STEP_OF = {
    MessageType.RESPONSE: Step.RESPOND,
    MessageType.REQUISITION: Step.REQUISITION,
    MessageType.COMMIT: Step.COMMIT,
    MessageType.RELEASE: Step.RELEASE,
    MessageType.RETURN: Step.REQUEST_RETURN,
}
EN_ROUTE, ARRIVED = DEPLOYMENT_STATUSES
DEPLOYMENT_STEP = {EN_ROUTE: Step.DISPATCH, ARRIVED: Step.ARRIVE}


def _response(state: LineState) -> str:
    if state is LineState.DECLINED:
        return "Decline"
    return "Provisional" if state is LineState.PROVISIONAL else "Accept"


def _rm_line(kind: MessageType, s: StoredLine) -> RmLine:
    line = s.line
    if kind is MessageType.REQUEST:
        return RmLine(
            s.line_no, line.item, line.quantity, s.depot, None, None, line.needed_by,
            line.deliver_to,
        )  # fmt: skip
    committed = (MessageType.COMMIT, MessageType.REPORT_STATUS, MessageType.RETURN)
    quantity = line.committed if kind in committed else line.answered
    response = _response(line.state) if kind is MessageType.RESPONSE else None
    status = None
    if kind is MessageType.REPORT_STATUS:
        status = EN_ROUTE if line.state is LineState.EN_ROUTE else ARRIVED
    return RmLine(s.line_no, line.item, quantity, s.depot, response=response, status=status)


def message_of(
    kind: MessageType, lines: Sequence[StoredLine], now_ms: int, owner: str | None = None
) -> RmMessage:
    """What ``lines`` (one request's) say as a ``kind`` message; ``owner`` picks one owner's
    lines for the messages an owner sends (needed when the lines have several owners)."""
    if not lines:
        raise NotFound("no lines to export")
    first = lines[0]
    chosen = [s for s in lines if s.line.state in _SHOWN[kind]]
    responder = None
    if kind in BY_OWNER:
        owners = sorted({s.line.owner for s in chosen})
        if owner is None and len(owners) > 1:
            raise InvalidInput(
                f"the lines have several owners ({', '.join(owners)}): "
                f"choose one for a {kind.value}"
            )
        responder = owner if owner is not None else (owners[0] if owners else None)
        chosen = [s for s in chosen if s.line.owner == responder]
    if not chosen:
        raise InvalidInput(f"no line of request '{first.client_id}' is ready for a {kind.value}")
    sender = responder or first.line.requester
    lines_out = tuple(_rm_line(kind, s) for s in chosen)
    message_id = f"{first.client_id}:{kind.value}:{sender}"
    if kind is MessageType.REQUEST:
        message_id = first.client_id
    elif kind is MessageType.REPORT_STATUS:  # reported again as the lines move on
        reported = {x.status for x in lines_out}
        message_id += "".join(f":{s}" for s in (EN_ROUTE, ARRIVED) if s in reported)
    return RmMessage(
        type=kind,
        message_id=message_id,
        sent=format_time(now_ms),
        requester=first.line.requester,
        lines=lines_out,
        responder=responder,
        originating=None if kind is MessageType.REQUEST else first.client_id,
    )  # fmt: skip


def _ask(line: RmLine) -> LineAsk:
    missing = [
        name
        for name, value in (
            ("the depot (Keyword urn:liandong:registry:depot)", line.depot),
            ("the agreement (Keyword urn:liandong:registry:agreement)", line.agreement),
            ("a RequestedArrival DateTime", line.needed_by),
            ("a RequestedArrival LocationDescription", line.deliver_to),
        )
        if value is None
    ]
    if missing:
        raise InvalidInput(f"line {line.element}: missing {', '.join(missing)}")
    assert line.depot and line.agreement and line.needed_by and line.deliver_to
    return LineAsk(
        line.depot, line.item, line.quantity, line.agreement, line.clause, line.needed_by,
        line.deliver_to,
    )  # fmt: skip


def _move(kind: MessageType, line: RmLine) -> Move:
    if kind is MessageType.REPORT_STATUS:
        deployment = DEPLOYMENT_STEP.get(line.status or "")
        if deployment is None:
            raise InvalidInput(
                f"line {line.element}: a deployment status is {EN_ROUTE} or {ARRIVED}, "
                f"not {line.status}"
            )
        return Move(deployment)
    step = STEP_OF[kind]
    if kind is MessageType.RESPONSE:
        return Move(step, ResponseType(line.response or ""), line.quantity)
    if kind is MessageType.COMMIT:
        return Move(step, quantity=line.quantity)
    return Move(step)


async def apply(exchange: ResourceExchange, message: RmMessage, actor: str) -> list[StoredLine]:
    """Take what ``message`` says: make the request, or take its step on each line it names."""
    if message.type is MessageType.REQUEST:
        asks = [_ask(line) for line in message.lines]
        return await exchange.request(message.requester, message.message_id, asks, actor)
    assert message.originating is not None  # the codec requires it on every other message
    stored = {s.line_no: s for s in await exchange.lines(message.requester, message.originating)}
    if not stored:
        raise NotFound(f"no resource request '{message.originating}' of {message.requester}")
    if message.type is MessageType.REPORT_STATUS:  # the owner's, or the requester's
        sender: str | None = message.responder or message.requester
    else:
        sender = message.responder if message.type in BY_OWNER else message.requester
    if sender is None:
        raise InvalidInput(f"a {message.type.value} needs a ContactInformation RespondingOrg")
    moves: list[tuple[str, Move]] = []
    for line in message.lines:
        found = stored.get(line.element)
        if found is None:
            raise InvalidInput(
                f"request '{message.originating}' has no line {line.element} "
                f"(it has {', '.join(str(n) for n in sorted(stored))})"
            )
        if found.line.item != line.item:
            raise InvalidInput(
                f"line {line.element} is for {found.line.item}, the message says {line.item}"
            )
        moves.append((found.line.id, _move(message.type, line)))
    return await exchange.move_lines(moves, sender, actor)
