"""EDXL-RM messages ⇄ the registry's request lines: what a request's lines say as a message
(export), and a received message applied as the steps it carries (import).

Export picks the lines a message speaks for: a ResponseToRequestResource the lines answered, a
CommitResource the lines committed (or further), and so on; messages sent by an owner carry one
owner's lines. Import of a RequestResource makes the request (every line held or none); of any
other message, takes its step on each line it names, in one transaction: all or none.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.codecs.edxl_rm import MessageType, RmLine, RmMessage
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
_SHOWN: dict[MessageType, set[LineState]] = {
    MessageType.REQUEST: set(LineState),
    MessageType.RESPONSE: {_S.ACCEPTED, _S.PROVISIONAL, _S.DECLINED, *_AFTER_ANSWER},
    MessageType.REQUISITION: _AFTER_ANSWER,
    MessageType.COMMIT: _AFTER_COMMIT,
    MessageType.RELEASE: {_S.RELEASED, _S.RETURN_REQUESTED, _S.RETURNED},
    MessageType.RETURN: {_S.RETURN_REQUESTED, _S.RETURNED},
}
BY_OWNER = frozenset({MessageType.RESPONSE, MessageType.COMMIT, MessageType.RETURN})
STEP_OF = {
    MessageType.RESPONSE: Step.RESPOND,
    MessageType.REQUISITION: Step.REQUISITION,
    MessageType.COMMIT: Step.COMMIT,
    MessageType.RELEASE: Step.RELEASE,
    MessageType.RETURN: Step.REQUEST_RETURN,
}


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
    quantity = line.committed if kind in (MessageType.COMMIT, MessageType.RETURN) else line.answered
    response = _response(line.state) if kind is MessageType.RESPONSE else None
    return RmLine(s.line_no, line.item, quantity, s.depot, response=response)


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
    return RmMessage(
        type=kind,
        message_id=first.client_id if kind is MessageType.REQUEST else (
            f"{first.client_id}:{kind.value}:{sender}"
        ),
        sent=format_time(now_ms),
        requester=first.line.requester,
        lines=tuple(_rm_line(kind, s) for s in chosen),
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
