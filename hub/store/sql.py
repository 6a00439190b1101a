"""The connection every store function receives, whichever database is behind it.

Store code is written once, in SQL that both SQLite and PostgreSQL accept (``?`` placeholders,
``ON CONFLICT DO NOTHING``); the PostgreSQL side translates placeholders to its driver's style.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...
