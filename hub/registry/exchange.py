"""The EDXL-RM 1.0 message sequence on real stock: each step moves a request line through
``rm_state`` and the line's hold through the ledger, in one transaction with their events.

- RequestResource: every line is held (``Registry``'s policy and guard), or none is; a line
  under the auto-commit threshold starts accepted (the policy answered for the owner).
- ResponseToRequestResource (owner): a decline gives the stock back; an accept for less keeps
  only what was accepted; a provisional answer keeps the whole line held until it is settled.
- RequisitionResource (requester); CommitResource (owner): the hold is committed, for the
  quantity committed.
- ReportResourceDeploymentStatus: dispatched (owner: the stock leaves the depot), arrived
  (either party).
- ReleaseResource (requester, only after arrival); RequestReturn (owner); returned (owner: what
  comes back re-enters the depot's stock).

Who may take a step is the state machine's rule (``NotAllowed``: nothing changes). A step on a
line whose hold expired or was released is refused: the stock is no longer set aside.
Arrival and release do not touch the ledger: the ledger counts depots' stock, and what was
dispatched left it until it is returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from hub.errors import Conflict, InvalidInput, NotFound
from hub.model.envelope import format_time
from hub.model.region import speaks_for
from hub.model.resources import RESOURCE_LINE_MOVED, ResourceLineMoved
from hub.registry import holds as hold_store
from hub.registry import ledger
from hub.registry import rm_state as rm
from hub.registry.catalogue import supply
from hub.registry.holds import Hold, HoldState
from hub.registry.lines import (
    StoredLine,
    get_line,
    insert_line,
    lines_of_request,
    requests_named,
    save_move,
)
from hub.registry.rm_state import Line, LineState, ResponseType
from hub.registry.service import PlanNoLongerHolds, Registry, StockRequest, request_key
from hub.store.db import Tx


class Step(StrEnum):
    RESPOND = "respond"
    REQUISITION = "requisition"
    COMMIT = "commit"
    DISPATCH = "dispatch"
    ARRIVE = "arrive"
    RELEASE = "release"
    REQUEST_RETURN = "request-return"
    RETURNED = "returned"


REQUEST_MESSAGE = "RequestResource"
MESSAGE_OF: Mapping[Step, str] = {
    Step.RESPOND: "ResponseToRequestResource",
    Step.REQUISITION: "RequisitionResource",
    Step.COMMIT: "CommitResource",
    Step.DISPATCH: "ReportResourceDeploymentStatus",
    Step.ARRIVE: "ReportResourceDeploymentStatus",
    Step.RELEASE: "ReleaseResource",
    Step.REQUEST_RETURN: "RequestReturn",
    Step.RETURNED: "ReportResourceDeploymentStatus",
}
"""The EDXL-RM message that carries each step."""


@dataclass(frozen=True, slots=True)
class LineAsk:
    """One line of a request: ``quantity`` of ``item`` from ``depot`` under an agreement's
    resources clause, needed by ``needed_by`` (ISO 8601 with offset) at ``deliver_to``."""

    depot: str
    item: str
    quantity: int
    agreement: str
    clause: str | None
    needed_by: str
    deliver_to: str


@dataclass(frozen=True, slots=True)
class Move:
    step: Step
    answer: ResponseType | None = None
    """For ``respond``: accept, decline or provisional."""
    quantity: int | None = None
    """For ``respond`` and ``commit``: how many; for ``returned``: how many came back (default:
    all that was committed)."""


def check_needed_by(text: str) -> str:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"needed-by '{text}' is not an ISO 8601 date and time") from None
    if when.tzinfo is None:
        raise InvalidInput(f"needed-by '{text}' has no UTC offset")
    return text


def _apply(line: Line, move: Move, actor: str) -> Line:
    match move.step:
        case Step.RESPOND:
            if move.answer is None:
                raise InvalidInput("a response needs an answer: Accept, Decline or Provisional")
            quantity = 0 if move.answer is ResponseType.DECLINE else move.quantity
            if quantity is None:
                raise InvalidInput(f"a {move.answer.value} response needs a quantity")
            return rm.respond(line, actor, move.answer, quantity)
        case Step.REQUISITION:
            return rm.requisition(line, actor)
        case Step.COMMIT:
            if move.quantity is None:
                raise InvalidInput("a commitment needs a quantity")
            return rm.commit(line, actor, move.quantity)
        case Step.DISPATCH:
            return rm.dispatched(line, actor)
        case Step.ARRIVE:
            return rm.arrived(line, actor)
        case Step.RELEASE:
            return rm.release(line, actor)
        case Step.REQUEST_RETURN:
            return rm.request_return(line, actor)
        case Step.RETURNED:
            return rm.returned(line, actor)


class ResourceExchange:
    """EDXL-RM requests and their steps over a ``Registry`` (its database, clock and events)."""

    def __init__(self, registry: Registry) -> None:
        self._reg = registry

    async def request(
        self, requester: str, client_id: str, asks: Sequence[LineAsk], actor: str
    ) -> list[StoredLine]:
        """Hold every line, or none (``PlanNoLongerHolds`` naming each refused line and its
        clause). A retry with the same id and lines gets the same lines back."""
        if not asks:
            raise InvalidInput("a request needs at least one line")
        pairs = [(a.depot, a.item) for a in asks]
        if len(set(pairs)) != len(pairs):
            raise InvalidInput("a request has one line per depot and item")
        for ask in asks:
            supply(ask.item)
            check_needed_by(ask.needed_by)
            if not ask.deliver_to.strip():
                raise InvalidInput(f"line for {ask.depot}: deliver-to is empty")
        key = request_key(requester, client_id)
        return await self._reg._db.run(lambda tx: self._request_in(tx, key, requester, asks, actor))

    def _request_in(
        self, tx: Tx, key: str, requester: str, asks: Sequence[LineAsk], actor: str
    ) -> list[StoredLine]:
        existing = lines_of_request(tx.conn, key)
        if existing:
            if [(s.depot, s.line.item, s.line.quantity) for s in existing] != [
                (a.depot, a.item, a.quantity) for a in asks
            ]:
                raise Conflict(f"request '{key}' was already made with other lines")
            return existing
        if hold_store.holds_of_request(tx.conn, key):
            raise Conflict(f"request '{key}' was already made as a plan, without EDXL-RM lines")
        reg, now = self._reg, self._reg._clock.now_ms()
        made: list[StoredLine] = []
        refused: list[str] = []
        for n, ask in enumerate(asks, start=1):
            depot = reg._depot(tx, ask.depot)
            if speaks_for(requester, depot.jurisdiction):
                raise InvalidInput(f"depot {ask.depot} is {requester}'s own, not a partner's")
            answer = reg._request_in(
                tx,
                StockRequest(
                    key, ask.depot, ask.item, ask.quantity, requester, ask.agreement, actor,
                    ask.clause,
                ),
            )  # fmt: skip
            if answer.hold is None:
                refused.append(f"line {n} ({ask.depot}): {answer.refusal}")
                continue
            auto = answer.hold.state is HoldState.COMMITTED
            line = Line(
                answer.hold.id, ask.item, ask.quantity, ask.needed_by, ask.deliver_to, requester,
                depot.jurisdiction, LineState.ACCEPTED if auto else LineState.REQUESTED,
                ask.quantity if auto else 0,
            )  # fmt: skip
            stored = StoredLine(line, key, n, answer.hold.id, ask.depot, 0, now)
            insert_line(tx.conn, stored)
            self._announce(tx, stored, None, REQUEST_MESSAGE, actor)
            made.append(stored)
        if refused:  # raising rolls back every line and hold
            raise PlanNoLongerHolds("the request cannot be held: " + "; ".join(refused))
        return made

    async def lines(self, requester: str, client_id: str) -> list[StoredLine]:
        key = request_key(requester, client_id)
        return await self._reg._db.run(lambda tx: lines_of_request(tx.conn, key))

    async def requests_named(self, client_id: str) -> list[str]:
        """The request keys (``requester/id``) whose client id is ``client_id``."""
        return await self._reg._db.run(lambda tx: requests_named(tx.conn, client_id))

    async def line(self, line_id: str) -> StoredLine:
        return await self._reg._db.run(lambda tx: get_line(tx.conn, line_id))

    async def request_lines(self, requester: str, client_id: str) -> list[StoredLine]:
        """The request's lines, or ``NotFound``."""
        found = await self.lines(requester, client_id)
        if not found:
            raise NotFound(f"no resource request '{client_id}' of {requester}")
        return found

    async def move(self, line_id: str, move: Move, jurisdiction: str, actor: str) -> StoredLine:
        """Take one step on one line, as ``jurisdiction``."""
        return await self._reg._db.run(
            lambda tx: self._move_in(tx, line_id, move, jurisdiction, actor)
        )

    async def move_lines(
        self, moves: Sequence[tuple[str, Move]], jurisdiction: str, actor: str
    ) -> list[StoredLine]:
        """Several steps (one EDXL-RM message over several lines) in one transaction."""

        def job(tx: Tx) -> list[StoredLine]:
            return [self._move_in(tx, line_id, m, jurisdiction, actor) for line_id, m in moves]

        return await self._reg._db.run(job)

    def _move_in(
        self, tx: Tx, line_id: str, move: Move, jurisdiction: str, actor: str
    ) -> StoredLine:
        before = get_line(tx.conn, line_id)
        after = _apply(before.line, move, jurisdiction)  # refuses before anything is written
        now = self._reg._clock.now_ms()
        hold = hold_store.get_hold(tx.conn, before.hold)
        if hold is None:
            raise Conflict(f"line {line_id} has no hold '{before.hold}'")
        done = self._stock_moves(tx, before, after, move, hold, actor, now)
        stored = save_move(tx.conn, before, after, now)
        if done:
            self._reg._emit(tx, self._reg._depot(tx, before.depot), done)
        self._announce(tx, stored, before.line.state, MESSAGE_OF[move.step], actor)
        return stored

    def _stock_moves(
        self, tx: Tx, before: StoredLine, after: Line, move: Move, hold: Hold, actor: str, now: int
    ) -> list[ledger.Recorded]:
        conn, done = tx.conn, []
        live = hold.state in (HoldState.HELD, HoldState.COMMITTED)

        def need_live() -> None:
            if not live:
                raise Conflict(
                    f"line {before.line.id}: its hold is {hold.state.value}, so the stock is no "
                    "longer set aside; request it again"
                )

        def keep(quantity: int, why: str) -> None:
            shrunk = hold_store.shrink_hold(conn, hold.id, quantity, actor, now, why)
            if shrunk is not None:
                done.append(shrunk)

        step = move.step
        if step is Step.RESPOND and after.state is LineState.DECLINED:
            if live:
                why = "declined by the owner"
                done.append(hold_store.release_hold(conn, hold.id, actor, now, why))
        elif step is Step.RESPOND:  # a provisional answer keeps the whole request held
            need_live()
            if after.state is LineState.ACCEPTED:
                keep(after.answered, f"the owner accepted {after.answered} of {hold.quantity}")
        elif step is Step.REQUISITION:
            need_live()
        elif step is Step.COMMIT:
            need_live()
            keep(after.committed, f"the owner committed {after.committed} of {hold.quantity}")
            if hold.state is HoldState.HELD:
                done.append(hold_store.commit_hold(conn, hold.id, actor, now))
        elif step is Step.DISPATCH:
            done.append(hold_store.dispatch_hold(conn, hold.id, actor, now))
        elif step is Step.RETURNED:
            back = after.committed if move.quantity is None else move.quantity
            done.append(hold_store.return_hold(conn, hold.id, back, actor, now))
        return done

    def _announce(
        self, tx: Tx, s: StoredLine, previous: LineState | None, message: str, actor: str
    ) -> None:
        line, reg = s.line, self._reg
        payload = ResourceLineMoved(
            request=s.client_id, line=s.line_no, hold=s.hold, depot=s.depot, item=line.item,
            quantity=line.quantity, requester=line.requester, owner=line.owner,
            previous=None if previous is None else previous.value, state=line.state.value,
            answered=line.answered, committed=line.committed, message=message, actor=actor,
            at=format_time(s.updated_ms),
        )  # fmt: skip
        depot = reg._depot(tx, s.depot)
        key = f"{line.id}/{s.version}"
        data = payload.model_dump(mode="json", exclude_none=True)
        reg._send(tx, reg._event(depot, RESOURCE_LINE_MOVED, data, s.request, s.updated_ms, key))
