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
