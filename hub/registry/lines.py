"""The lines of EDXL-RM resource requests as rows (``rm_lines``): one per line, keyed by the hold
that set its stock aside. The state machine (``rm_state``) decides every move; this module only
stores a line and moves it by compare-and-set on its ``version``, so two hubs answering the same
line at once cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import ConcurrentUpdate, NotFound
from hub.registry.rm_state import Line, LineState
from hub.store.sql import Connection


@dataclass(frozen=True, slots=True)
class StoredLine:
    """A line as stored: the state machine's ``line`` and where it lives."""

    line: Line
    request: str
    """The request key, ``requester/client id``."""
    line_no: int
    hold: str
    depot: str
    version: int
    updated_ms: int

    @property
    def client_id(self) -> str:
        return self.request.partition("/")[2]


_COLUMNS = (
    "id, item, quantity, needed_by, deliver_to, requester, owner, state, answered, committed, "
    "request, line_no, hold_id, depot, version, updated_ms"
)


def _stored(row: tuple[object, ...]) -> StoredLine:
    (id_, item, quantity, needed_by, deliver_to, requester, owner, state, answered, committed,
     request, line_no, hold, depot, version, updated_ms) = row  # fmt: skip
    line = Line(
        str(id_), str(item), int(str(quantity)), str(needed_by), str(deliver_to), str(requester),
        str(owner), LineState(str(state)), int(str(answered)), int(str(committed)),
    )  # fmt: skip
    return StoredLine(
        line, str(request), int(str(line_no)), str(hold), str(depot), int(str(version)),
        int(str(updated_ms)),
    )  # fmt: skip


def insert_line(conn: Connection, stored: StoredLine) -> None:
    line = stored.line
    conn.execute(
        f"INSERT INTO rm_lines ({_COLUMNS}) VALUES ({', '.join('?' * 16)})",
        (
            line.id, line.item, line.quantity, line.needed_by, line.deliver_to, line.requester,
            line.owner, line.state.value, line.answered, line.committed, stored.request,
            stored.line_no, stored.hold, stored.depot, stored.version, stored.updated_ms,
        ),
    )  # fmt: skip


def get_line(conn: Connection, line_id: str) -> StoredLine:
    row = conn.execute(f"SELECT {_COLUMNS} FROM rm_lines WHERE id = ?", (line_id,)).fetchone()
    if row is None:
        raise NotFound(f"no resource request line '{line_id}'")
    return _stored(tuple(row))


def lines_of_request(conn: Connection, request: str) -> list[StoredLine]:
    """The lines of one request (its key), in line order."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM rm_lines WHERE request = ? ORDER BY line_no", (request,)
    ).fetchall()
    return [_stored(tuple(r)) for r in rows]


def save_move(conn: Connection, before: StoredLine, after: Line, at_ms: int) -> StoredLine:
    """Store ``after`` in place of ``before`` if nobody moved the line in between."""
    cur = conn.execute(
        "UPDATE rm_lines SET state = ?, answered = ?, committed = ?, version = version + 1, "
        "updated_ms = ? WHERE id = ? AND version = ?",
        (
            after.state.value, after.answered, after.committed, at_ms, before.line.id,
            before.version,
        ),
    )  # fmt: skip
    if cur.rowcount != 1:
        raise ConcurrentUpdate(f"line {before.line.id} moved while it was being answered")
    return StoredLine(
        after, before.request, before.line_no, before.hold, before.depot, before.version + 1,
        at_ms,
    )  # fmt: skip


def requests_named(conn: Connection, client_id: str) -> list[str]:
    """The request keys (``requester/id``) whose client id is ``client_id``."""
    rows = conn.execute(
        "SELECT DISTINCT request FROM rm_lines WHERE request LIKE ? ESCAPE '!' ORDER BY request",
        ("%/" + client_id.replace("!", "!!").replace("%", "!%").replace("_", "!_"),),
    ).fetchall()
    return [str(r[0]) for r in rows]
