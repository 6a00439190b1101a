"""A lean HTTP/1.1 client for the link's calls to the hub: keep-alive connections, httptools.

Why not httpx: measured on a 2-CPU machine against the hub, an ``httpx.AsyncClient`` spent
3-5 ms of CPU per POST (155-180 requests/s with the hub on the same machine), a raw asyncio
client 0.1 ms (850/s). A link that must carry 500 messages/s with a few ms of latency cannot
spend that. This client does only what the link needs: plain ``http://``, one request in flight
per connection, a pool of keep-alive connections, responses parsed by httptools (the parser
uvicorn uses; it handles ``Content-Length`` and chunked bodies). A request that fails on a
reused connection before any answer (the server closed it while idle) is sent once more on a
new connection; every call the link makes is safe to repeat (the hub answers a resend as it
answered the first).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode, urlsplit

import httptools


class HttpFailure(Exception):
    """No HTTP answer: connection refused or broken, timeout, or an unreadable response."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._body: list[bytes] = []
        self._answered = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpFailure(f"unreadable response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpFailure(f"connection closed: {exc or 'by the server'}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        body = b"".join(self._body)
        self._body = []
        if not self._parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(HttpResponse(self._parser.get_status_code(), body))

    # use
    def send(self, request: bytes) -> asyncio.Future[HttpResponse]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._body = []
        self._answered = False
        self.transport.write(request)
        return self._waiter

    @property
    def answered(self) -> bool:
        return self._answered

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: HttpFailure) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class HttpPool:
    """Up to ``size`` keep-alive connections to one ``http://host:port``."""

    def __init__(self, base_url: str, *, size: int = 32, timeout_s: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://HOST[:PORT], not '{base_url}'")
        self.host = parts.hostname
        self.port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._host_header = f"{parts.hostname}:{self.port}"
        self._timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._open: set[_Connection] = set()

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        params: list[tuple[str, str]] | None = None,
    ) -> HttpResponse:
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        async with self._slots:
            for attempt in range(2):
                conn = await self._connection(fresh=attempt > 0)
                try:
                    async with asyncio.timeout(self._timeout_s):
                        response = await conn.send(request)
                except TimeoutError:
                    conn.close()
                    raise HttpFailure(f"no answer within {self._timeout_s} s") from None
                except HttpFailure:
                    conn.close()
                    if conn.reused and not conn.answered and attempt == 0:
                        continue  # closed while idle: once more on a new connection
                    raise
                finally:
                    if conn.closed:
                        self._open.discard(conn)
                if not conn.closed:
                    conn.reused = True
                    self._idle.append(conn)
                return response
        raise AssertionError("unreachable")

    async def _connection(self, fresh: bool) -> _Connection:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self._open.discard(conn)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise HttpFailure(f"cannot connect to {self._host_header}: {exc}") from exc
        self._open.add(conn)
        return conn

    async def aclose(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)
