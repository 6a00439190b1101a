"""A city system's task endpoint for tests: a small HTTP/1.1 server on 127.0.0.1.

It takes ``POST``s, records each (time, headers, body) and answers per a script: the first
requests can fail in the ways a real endpoint fails (``503``, the connection dropped before any
answer, or the task applied and *then* a ``500``: the sender cannot know it arrived). Like a
real city system it deduplicates on ``Idempotency-Key``: :attr:`applied` counts how many times
each key had an effect (once, however often it came).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Step = Literal["ok", "503", "drop", "apply-then-500", "429", "422"]
_STATUS = {"ok": 200, "apply-then-500": 500}


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when the request was read
    headers: dict[str, str]
    body: bytes
    answered: int | None  # the status sent back (None: dropped)


@dataclass
class CityEndpoint:
    script: list[Step] = field(default_factory=list)  # then "ok" for ever
    received: list[Received] = field(default_factory=list)
    applied: Counter[str] = field(default_factory=Counter)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/liandong/tasks"

    async def start(self) -> CityEndpoint:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def bodies(self, key: str) -> list[bytes]:
        return [r.body for r in self.received if r.headers.get("idempotency-key") == key]

    def _apply(self, headers: dict[str, str]) -> None:
        key = headers.get("idempotency-key", "")
        if key and self.applied[key] == 0:
            self.applied[key] += 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                step = self.script.pop(0) if self.script else "ok"
                status = None if step == "drop" else _STATUS.get(step) or int(step)
                self.received.append(Received(time.monotonic(), headers, body, status))
                if step == "drop":
                    writer.transport.abort()
                    return
                if step in ("ok", "apply-then-500"):
                    self._apply(headers)
                extra = "Retry-After: 0\r\n" if step == "429" else ""
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n{extra}\r\n".encode("latin-1")
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
