"""The EDXL-RM line state machine: the happy path and each invariant refused."""

from __future__ import annotations

import pytest

from hub.errors import Conflict, InvalidInput, NotAllowed
from hub.registry import rm_state as rm
from hub.registry.rm_state import Line, LineState, ResponseType

QINGPU, JIASHAN, JIAXING, WUJIANG = "310118", "330421", "330400", "320509"
ACCEPT, DECLINE, PROVISIONAL = ResponseType.ACCEPT, ResponseType.DECLINE, ResponseType.PROVISIONAL


def _line(quantity: int = 100) -> Line:
    return Line("l1", "sandbag", quantity, "2026-07-01T12:00:00+08:00", "Jinze", QINGPU, JIASHAN)


def test_the_whole_life_of_a_line() -> None:
    line = rm.respond(_line(), JIASHAN, PROVISIONAL, 80)
    line = rm.respond(line, JIAXING, ACCEPT, 60)  # Jiaxing's city centre speaks for Jiashan
    line = rm.requisition(line, QINGPU)
    line = rm.commit(line, JIASHAN, 60)
    line = rm.dispatched(line, JIASHAN)
    line = rm.arrived(line, QINGPU)
    line = rm.release(line, QINGPU)
    line = rm.request_return(line, JIASHAN)
    line = rm.returned(line, JIASHAN)
    assert (line.state, line.answered, line.committed) == (LineState.RETURNED, 60, 60)


def test_quantities_never_exceed_the_request() -> None:
    with pytest.raises(InvalidInput, match="1 to 100"):
        rm.respond(_line(), JIASHAN, ACCEPT, 101)
    with pytest.raises(InvalidInput, match="decline offers 0"):
        rm.respond(_line(), JIASHAN, DECLINE, 5)
    line = rm.requisition(rm.respond(_line(), JIASHAN, ACCEPT, 100), QINGPU)
    with pytest.raises(InvalidInput, match="100 requested"):
        rm.commit(line, JIASHAN, 101)
    small = rm.requisition(rm.respond(_line(), JIASHAN, ACCEPT, 40), QINGPU)
    with pytest.raises(InvalidInput, match="40 accepted"):
        rm.commit(small, JIASHAN, 41)
    with pytest.raises(InvalidInput, match="positive"):
        _line(0)


def test_a_provisional_answer_must_be_settled_before_requisition() -> None:
    line = rm.respond(_line(), JIASHAN, PROVISIONAL, 50)
    with pytest.raises(Conflict, match="provisional answer must become accept or decline"):
        rm.requisition(line, QINGPU)
    declined = rm.respond(line, JIASHAN, DECLINE, 0)
    assert declined.state is LineState.DECLINED
    with pytest.raises(Conflict, match="declined"):
        rm.requisition(declined, QINGPU)
    with pytest.raises(Conflict, match="declined"):
        rm.respond(declined, JIASHAN, ACCEPT, 10)  # a decline is final


def test_no_release_before_arrival() -> None:
    line = rm.commit(rm.requisition(rm.respond(_line(), JIASHAN, ACCEPT, 10), QINGPU), JIASHAN, 10)
    with pytest.raises(Conflict, match="no release before arrival"):
        rm.release(line, QINGPU)
    with pytest.raises(Conflict, match="no release before arrival"):
        rm.release(rm.dispatched(line, JIASHAN), QINGPU)
    with pytest.raises(Conflict, match="needs it arrived"):
        rm.release(_line(), QINGPU)


def test_only_the_owner_requests_a_return_and_only_the_requester_requisitions() -> None:
    line = rm.respond(_line(), JIASHAN, ACCEPT, 10)
    with pytest.raises(NotAllowed, match="only 310118 may requisition"):
        rm.requisition(line, JIASHAN)
    with pytest.raises(NotAllowed, match="only 330421 may answer"):
        rm.respond(_line(), WUJIANG, ACCEPT, 10)
    line = rm.arrived(
        rm.dispatched(rm.commit(rm.requisition(line, QINGPU), JIASHAN, 10), JIASHAN), JIASHAN
    )
    for stranger in (QINGPU, WUJIANG):
        with pytest.raises(NotAllowed, match="only 330421 may request a return"):
            rm.request_return(line, stranger)
    with pytest.raises(NotAllowed, match="only its parties"):
        rm.arrived(line, WUJIANG)
    assert rm.request_return(line, JIASHAN).state is LineState.RETURN_REQUESTED
