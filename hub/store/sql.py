"""The connection every store function receives, whichever database is behind it.

Store code is written once, in SQL that both SQLite and PostgreSQL accept (``?`` placeholders,
``ON CONFLICT DO NOTHING``); the PostgreSQL side translates placeholders to its driver's style.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

UNPREPARED = "/* unprepared */ "
"""The prefix of a statement whose text varies with the number of values it carries (an
``IN (?, ?, ...)`` list). PostgreSQL runs such statements unprepared: a generic plan made while a
table was small (a sequential scan) would otherwise stay in use as the table grows, and every
length would take a slot of the driver's prepared-statement cache. SQLite reads it as a comment.
"""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


def pipeline(conn: Connection) -> contextlib.AbstractContextManager[object]:
    """Statements executed inside go to the server together where the driver can (psycopg's
    pipeline mode: one round trip for all of them); their results, row counts included, are
    read after the block. Elsewhere (SQLite, in process) a no-op. A failure inside is raised at
    the latest when the block ends."""
    make = getattr(conn, "pipeline", None)
    if make is None:
        return contextlib.nullcontext()
    block: contextlib.AbstractContextManager[object] = make()
    return block


ROWS_PER_STATEMENT = 200
"""Rows per multi-row statement (``insert_values``, ``in_chunks``): few statements, and far
below SQLite's and PostgreSQL's limits on the number of parameters of one."""


def marks(n: int) -> str:
    """``?, ?, ...``: ``n`` placeholders."""
    return ", ".join("?" * n)


def chunks(items: Sequence[Any], size: int = ROWS_PER_STATEMENT) -> list[Sequence[Any]]:
    """``items`` cut into runs of at most ``size``, in order."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def insert_values(
    conn: Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = ""
) -> list[Cursor]:
    """``head VALUES (?, ...), (?, ...) tail``: ``rows`` written by one statement per
    ``ROWS_PER_STATEMENT`` of them (each statement a round of the driver, not each row), in
    order (the rows of a table with an increasing id get their ids in this order). The text
    varies with the number of rows, so it runs ``UNPREPARED``. Every row has as many values as
    the first. The cursors, one per statement, in order (for a ``RETURNING`` tail: on SQLite,
    read each before the next statement of the transaction)."""
    if not rows:
        return []
    row_marks = f"({marks(len(rows[0]))})"
    return [
        conn.execute(
            f"{UNPREPARED}{head} VALUES {', '.join([row_marks] * len(chunk))}{tail}",
            [value for row in chunk for value in row],
        )
        for chunk in chunks(rows)
    ]
